"""Regression: the example dataset's synthetic heads (thick fluid layer around the brain) get a tight brain mask.

Participant 8 of the example dataset (seed 0) once failed with an
"implausible intracranial volume" of 2571 mL: CSF-dark fluid outside the
template brain was counted as brain. Its T1w (2 mm) is simulated here, without
writing a dataset, and segmented as the pipeline's first (affine-prior) pass
does; the mask and the volumes (GM included: mixed voxels count in part as
GM) are checked against the simulation's ground-truth labels.
"""

from __future__ import annotations

import pytest

from neurolearn_cli.smri.conform import conform_t1w
from neurolearn_cli.smri.initialize import initialize
from neurolearn_cli.smri.morphometry import tissue_volumes
from neurolearn_cli.smri.pipeline import AFFINE_PRIOR_FWHM_MM, segment_brain
from neurolearn_cli.smri.plausibility import check_volumes

from .helpers import dice

pytestmark = pytest.mark.slow


def test_mask_stays_on_the_brain_of_a_synthetic_head(participant_8, template_2mm) -> None:
    t1w, truth = participant_8
    t1w = conform_t1w([t1w], ["sub-08_T1w.nii.gz"])
    brain = segment_brain(t1w, template_2mm, initialize(t1w, template_2mm).transform.inverse(), AFFINE_PRIOR_FWHM_MM)
    mask = brain.mask.data > 0.5
    reference = truth.data > 0
    assert dice(mask, reference) > 0.96
    assert float(mask.sum()) / float(reference.sum()) == pytest.approx(1.0, abs=0.05)
    volumes = tissue_volumes(brain.probabilities, t1w)
    check_volumes(volumes)
    truth_csf_ml = float((truth.data == 3).sum()) * 8 / 1000
    assert volumes["CSF"] < 2.5 * truth_csf_ml
    # the partial-volume classes count mixed GM/WM and GM/CSF voxels in part as GM (pure classes alone: -18 %)
    truth_gm_ml = float((truth.data == 1).sum()) * 8 / 1000
    assert volumes["GM"] == pytest.approx(truth_gm_ml, rel=0.1)

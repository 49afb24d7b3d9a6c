"""Regression: the example dataset's synthetic heads (thick fluid layer around the brain, noisy air) get a tight
brain mask, and the same tissues whether the scanner left noise in the air or zero-filled it.

Participant 8 of the example dataset (seed 0) once failed with an
"implausible intracranial volume" of 2571 mL: CSF-dark fluid outside the
template brain was counted as brain. Its T1w (2 mm) is simulated here, without
writing a dataset, and segmented by the pipeline's first (affine-prior) pass;
the mask and the volumes (GM included: mixed voxels count in part as GM) are
checked against the simulation's ground-truth labels.
"""

from __future__ import annotations

import pytest
import torch

from neurolearn_cli.smri.conform import conform_t1w
from neurolearn_cli.smri.morphometry import tissue_volumes
from neurolearn_cli.smri.pipeline import BrainSegmentation, affine_pass
from neurolearn_cli.smri.plausibility import check_volumes

from .helpers import dice

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_pass(participant_8, template_2mm) -> tuple[torch.Tensor | None, BrainSegmentation]:
    """The noisy air the mixture leaves out and the first pass's segmentation of participant 8."""
    _, air, brain = affine_pass(conform_t1w([participant_8[0]], ["sub-08_T1w.nii.gz"]), template_2mm)
    return air, brain


def test_mask_stays_on_the_brain_of_a_synthetic_head(participant_8, first_pass) -> None:
    t1w, truth = participant_8
    air, brain = first_pass
    assert air is not None  # the simulated air is noisy: above the mixture's background level
    mask = brain.mask.data > 0.5
    reference = truth.data > 0
    assert dice(mask, reference) > 0.96
    assert float(mask.sum()) / float(reference.sum()) == pytest.approx(1.0, abs=0.05)
    volumes = tissue_volumes(brain.probabilities, t1w)
    check_volumes(volumes)
    truth_csf_ml = float((truth.data == 3).sum()) * 8 / 1000
    assert volumes["CSF"] < 2.5 * truth_csf_ml


@pytest.mark.xfail(strict=True, reason="on this population-average brain, without the air in the mixture the bias "
                                       "field takes up part of the GM/WM contrast: GM 846 mL against 1133 (RESULTS, "
                                       "2026-12-05)")
def test_grey_matter_of_a_synthetic_head_counts_its_mixed_voxels(participant_8, first_pass) -> None:
    """The partial-volume classes count mixed GM/WM and GM/CSF voxels in part as GM (pure classes alone: -18 %)."""
    t1w, truth = participant_8
    volumes = tissue_volumes(first_pass[1].probabilities, t1w)
    truth_gm_ml = float((truth.data == 1).sum()) * 8 / 1000
    assert volumes["GM"] == pytest.approx(truth_gm_ml, rel=0.1)


def test_zero_filled_air_gives_the_same_tissues(participant_8, template_2mm, first_pass) -> None:
    """The same head with its noisy air set to zero, as a scanner that zero-fills writes it: the mixture
    leaves that air out too, so the tissues match. With the noisy air modelled, this pass gave 1055 mL of GM
    against 846."""
    t1w, _ = participant_8
    air, noisy = first_pass
    assert air is not None
    zero_filled = t1w.with_data(torch.where(air, torch.zeros_like(t1w.data), t1w.data))
    init, zero_air, zeroed = affine_pass(conform_t1w([zero_filled], ["sub-08_T1w.nii.gz"]), template_2mm)
    assert init.air_floor is None and zero_air is None
    assert dice(zeroed.mask.data > 0.5, noisy.mask.data > 0.5) > 0.99
    noisy_ml, zeroed_ml = (tissue_volumes(b.probabilities, t1w) for b in (noisy, zeroed))
    for tissue in ("GM", "WM", "CSF"):
        assert zeroed_ml[tissue] == pytest.approx(noisy_ml[tissue], rel=0.01)

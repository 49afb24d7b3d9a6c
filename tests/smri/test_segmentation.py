"""Unified segmentation on a phantom with known tissues and a known bias field."""

from __future__ import annotations

import math

import pytest
import torch

from neurolearn_cli.errors import ProcessingError
from neurolearn_cli.smri.segmentation import CLASSES, segment

from .helpers import PHANTOM_MEANS, dice


@pytest.fixture(scope="module")
def result(phantom: dict):
    return segment(phantom["image"], phantom["priors"], mrf_beta=0.3)


def test_tissues_are_recovered(result, phantom: dict) -> None:
    hard = result.posteriors.argmax(0)
    inside = result.posteriors.sum(0) > 0
    for k, name in enumerate(CLASSES[:3]):
        assert dice((hard == k) & inside, phantom["labels"] == k) > 0.9, name


def test_bias_field_is_recovered_within_a_few_percent(result, phantom: dict) -> None:
    inside = phantom["labels"] < 3
    ratio = (result.bias_field.data / phantom["bias"])[inside]
    ratio = ratio / ratio.mean()
    assert float((ratio - 1).abs().mean()) < 0.02
    assert float((ratio - 1).abs().max()) < 0.08


def test_means_and_outputs_on_the_input_grid(result, phantom: dict) -> None:
    wm = result.mixture.means[result.mixture.classes == 1].exp()
    assert float(wm.min()) == pytest.approx(PHANTOM_MEANS[1], rel=0.08)
    assert result.corrected.shape3 == phantom["image"].shape3
    assert torch.equal(result.corrected.affine, phantom["image"].affine)
    sums = result.posteriors.sum(0)
    valid = sums > 0
    assert torch.allclose(sums[valid], torch.ones_like(sums[valid]), atol=1e-4)
    assert result.probability("WM").shape3 == phantom["image"].shape3


def test_without_bias_correction_the_field_is_flat(phantom: dict) -> None:
    seg = segment(phantom["image"], phantom["priors"], bias_fwhm_mm=math.inf, max_iterations=5)
    assert float((seg.bias_field.data - 1).abs().max()) == 0.0


def test_wrong_prior_shape_and_empty_image_fail(phantom: dict) -> None:
    with pytest.raises(ValueError):
        segment(phantom["image"], phantom["priors"][:3])
    empty = phantom["image"].with_data(torch.zeros(phantom["image"].shape3))
    with pytest.raises(ProcessingError):
        segment(empty, phantom["priors"])


def test_a_skull_stripped_image_is_all_tissue(phantom: dict) -> None:
    """With nothing outside the brain, the non-brain class would take the brain's voxels it can reach: not so."""
    labels = phantom["labels"]
    brain = labels < 3
    stripped = phantom["image"].with_data(torch.where(brain, phantom["image"].data, 0.0))
    seg = segment(stripped, phantom["priors"], mrf_beta=0.3, partial_volume=True, brain_only=True)
    assert float(seg.posteriors[3].abs().max()) == 0.0
    for k, name in enumerate(CLASSES[:3]):
        volume = float(seg.posteriors[k][brain].sum())
        assert volume == pytest.approx(float((labels == k).sum()), rel=0.03), name

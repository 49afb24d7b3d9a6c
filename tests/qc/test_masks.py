"""Head, air and artifact masks on the head phantom."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
import torch

from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.qc import masks
from tests.qc.conftest import HeadPhantom


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_otsu_separates_two_levels() -> None:
    values = torch.cat([torch.full((900,), 10.0), torch.full((100,), 200.0)])
    assert 10.0 < otsu_threshold(values) < 200.0


def test_head_mask_recovers_the_head(head_phantom: HeadPhantom) -> None:
    assert dice(masks.head_mask(head_phantom.t1w), head_phantom.head) > 0.98


def test_air_mask_keeps_background_above_the_brain_bottom(head_phantom: HeadPhantom) -> None:
    p = head_phantom
    air = masks.air_mask(p.t1w, p.head, p.brain, p.affine)
    bottom = int(p.brain.any(dim=(0, 1)).nonzero().min())
    assert not bool((air & p.head).any())
    assert not bool(air[:, :, :bottom].any())
    assert bool(air[:, :, bottom:].any())
    # A z-flipped affine (voxel z grows downwards): the kept side flips too
    flipped = p.affine @ np.diag([1.0, 1.0, -1.0, 1.0])
    top = int(p.brain.any(dim=(0, 1)).nonzero().max())
    air_flipped = masks.air_mask(p.t1w, p.head, p.brain, flipped)
    assert not bool(air_flipped[:, :, top + 1 :].any())
    assert masks.superior_axis(flipped) == (2, -1)


def test_air_mask_drops_zero_filled_frames(head_phantom: HeadPhantom) -> None:
    p = head_phantom
    defaced = p.t1w.clone()
    defaced[:8, :8] = 0.0  # a zeroed corner, like defacing
    defaced[30, 2, 40] = 0.0  # an isolated zero stays part of the background
    air = masks.air_mask(defaced, p.head, p.brain, p.affine)
    assert not bool(air[:7, :7].any())
    assert bool(air[30, 2, 40])


def test_artifact_mask_finds_a_bright_blob_in_air(head_phantom: HeadPhantom) -> None:
    p = head_phantom
    corrupted = p.t1w.clone()
    corrupted[1:6, 1:6, 40:45] += 500.0  # a ghost-like blob far from the head
    corrupted[38, 2, 45] += 500.0  # a single hot voxel is removed by the opening
    air = masks.air_mask(corrupted, p.head, p.brain, p.affine)
    artifacts = masks.artifact_mask(corrupted, air, p.head, p.spacing)
    assert bool(artifacts[3, 3, 42])
    assert not bool(artifacts[38, 2, 45])
    assert int(artifacts.sum()) <= 125
    assert not bool(masks.artifact_mask(p.t1w, air, p.head, p.spacing).any())


def test_distance_to_mask_is_close_to_exact() -> None:
    mask = torch.zeros(30, 31, 32, dtype=torch.bool)
    mask[15, 15, 16] = True
    distance = masks.distance_to_mask(mask, (1.0, 1.0, 1.0), step_mm=3.0)
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in mask.shape), indexing="ij"))
    exact = np.sqrt(((grid - np.array([15, 15, 16]).reshape(3, 1, 1, 1)) ** 2).sum(0))
    assert np.abs(distance.numpy() - exact).max() <= 3.0 * np.sqrt(3.0)


def test_frame_mask_keeps_thin_frames_at_the_faces() -> None:
    """Zeros continue past the field of view (MRIQC pads its rotation mask with ones)."""
    image = torch.ones((7, 8, 9))
    image[:, :, :2] = 0.0  # a two-voxel zero frame at z = 0, 1
    image[3, 4, 5] = 0.0  # an isolated zero
    frame = masks.frame_mask(image)
    zeros = image == 0
    expected = ndi.binary_opening(np.pad(zeros.numpy(), 1, constant_values=True), np.ones((3, 3, 3)))[1:-1, 1:-1, 1:-1]
    assert np.array_equal(frame.numpy(), expected)
    assert bool(frame[:, :, :2].all()) and not bool(frame[:, :, 2:].any())

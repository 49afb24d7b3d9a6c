"""Laplace streamlines for the pial surface: the sulcal skeleton and where the streamlines stop."""

from __future__ import annotations

import numpy as np
import torch

from neurolearn_cli.surfaces.laplace import laplace_potential, pial_targets, sulcal_skeleton


def _banks(shape: tuple[int, int, int] = (21, 8, 9), gap: tuple[int, int] = (6, 14)) -> np.ndarray:
    """White matter in two slabs along x, facing each other across the voxels gap[0]..gap[1]-1."""
    wm = np.zeros(shape, dtype=bool)
    wm[: gap[0]] = True
    wm[gap[1]:] = True
    return wm


def test_skeleton_lies_midway_between_banks_and_not_over_a_convex_face() -> None:
    """Between two slabs 8 voxels apart (voxel centres 5 and 14 the last of each) the skeleton is the middle
    pair of planes, in every column; a single slab has none."""
    wm = _banks()
    skeleton, distance = sulcal_skeleton(wm, ~wm, (1.0, 1.0, 1.0))
    planes = np.flatnonzero(skeleton.any(axis=(1, 2)))
    assert set(planes.tolist()) <= {9, 10} and skeleton[9:11].any(axis=0).all()
    assert distance[9, 0, 0] == 4.0
    single = wm.copy()
    single[14:] = False
    assert not sulcal_skeleton(single, ~single, (1.0, 1.0, 1.0))[0].any()


def test_potential_is_linear_across_a_slab() -> None:
    """Between a plane held at 0 and one at 1 the harmonic potential is linear."""
    inner = torch.zeros(12, 5, 6, dtype=torch.bool)
    outer = torch.zeros_like(inner)
    inner[:2], outer[8:] = True, True
    potential = laplace_potential(inner, outer, sweeps=400)
    np.testing.assert_allclose(potential[1:9, 2, 3].numpy(), np.arange(8) / 7, atol=1e-3)


def test_streamlines_stop_at_the_grey_matter_edge_or_on_the_sulcal_skeleton() -> None:
    """Open side: a 3 mm grey layer above the white matter is crossed to its 0.5 level; sulcal side: grey
    matter filling an 8 mm gap between banks stops the streamline within a step before the midline (the
    middle of the two-voxel skeleton, where the potential's gradient turns back), and the points at
    fractions of its length are evenly spaced (it does not run on past the ridge)."""
    shape = (21, 8, 9)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, 3] = torch.tensor([-3.0, 2.0, 5.0])
    wm = torch.from_numpy(_banks(shape))
    x = torch.arange(shape[0], dtype=torch.float32)[:, None, None].expand(shape)
    open_side = ((5.5 + 3.0 - x) + 0.5).clamp(0, 1)  # grey up to x = 8.5 (0.5 level), slab edge at 5.5
    open_side[14:] = 0.0
    wm_open = wm.clone()
    wm_open[14:] = False
    start = np.array([[5.5, 4.0, 4.0]]) + affine[:3, 3].numpy()
    normal = np.array([[1.0, 0.0, 0.0]])
    half, reached = pial_targets(start, normal, wm_open, torch.maximum(open_side, wm_open.float()), affine,
                                 max_mm=5.0, fractions=(0.5, 1.0))
    assert abs(reached[0, 0] - (start[0, 0] + 3.0)) < 0.05
    np.testing.assert_allclose(half, (start + reached) / 2, atol=1e-9)
    filled = torch.ones(shape)
    midline = 9.5 + affine[0, 3].item()
    step = 0.2
    quarter, reached = pial_targets(start, normal, wm, filled, affine, max_mm=5.0, step_mm=step,
                                    fractions=(0.25, 1.0))
    assert midline - step - 1e-6 <= reached[0, 0] <= midline + 1e-6
    np.testing.assert_allclose(quarter, start + (reached - start) / 4, atol=1e-9)

"""Voxel sizes, index grids, centres of mass and the Euler convention against nibabel and scipy."""

from __future__ import annotations

import nibabel.affines as nia
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from scipy.spatial.transform import Rotation

from neurolearn_cli.engine import geometry
from neurolearn_cli.engine.transforms import AffineTransform


def _oblique_affine() -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("XYZ", [0.3, -0.2, 0.5]).as_matrix() @ np.diag([0.8, 1.2, 2.5])
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    return affine


def test_voxel_spacing_matches_nibabel() -> None:
    affine = _oblique_affine()
    expected = tuple(nia.voxel_sizes(affine))
    assert geometry.voxel_spacing(affine) == expected
    assert geometry.voxel_spacing(torch.from_numpy(affine)) == expected
    assert geometry.voxel_spacing(affine) == pytest.approx((0.8, 1.2, 2.5))


def test_ints3_and_floats3_give_checked_triples_of_python_numbers() -> None:
    shape = geometry.ints3(torch.zeros(4, 5, 6).shape)
    assert shape == (4, 5, 6) and all(type(n) is int for n in shape)
    assert geometry.ints3(np.zeros((2, 3, 4)).shape) == (2, 3, 4)
    spacing = geometry.floats3(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    assert spacing == (0.5, 1.0, 2.0) and all(type(s) is float for s in spacing)
    with pytest.raises(ValueError, match="expected three sizes"):
        geometry.ints3((4, 5, 6, 7))
    with pytest.raises(ValueError, match="expected three values"):
        geometry.floats3([1.0, 2.0])


def test_index_grid_holds_each_voxels_indices() -> None:
    grid = geometry.index_grid((7, 8, 9), "cpu")
    assert grid.shape == (7, 8, 9, 3) and grid.dtype == torch.float64
    assert grid[6, 2, 8].tolist() == [6.0, 2.0, 8.0]
    assert np.array_equal(grid.numpy(), np.stack(np.indices((7, 8, 9)), axis=-1))
    assert geometry.index_grid((7, 8, 9), "cpu", torch.float32).dtype == torch.float32


def test_center_of_mass_matches_scipy_in_world_mm() -> None:
    rng = np.random.default_rng(2)
    data = rng.random((7, 8, 9)).astype(np.float32) - 0.2  # negatives count as zero
    mask = rng.random((7, 8, 9)) > 0.3
    affine = _oblique_affine()
    for weights, m in [(np.clip(data, 0, None), None), (np.clip(data, 0, None) * mask, torch.from_numpy(mask))]:
        expected = nia.apply_affine(affine, ndi.center_of_mass(weights.astype(np.float64)))
        ours = geometry.center_of_mass(torch.from_numpy(data), torch.from_numpy(affine), m)
        assert ours.dtype == torch.float64
        assert np.allclose(ours.numpy(), expected, atol=1e-9)
    with pytest.raises(ValueError, match="empty"):
        geometry.center_of_mass(torch.zeros(7, 8, 9), torch.from_numpy(affine))


def test_euler_matrix_is_scipys_intrinsic_xyz() -> None:
    angles = np.random.default_rng(3).uniform(-1.2, 1.2, size=(5, 3))
    ours = geometry.euler_matrix(torch.from_numpy(angles)).numpy()
    assert np.allclose(ours, Rotation.from_euler("XYZ", angles).as_matrix(), atol=1e-12)
    quarter = geometry.euler_matrix(torch.tensor([0.0, 0.0, np.pi / 2], dtype=torch.float64)).numpy()
    assert np.allclose(quarter @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])  # about z: x goes to y


def test_euler_angles_invert_euler_matrix_and_the_rigid_transform() -> None:
    angles = torch.from_numpy(np.random.default_rng(4).uniform(-1.2, 1.2, size=(6, 3)))
    assert torch.allclose(geometry.euler_angles(geometry.euler_matrix(angles)), angles, atol=1e-12)
    rigid = AffineTransform.rigid(angles, torch.zeros(6, 3))
    assert torch.equal(rigid.matrix[:, :3, :3], geometry.euler_matrix(angles))
    assert torch.allclose(rigid.rigid_parameters()[0], angles, atol=1e-12)

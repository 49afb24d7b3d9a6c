"""Voxelizing closed meshes: triangles many voxels wide still enclose their volume."""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull

from neurolearn_cli.surfaces.mesh import Mesh, signed_volume
from neurolearn_cli.surfaces.ribbon import inside


def _icosahedron(radius: float, centre: np.ndarray) -> Mesh:
    """A closed 20-triangle mesh, faces wound outward; its edges are about ``radius`` long."""
    golden = (1 + 5 ** 0.5) / 2
    corners = np.array([(0, a, b * golden) for a in (-1, 1) for b in (-1, 1)], dtype=float)
    points = np.concatenate([corners, np.roll(corners, 1, axis=1), np.roll(corners, 2, axis=1)])
    points *= radius / np.linalg.norm(points[0])
    faces = ConvexHull(points).simplices.copy()
    normal = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    inward = np.einsum("ij,ij->i", normal, points[faces].mean(axis=1)) < 0
    faces[inward] = faces[inward][:, ::-1]
    return Mesh(points + centre, faces)


def test_a_mesh_with_triangles_ten_voxels_wide_fills_its_volume() -> None:
    spacing = 0.5
    affine = np.diag([spacing, spacing, spacing, 1.0])
    mesh = _icosahedron(6.0, np.array([8.0, 8.0, 8.0]))
    filled = inside(mesh, (32, 32, 32), affine)
    assert abs(filled.sum() * spacing ** 3 / signed_volume(mesh) - 1) < 0.05

"""The pial surface's unfolding of turned-over faces."""

from __future__ import annotations

import numpy as np

from neurolearn_cli.surfaces.mesh import Mesh, face_normals
from neurolearn_cli.surfaces.pial import unfold


def _sheet(n: int = 12) -> Mesh:
    """A flat n x n grid of unit squares in the z = 0 plane, two triangles each, facing +z."""
    x, y = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64), indexing="ij")
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1)
    index = np.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], axis=1), np.stack([a, c, d], axis=1)])
    return Mesh(vertices, faces)


def test_unfold_relaxes_a_fold_and_leaves_the_rest() -> None:
    """A vertex pushed past its neighbours turns faces over; unfold turns them back and moves nothing far away."""
    white = _sheet()
    points = white.vertices + np.array([0.0, 0.0, 1.0])
    folded = 5 * 12 + 5
    points[folded, :2] += np.array([2.5, 0.3])
    turned = (face_normals(white.with_vertices(points)) * face_normals(white)).sum(axis=1) <= 0
    assert turned.any()
    relaxed = unfold(white, points)
    assert ((face_normals(white.with_vertices(relaxed)) * face_normals(white)).sum(axis=1) > 0).all()
    far = np.linalg.norm(white.vertices[:, :2] - white.vertices[folded, :2], axis=1) > 5
    np.testing.assert_array_equal(relaxed[far], points[far])
    assert np.linalg.norm(relaxed[folded] - white.vertices[folded] - [0.0, 0.0, 1.0]) < 2.5


def test_unfold_returns_an_unfolded_surface_unchanged() -> None:
    white = _sheet()
    points = white.vertices + np.array([0.1, -0.2, 1.5])
    np.testing.assert_array_equal(unfold(white, points), points)

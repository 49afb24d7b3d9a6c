"""The conformal map's point source sits on a well-shaped face, wherever the mesh's face list starts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")

from neurolearn_cli.surfaces.mesh import Mesh, extract  # noqa: E402
from neurolearn_cli.surfaces.sphere import (  # noqa: E402
    conformal_plane,
    flipped_faces,
    inverse_stereographic,
    pole_face,
)


def _shape_quality(mesh: Mesh) -> np.ndarray:
    corners = mesh.vertices[mesh.faces]
    double_area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return double_area / ((corners - np.roll(corners, 1, axis=1)) ** 2).sum(axis=(1, 2))


def test_the_pole_is_the_best_shaped_face_not_the_first() -> None:
    x, y, z = np.meshgrid(*[np.arange(24, dtype=np.float64)] * 3, indexing="ij")
    ball = extract((x - 11.6) ** 2 + (y - 11.8) ** 2 + (z - 12.1) ** 2 <= 8.3**2)
    quality = _shape_quality(ball)
    worst_first = Mesh(ball.vertices, np.roll(ball.faces, -int(np.argmin(quality)), axis=0))
    pole = pole_face(worst_first)
    assert pole != 0
    assert _shape_quality(worst_first)[pole] == pytest.approx(quality.max())
    sphere = inverse_stereographic(conformal_plane(worst_first))
    assert len(flipped_faces(worst_first.with_vertices(sphere))) < 0.01 * len(ball.faces)

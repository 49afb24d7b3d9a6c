"""The conformal map's point source sits on a well-shaped face of the medial wall, wherever the face list starts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("skimage")

from neurolearn_cli.surfaces.mesh import Mesh, extract  # noqa: E402
from neurolearn_cli.surfaces.sphere import (  # noqa: E402
    MEDIAL,
    POLE_DEPTH_MM,
    conformal_plane,
    flipped_faces,
    inverse_stereographic,
    pole_face,
)


def _shape_quality(mesh: Mesh) -> np.ndarray:
    corners = mesh.vertices[mesh.faces]
    double_area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    return double_area / ((corners - np.roll(corners, 1, axis=1)) ** 2).sum(axis=(1, 2))


@pytest.mark.parametrize("hemisphere", ["L", "R"])
def test_the_pole_is_a_well_shaped_face_of_the_medial_side_not_the_first(hemisphere: str) -> None:
    x, y, z = np.meshgrid(*[np.arange(24, dtype=np.float64)] * 3, indexing="ij")
    ball = extract((x - 11.6) ** 2 + (y - 11.8) ** 2 + (z - 12.1) ** 2 <= 8.3**2)
    quality = _shape_quality(ball)
    worst_first = Mesh(ball.vertices, np.roll(ball.faces, -int(np.argmin(quality)), axis=0))
    pole = pole_face(worst_first, MEDIAL[hemisphere])
    assert pole != 0
    assert _shape_quality(worst_first)[pole] >= np.median(quality)
    medial_x = worst_first.vertices[worst_first.faces[pole]].mean(axis=0) @ MEDIAL[hemisphere]
    assert medial_x >= (worst_first.vertices @ MEDIAL[hemisphere]).max() - POLE_DEPTH_MM - 0.5
    sphere = inverse_stereographic(conformal_plane(worst_first, MEDIAL[hemisphere]))
    assert len(flipped_faces(worst_first.with_vertices(sphere))) < 0.01 * len(ball.faces)

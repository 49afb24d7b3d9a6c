"""Surface measures on meshes of known geometry."""

from __future__ import annotations

import numpy as np

from neurolearn_cli.surfaces.measures import thickness
from neurolearn_cli.surfaces.mesh import Mesh, vertex_normals


def _sheet(height: float, upward: bool, first: int, size: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """A flat square grid of 1 mm spacing at z = ``height``, its faces turned so the normals point up or down."""
    x, y = np.meshgrid(np.arange(size, dtype=float), np.arange(size, dtype=float), indexing="ij")
    vertices = np.column_stack([x.ravel(), y.ravel(), np.full(x.size, height)])
    corner = (np.arange(size - 1)[:, None] * size + np.arange(size - 1)[None, :]).ravel()
    faces = np.concatenate([np.column_stack([corner, corner + size, corner + 1]),
                            np.column_stack([corner + 1, corner + size, corner + size + 1])])
    return vertices, (faces if upward else faces[:, ::-1]) + first


def test_thickness_is_measured_on_the_vertex_own_bank_not_the_facing_one() -> None:
    """Two facing banks of a sulcus 4 mm apart, each 2.5 mm thick, their pial surfaces overlapping by 1 mm: the
    nearest pial point of the whole mesh lies on the other bank (1.5 mm away), FreeSurfer's neighbourhood search
    keeps each bank's own 2.5 mm."""
    lower_vertices, lower_faces = _sheet(0.0, upward=True, first=0)
    upper_vertices, upper_faces = _sheet(4.0, upward=False, first=len(lower_vertices))
    white = Mesh(np.concatenate([lower_vertices, upper_vertices]), np.concatenate([lower_faces, upper_faces]))
    pial = white.with_vertices(white.vertices + 2.5 * vertex_normals(white))
    assert np.allclose(vertex_normals(white)[: len(lower_vertices), 2], 1.0)

    np.testing.assert_allclose(thickness(white, pial), 2.5, atol=1e-9)

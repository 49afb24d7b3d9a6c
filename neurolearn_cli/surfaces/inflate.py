"""The inflated surface and sulcal depth, as FreeSurfer's ``mris_inflate`` makes them.

The white surface is smoothed by the umbrella Laplacian, in implicit
(backward Euler) steps so that a few sparse solves do the work of hundreds
of explicit iterations, and scaled back to the white surface's area at the
end (the size FreeSurfer's ``l_dist`` term keeps). Sulcal depth (``sulc``)
is the displacement along the surface normal accumulated over the steps,
mean-centred: vertices in sulci move outward (positive), those on gyral
crowns inward (negative), as in FreeSurfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import factorized

from neurolearn_cli.surfaces.mesh import Mesh, adjacency, face_normals, vertex_areas

#: Total smoothing time, in umbrella-operator iterations of unit step, and the implicit steps it is done in.
INFLATION_TIME = 800.0
INFLATION_STEPS = 20


@dataclass(frozen=True)
class Inflation:
    """The inflated mesh (world mm, the white's centroid and area) and the sulcal depth per vertex (mm)."""

    inflated: Mesh
    sulc: np.ndarray


def incidence(mesh: Mesh) -> sparse.csr_matrix:
    """The (V, F) vertex-face incidence matrix (1 where the vertex is a corner of the face)."""
    rows = mesh.faces.ravel()
    cols = np.repeat(np.arange(len(mesh.faces)), 3)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(mesh.vertices), len(mesh.faces)))


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def total_area(mesh: Mesh) -> float:
    """The surface area (squared units)."""
    return float(vertex_areas(mesh).sum())


def inflate(white: Mesh, smoothing: float = INFLATION_TIME, steps: int = INFLATION_STEPS) -> Inflation:
    """Inflate ``white`` and measure its sulcal depth.

    Each step solves ``(D + t (D - A)) x' = D x`` (``A`` the adjacency, ``D``
    the degrees, ``t = smoothing / steps``): an implicit umbrella-Laplacian
    step; the move along the vertex's normal before the step adds to its depth.
    The result is scaled about its centroid back to the white surface's area.
    """
    neighbours = adjacency(white)
    degree = np.asarray(neighbours.sum(axis=1)).ravel()
    solve = factorized(sparse.csc_matrix(sparse.diags(degree * (1.0 + smoothing / steps))
                                         - (smoothing / steps) * neighbours))
    corners = incidence(white)
    points = white.vertices.copy()
    depth = np.zeros(len(points))
    for _ in range(steps):
        normals = _unit_rows(corners @ face_normals(white.with_vertices(points)))
        moved = np.column_stack([solve(degree * points[:, axis]) for axis in range(3)])
        depth += np.einsum("ij,ij->i", moved - points, normals)
        points = moved
    centre = white.vertices.mean(axis=0)
    inflated = white.with_vertices(points - points.mean(axis=0))
    scale = np.sqrt(total_area(white) / total_area(inflated))
    return Inflation(white.with_vertices(inflated.vertices * scale + centre), depth - depth.mean())

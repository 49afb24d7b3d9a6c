"""The inflated surface and sulcal depth, as FreeSurfer's ``mris_inflate`` makes them, without spikes.

The white surface is smoothed by conformalized mean-curvature flow (Kazhdan,
Solomon and Ben-Chen 2012): implicit steps ``(M + t L) x' = M x`` with ``L``
the cotangent Laplacian of the white surface, kept, and ``M`` the lumped
area of the current one, updated each step; after each step the surface is
moved back to the white's centroid and scaled back to its area (the size
FreeSurfer's ``l_dist`` term keeps). Smoothing by the mesh's own umbrella
operator instead turns thin strands of white matter into long spikes, which
the rescaling stretches further; this flow shrinks them into the surface
(its limit is the conformal map onto the sphere, where a thin strand covers
a tiny area) and does not pinch them off, as plain mean-curvature flow does.
Sulcal depth (``sulc``) is the displacement along the surface normal
accumulated over the first steps, while the folds flatten (later steps round
the lobes off, which FreeSurfer's inflation keeps), mean-centred: vertices in
sulci move outward (positive), those on gyral crowns inward (negative), as
in FreeSurfer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from neurolearn_cli.surfaces.mesh import (
    Mesh,
    cotangent_laplacian,
    face_normals,
    smooth_values,
    symmetric_solve,
    vertex_areas,
    vertex_normals,
)

#: The flow's implicit steps: their time (mm², at the white surface's area), how many, and over how many of the
#: first the sulcal depth is accumulated.
INFLATION_STEP_MM2 = 30.0
INFLATION_STEPS = 10
SULC_STEPS = 4
#: A face of an inflated surface is spiky when its normal turns more than this from the mean normal around it,
#: the vertex normals averaged this many times with their neighbours' (half own, half neighbours').
SPIKE_ANGLE_DEG = 90.0
SPIKE_SMOOTHING = 5


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


def inflate(white: Mesh, step_time: float = INFLATION_STEP_MM2, steps: int = INFLATION_STEPS,
            sulc_steps: int = SULC_STEPS) -> Inflation:
    """Inflate ``white`` by conformalized mean-curvature flow and measure its sulcal depth.

    Each of ``steps`` steps solves ``(M + t L) x' = M x`` (``t`` is
    ``step_time``, in mm²; see the module's description); in the first
    ``sulc_steps``, the move along the vertex's normal adds to its depth; the
    result is moved and scaled back to the white surface's centroid and area.
    """
    stiffness = cotangent_laplacian(white)
    corners = incidence(white)
    centre = white.vertices.mean(axis=0)
    area = total_area(white)
    points = white.vertices - centre
    depth = np.zeros(len(points))
    for step in range(steps):
        current = white.with_vertices(points)
        mass = vertex_areas(current)
        moved = symmetric_solve(sparse.diags(mass) + step_time * stiffness, mass[:, None] * points)
        if step < sulc_steps:
            depth += np.einsum("ij,ij->i", moved - points, _unit_rows(corners @ face_normals(current)))
        moved -= moved.mean(axis=0)
        points = moved * np.sqrt(area / total_area(white.with_vertices(moved)))
    return Inflation(white.with_vertices(points + centre), depth - depth.mean())


def spiky_faces(inflated: Mesh) -> np.ndarray:
    """Whether each face of ``inflated`` is part of a spike or fold: its normal turns more than
    :data:`SPIKE_ANGLE_DEG` from the mean of its corners' smoothed vertex normals (a smooth inflated surface, as
    FreeSurfer's, has none; a thin strand smoothed into a line has normals all round its axis)."""
    around = smooth_values(inflated, vertex_normals(inflated), SPIKE_SMOOTHING)[inflated.faces].sum(axis=1)
    facing = np.einsum("ij,ij->i", _unit_rows(face_normals(inflated)), _unit_rows(around))
    return facing < np.cos(np.radians(SPIKE_ANGLE_DEG))

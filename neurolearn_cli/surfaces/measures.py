"""Surface measures: FreeSurfer's thickness, mean curvature, sulcal depth, area and enclosed volume."""

from __future__ import annotations

import numpy as np

from neurolearn_cli.surfaces.mesh import (
    Mesh,
    distance_to_surface,
    edges,
    neighbour_mean,
    signed_volume,
    vertex_normals,
)
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM


def thickness(white: Mesh, pial: Mesh, cap_mm: float = MAX_THICKNESS_MM) -> np.ndarray:
    """FreeSurfer's cortical thickness per vertex: the mean of the distances from the white vertex to the
    nearest point of the pial surface and from the pial vertex to the nearest point of the white, capped at
    ``cap_mm``."""
    to_pial = distance_to_surface(white.vertices, pial)
    to_white = distance_to_surface(pial.vertices, white)
    return np.minimum((to_pial + to_white) / 2.0, cap_mm)


def mean_curvature(mesh: Mesh) -> np.ndarray:
    """A discrete mean curvature per vertex (1/mm), positive in sulci and negative on gyral crowns as
    FreeSurfer's ``curv``.

    The umbrella Laplacian along the outward normal, divided by half the mean
    squared edge length: -1/r on a sphere of radius r.
    """
    offset = neighbour_mean(mesh, mesh.vertices) - mesh.vertices
    along = np.einsum("ij,ij->i", offset, vertex_normals(mesh))
    return 2.0 * along / np.maximum(_mean_squared_edge(mesh), 1e-12)


def _mean_squared_edge(mesh: Mesh) -> np.ndarray:
    e = edges(mesh.faces)
    n = len(mesh.vertices)
    squared = np.sum((mesh.vertices[e[:, 0]] - mesh.vertices[e[:, 1]]) ** 2, axis=1)
    total = np.bincount(e[:, 0], squared, n) + np.bincount(e[:, 1], squared, n)
    count = np.bincount(e[:, 0], None, n) + np.bincount(e[:, 1], None, n)
    return total / np.maximum(count, 1)


def volume_between(white: Mesh, pial: Mesh) -> float:
    """The volume between the white and pial surfaces (mm^3 for world meshes)."""
    return signed_volume(pial) - signed_volume(white)

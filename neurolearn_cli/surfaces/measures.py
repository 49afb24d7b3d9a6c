"""Surface measures: FreeSurfer's thickness, mean curvature, sulcal depth, area and enclosed volume."""

from __future__ import annotations

import numpy as np

from neurolearn_cli.surfaces.mesh import (
    Mesh,
    edges,
    neighbour_mean,
    neighbourhood,
    signed_volume,
    vertex_normals,
)
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM

#: How many rings of mesh neighbours the thickness searches for the nearest vertex of the other surface
#: (``mris_thickness``'s default neighbourhood size).
THICKNESS_RINGS = 2


def thickness(white: Mesh, pial: Mesh, cap_mm: float = MAX_THICKNESS_MM,
              rings: int = THICKNESS_RINGS) -> np.ndarray:
    """FreeSurfer's cortical thickness per vertex, as ``mris_thickness`` measures it: the mean of the distance
    from the white vertex to the nearest pial vertex and from the pial vertex to the nearest white vertex, each
    capped at ``cap_mm``.

    The nearest vertex is searched among the vertex's own correspondent and its
    neighbours within ``rings`` edges, never over the whole surface: a neighbour
    counts where its white-to-pial offset points outward along the vertex's
    pial normal and the two pial normals agree, so the search stays on the
    vertex's own bank. A global nearest point would take the pial surface of a
    facing or back-to-back bank a few millimetres away and thin thick cortex.
    """
    near = neighbourhood(white, rings)
    rows = np.repeat(np.arange(len(white.vertices)), np.diff(near.indptr))
    cols = near.indices
    normals = vertex_normals(pial)
    agree = np.einsum("ij,ij->i", normals[rows], normals[cols]) >= 0.0
    to_pial = pial.vertices[cols] - white.vertices[rows]
    to_white = pial.vertices[rows] - white.vertices[cols]
    measured = []
    for offset in (to_pial, to_white):
        outward = np.einsum("ij,ij->i", offset, normals[rows]) >= 0.0
        distance = np.where((rows == cols) | (outward & agree), np.linalg.norm(offset, axis=1), np.inf)
        measured.append(np.minimum(np.minimum.reduceat(distance, near.indptr[:-1]), cap_mm))
    return (measured[0] + measured[1]) / 2.0


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

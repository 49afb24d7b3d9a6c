"""The pial surface: the white surface moved to the GM/CSF boundary along Laplace streamlines, never crossing
itself."""

from __future__ import annotations

import numpy as np
import torch

from neurolearn_cli.surfaces.laplace import pial_targets
from neurolearn_cli.surfaces.mesh import Mesh, adjacency, neighbour_mean, vertex_normals
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM, untangle

#: Tangential umbrella steps that even out the streamline endpoints (they crowd on gyral crowns).
RELAX_ITERATIONS = 10
#: The white-to-target moves are made in this many equal stages, each untangled from the one before.
STAGES = 4
#: How many times a crossing vertex's move is halved before it is put back to the previous stage.
HALVINGS = 3


def place_pial(white: Mesh, inside: torch.Tensor, white_matter: torch.Tensor, affine: torch.Tensor, *,
               max_mm: float = MAX_THICKNESS_MM) -> Mesh:
    """The pial surface of ``white``: each vertex moved to the end of its Laplace streamline.

    ``inside``: the hemisphere's grey-or-white probability; ``white_matter``:
    its topology-corrected white matter (bool), both on the grid of ``affine``
    (:func:`~neurolearn_cli.surfaces.laplace.pial_targets`). The endpoints are
    reached in :data:`STAGES` stages, each the points at that fraction of the
    streamlines' lengths spread evenly along the surface they form
    (tangential smoothing); where a stage makes faces cross, the moves of
    their vertices are shrunk (:func:`untangle`), so the banks of a tight
    sulcus stop where they meet and the rest of the surface goes on.
    """
    fractions = tuple(stage / STAGES for stage in range(1, STAGES + 1))
    stages = pial_targets(white.vertices, vertex_normals(white), white_matter, inside, affine, max_mm=max_mm,
                          fractions=fractions)
    vertices = white.vertices
    for points in stages:
        vertices = untangle(vertices, relax_tangentially(white, points, RELAX_ITERATIONS), white,
                            halvings=HALVINGS)
    return white.with_vertices(vertices)


def relax_tangentially(mesh: Mesh, vertices: np.ndarray, iterations: int) -> np.ndarray:
    """``vertices`` (on ``mesh``'s connectivity) moved halfway to their neighbours' mean along the surface
    only, ``iterations`` times: triangles even out while the shape stays."""
    matrix = adjacency(mesh)
    for _ in range(iterations):
        normals = vertex_normals(mesh.with_vertices(vertices))
        offset = neighbour_mean(mesh, vertices, matrix) - vertices
        offset -= np.einsum("ij,ij->i", offset, normals)[:, None] * normals
        vertices = vertices + 0.5 * offset
    return vertices

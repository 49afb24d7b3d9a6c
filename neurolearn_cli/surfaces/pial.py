"""The pial surface: the white surface moved to the GM/CSF boundary along Laplace streamlines, never crossing
itself."""

from __future__ import annotations

import torch

from neurolearn_cli.surfaces.laplace import pial_targets
from neurolearn_cli.surfaces.mesh import Mesh, vertex_normals
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM, untangle

#: The grey-or-white probability at which the pial surface lies (the GM/CSF boundary).
BOUNDARY_LEVEL = 0.5
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
    streamlines' lengths; where a stage makes faces cross, the moves of their
    vertices are shrunk (:func:`untangle`), so the banks of a tight sulcus
    stop where they meet and the rest of the surface goes on.
    """
    fractions = tuple(stage / STAGES for stage in range(1, STAGES + 1))
    stages = pial_targets(white.vertices, vertex_normals(white), white_matter, inside, affine, max_mm=max_mm,
                          level=BOUNDARY_LEVEL, fractions=fractions)
    vertices = white.vertices
    for points in stages:
        vertices = untangle(vertices, points, white, halvings=HALVINGS)
    return white.with_vertices(vertices)


"""The pial surface: the white surface moved to the GM/CSF boundary along Laplace streamlines, never crossing
itself."""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse

from neurolearn_cli.surfaces.laplace import pial_targets
from neurolearn_cli.surfaces.mesh import (
    Mesh,
    adjacency,
    face_normals,
    neighbour_mean,
    vertex_normals,
)
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM, untangle

#: The level of the pial field at which the pial surface lies (the GM/CSF boundary; the field is shifted so
#: that this level falls at :data:`~neurolearn_cli.surfaces.hemispheres.PIAL_PROBABILITY` of real posteriors).
BOUNDARY_LEVEL = 0.5
#: The white-to-target moves are made in this many equal stages, each untangled from the one before.
STAGES = 4
#: How many times a crossing vertex's move is halved before it is put back to the previous stage.
HALVINGS = 3
#: The most rounds of relaxing the vertices of a stage's turned-over faces (:func:`unfold`).
UNFOLD_ROUNDS = 15


def place_pial(white: Mesh, inside: torch.Tensor, white_matter: torch.Tensor, affine: torch.Tensor, *,
               max_mm: float = MAX_THICKNESS_MM) -> Mesh:
    """The pial surface of ``white``: each vertex moved to the end of its Laplace streamline.

    ``inside``: the hemisphere's grey-or-white probability; ``white_matter``:
    its topology-corrected white matter (bool), both on the grid of ``affine``
    (:func:`~neurolearn_cli.surfaces.laplace.pial_targets`). The endpoints are
    reached in :data:`STAGES` stages, each the points at that fraction of the
    streamlines' lengths, its turned-over faces first relaxed (:func:`unfold`);
    where a stage still makes faces cross, the moves of their vertices are
    shrunk (:func:`untangle`), so the banks of a tight sulcus stop where they
    meet and the rest of the surface goes on.
    """
    fractions = tuple(stage / STAGES for stage in range(1, STAGES + 1))
    stages = pial_targets(white.vertices, vertex_normals(white), white_matter, inside, affine, max_mm=max_mm,
                          level=BOUNDARY_LEVEL, fractions=fractions)
    vertices = white.vertices
    matrix = adjacency(white)
    for points in stages:
        vertices = untangle(vertices, unfold(white, points, matrix=matrix), white, halvings=HALVINGS)
    return white.with_vertices(vertices)


def unfold(white: Mesh, points: np.ndarray, rounds: int = UNFOLD_ROUNDS,
           matrix: sparse.csr_matrix | None = None) -> np.ndarray:
    """``points`` (the vertices of ``white`` moved outward) with their turned-over faces relaxed.

    A face is turned over where its orientation opposes that of the same face
    of ``white``: streamlines converge over a sulcal fundus, so neighbouring
    endpoints there land out of order. The vertices of such faces and their
    neighbours move halfway to their neighbours' mean, round after round, until
    no face is turned over or after ``rounds`` rounds. Only the folds are
    smoothed; left in place, each would make :func:`untangle` shorten the
    moves of every vertex of the faces it crosses, thinning the cortex.
    ``matrix``: the adjacency of ``white``, when the caller has it.
    """
    matrix = adjacency(white) if matrix is None else matrix
    reference = face_normals(white)
    relaxed = points.copy()
    for _ in range(rounds):
        turned = (face_normals(white.with_vertices(relaxed)) * reference).sum(axis=1) <= 0.0
        if not turned.any():
            break
        chosen = np.zeros(len(relaxed), dtype=bool)
        chosen[white.faces[turned].ravel()] = True
        chosen |= matrix @ chosen.astype(np.float64) > 0
        relaxed[chosen] = 0.5 * relaxed[chosen] + 0.5 * neighbour_mean(white, relaxed, matrix)[chosen]
    return relaxed


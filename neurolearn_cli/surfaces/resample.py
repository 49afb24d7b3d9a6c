"""Values from one spherical mesh to another: the barycentric lookup of each target vertex in the source sphere.

Both spheres are centred on the origin (their radii may differ). A target
vertex is matched with the source triangle its direction passes through, and
takes the source values weighted by its barycentric coordinates there; this is
how a participant's values reach fsaverage5 through the registered sphere
(``hemi-L_desc-reg_sphere.surf.gii``) and how fsaverage5's reach the participant.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.mesh import Mesh

#: Candidate triangles per point, tried in turn: the nearest face centres, then many more where none contained it.
CANDIDATES = (8, 64)
#: A target vertex closer than this to a source vertex (relative to the radius) takes that vertex's value exactly.
COINCIDENT = 1e-9


def _unit(points: np.ndarray) -> np.ndarray:
    return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-300)


def _barycentric(directions: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (..., 3) of the rays from the origin along ``directions`` in triangles abc.

    The coordinate of a corner is the volume of the tetrahedron spanned by the
    ray and the opposite edge: all three are non-negative exactly when the ray
    passes through an outward-oriented triangle.
    """
    weights = np.stack([np.einsum("...j,...j->...", directions, np.cross(b, c)),
                        np.einsum("...j,...j->...", directions, np.cross(c, a)),
                        np.einsum("...j,...j->...", directions, np.cross(a, b))], axis=-1)
    total = weights.sum(axis=-1, keepdims=True)
    return weights / np.where(np.abs(total) > 1e-300, total, 1.0)


def barycentric(points: np.ndarray, sphere: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """The vertices (P, 3) and barycentric coordinates (P, 3) on ``sphere`` of the directions of ``points``.

    Each point gets the corners of the triangle its direction passes through
    and its coordinates there; a point on a vertex gets that vertex with weight
    1 (and 0 for the others), exactly. Where no candidate triangle contains
    it (a flipped or degenerate region), the candidate it is least outside of
    is used, its coordinates clipped to be non-negative.
    """
    vertices = _unit(sphere.vertices)
    directions = _unit(np.asarray(points, dtype=np.float64))
    faces = sphere.faces
    corners_out = np.zeros((len(directions), 3), dtype=np.int64)
    weights_out = np.zeros((len(directions), 3))
    centres = cKDTree(_unit(vertices[faces].mean(axis=1)))
    pending = np.arange(len(directions))
    for count in CANDIDATES:
        count = min(count, len(faces))
        _, candidates = centres.query(directions[pending], k=count)
        corners = vertices[faces[candidates]]  # (P, K, 3 corners, 3)
        weights = _barycentric(directions[pending, None, :], corners[..., 0, :], corners[..., 1, :],
                               corners[..., 2, :])
        worst = weights.min(axis=-1)
        best = np.argmax(worst, axis=1)
        rows = np.arange(len(pending))
        chosen = (worst[rows, best] >= -1e-12) | (count == min(CANDIDATES[-1], len(faces)))
        weight = np.clip(weights[rows, best][chosen], 0.0, None)
        corners_out[pending[chosen]] = faces[candidates[rows, best][chosen]]
        weights_out[pending[chosen]] = weight / np.maximum(weight.sum(axis=1, keepdims=True), 1e-300)
        pending = pending[~chosen]
        if not len(pending):
            break
    distance, nearest = cKDTree(vertices).query(directions)
    on_vertex = distance < COINCIDENT
    corners_out[on_vertex] = nearest[on_vertex, None]
    weights_out[on_vertex] = [1.0, 0.0, 0.0]
    return corners_out, weights_out


def barycentric_weights(points: np.ndarray, sphere: Mesh) -> sparse.csr_matrix:
    """The (P, V) matrix that interpolates values on ``sphere``'s V vertices at the directions of ``points``
    (the rows of :func:`barycentric`)."""
    corners, weights = barycentric(points, sphere)
    rows = np.repeat(np.arange(len(corners)), 3)
    matrix = sparse.csr_matrix((weights.ravel(), (rows, corners.ravel())), shape=(len(corners), len(sphere.vertices)))
    matrix.eliminate_zeros()
    return matrix


def sphere_to_sphere(values: np.ndarray, source_sphere: Mesh, target_sphere: Mesh) -> np.ndarray:
    """``values`` on ``source_sphere``'s vertices (V, ...) interpolated at ``target_sphere``'s vertices.

    E.g. a participant's sulc on fsaverage5:
    ``sphere_to_sphere(sulc, registered_sphere, fsaverage5_sphere)``.
    """
    values = np.asarray(values)
    if values.shape[0] != len(source_sphere.vertices):
        raise ValueError(f"{values.shape[0]} values for a sphere of {len(source_sphere.vertices)} vertices")
    matrix = barycentric_weights(target_sphere.vertices, source_sphere)
    flat = values.reshape(len(values), -1).astype(np.float64)
    return np.asarray(matrix @ flat).reshape((len(target_sphere.vertices),) + values.shape[1:])


def project_unproject(sphere: np.ndarray, project_to: Mesh, unproject_from: np.ndarray) -> np.ndarray:
    """Points of ``sphere`` (aligned with ``project_to``) carried to the space ``unproject_from`` is deformed to.

    Workbench's ``-surface-sphere-project-unproject``: each point takes its
    barycentric place in ``project_to``'s triangles, and that place in the
    same triangles of ``unproject_from`` (``project_to``'s vertices moved to
    another atlas, e.g. fsaverage's sphere deformed to fsLR). Returned at the
    input points' radii.
    """
    weights = barycentric_weights(sphere, project_to)
    moved = _unit(weights @ np.asarray(unproject_from, dtype=np.float64))
    return moved * np.linalg.norm(sphere, axis=1, keepdims=True)

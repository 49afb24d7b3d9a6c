"""Resampling per-vertex values between meshes on a common sphere: barycentric weights, as a sparse matrix.

Two meshes registered to one sphere (the participant's ``desc-reg`` sphere and
fsaverage's, say) share coordinates there: each target vertex lies in one
triangle of the source sphere, and its value is the barycentric mix of that
triangle's three vertices (Workbench's ``BARYCENTRIC`` method, FreeSurfer's
``mri_surf2surf`` does the same on the sphere). The weights form a sparse
(target x source) matrix, so a whole time series is resampled by one product.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.mesh import Mesh

#: Nearest source vertices whose triangles are searched for each target vertex.
_CANDIDATE_VERTICES = 8
#: Barycentric coordinates down to this count as inside a triangle (the triangle's edges are shared).
_INSIDE_TOLERANCE = -1e-6


def _on_unit_sphere(points: np.ndarray) -> np.ndarray:
    return points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def _vertex_faces(faces: np.ndarray, n_vertices: int) -> sparse.csr_matrix:
    """(V, F) incidence: which faces each vertex belongs to."""
    rows = faces.reshape(-1)
    columns = np.repeat(np.arange(len(faces)), 3)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(n_vertices, len(faces)))


def _barycentric(points: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of ``points`` (N, 3) centrally projected onto triangles ``corners`` (N, 3, 3).

    The ray from the sphere's centre through the point meets the triangle's
    plane; the coordinates are those of that meeting point (all >= 0 inside).
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    normal = np.cross(b - a, c - a)
    along = np.einsum("ij,ij->i", points, normal)
    scale = np.einsum("ij,ij->i", a, normal) / np.where(np.abs(along) > 1e-12, along, np.nan)
    hit = points * scale[:, None]
    area = np.einsum("ij,ij->i", normal, normal)
    u = np.einsum("ij,ij->i", np.cross(c - b, hit - b), normal) / area
    v = np.einsum("ij,ij->i", np.cross(a - c, hit - c), normal) / area
    weights = np.stack([u, v, 1.0 - u - v], axis=1)
    return np.where((scale > 0)[:, None], weights, np.nan)  # the far side of the sphere is no hit


def barycentric_weights(target: np.ndarray, source: Mesh) -> sparse.csr_matrix:
    """Barycentric weights (T x S) taking values on the ``source`` sphere's vertices to the ``target`` points.

    ``source`` is a spherical mesh, ``target`` (T, 3) points on a sphere
    about the same centre (any radii: both are projected to the unit
    sphere). Each target point takes the triangle of the source that the ray
    from the centre through it crosses, among the triangles of its nearest
    source vertices; a point that none of them holds (a degenerate patch)
    takes its nearest vertex's value. Rows sum to 1.
    """
    vertices = _on_unit_sphere(np.asarray(source.vertices, dtype=np.float64))
    points = _on_unit_sphere(np.asarray(target, dtype=np.float64))
    k = min(_CANDIDATE_VERTICES, len(vertices))
    _, nearest = cKDTree(vertices).query(points, k=k)
    nearest = np.asarray(nearest).reshape(len(points), k)
    incidence = _vertex_faces(source.faces, len(vertices))
    chosen_face = np.full(len(points), -1, dtype=np.int64)
    chosen_weights = np.zeros((len(points), 3))
    best = np.full(len(points), -np.inf)
    for rank in range(k):  # the faces of the rank-th nearest vertex, for every point at once
        around = incidence[nearest[:, rank]].tocoo()
        point_index, face_index = around.row, around.col
        weights = _barycentric(points[point_index], vertices[source.faces[face_index]])
        score = np.nan_to_num(weights.min(axis=1), nan=-np.inf)  # >= 0 inside; the least negative is nearest
        order = np.lexsort((-score, point_index))
        first = order[np.r_[True, point_index[order][1:] != point_index[order][:-1]]]
        better = score[first] > best[point_index[first]]
        update = point_index[first][better]
        best[update] = score[first][better]
        chosen_face[update] = face_index[first][better]
        chosen_weights[update] = weights[first][better]
        if np.all(best >= _INSIDE_TOLERANCE):
            break
    missed = best < _INSIDE_TOLERANCE
    columns = source.faces[np.maximum(chosen_face, 0)].copy()
    weights = np.clip(chosen_weights, 0.0, None)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    columns[missed] = nearest[missed, :1]
    weights[missed] = (1.0, 0.0, 0.0)
    rows = np.repeat(np.arange(len(points)), 3)
    return sparse.csr_matrix((weights.reshape(-1), (rows, columns.reshape(-1))), shape=(len(points), len(vertices)))


def project_unproject(sphere: np.ndarray, project_to: Mesh, unproject_from: np.ndarray) -> np.ndarray:
    """Points of ``sphere`` (aligned with ``project_to``) carried to the space ``unproject_from`` is deformed to.

    Workbench's ``-surface-sphere-project-unproject``: each point takes its
    barycentric place in ``project_to``'s triangles, and that place in the
    same triangles of ``unproject_from`` (``project_to``'s vertices moved to
    another atlas, e.g. fsaverage's sphere deformed to fsLR). Returned at the
    input points' radii.
    """
    weights = barycentric_weights(sphere, project_to)
    moved = _on_unit_sphere(weights @ np.asarray(unproject_from, dtype=np.float64))
    return moved * np.linalg.norm(sphere, axis=1, keepdims=True)

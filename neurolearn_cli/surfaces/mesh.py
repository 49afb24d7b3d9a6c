"""Triangle meshes: extraction from a binary object, Euler characteristic, normals, smoothing, self-intersections.

A mesh is a pair of numpy arrays, vertices (V, 3) float64 and faces (F, 3)
int64, counter-clockwise seen from outside. Generic mesh steps use
scikit-image (marching cubes) and scipy (sparse adjacency, KD-trees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

#: The iso-level of marching cubes on a 0/1 volume: above 0.5, so every ambiguous face or cube keeps the
#: object's voxels apart and the mesh has the topology of the 6-connected object.
BINARY_LEVEL = 0.6


@dataclass(frozen=True)
class Mesh:
    """A closed triangle mesh in millimetres (world or voxel coordinates, as its maker says)."""

    vertices: np.ndarray
    faces: np.ndarray

    def with_vertices(self, vertices: np.ndarray) -> Mesh:
        """The same connectivity with new vertex positions."""
        return Mesh(np.asarray(vertices, dtype=np.float64), self.faces)


def extract(mask: np.ndarray) -> Mesh:
    """The boundary of a binary 3D object as a mesh in voxel coordinates, oriented outward.

    Marching cubes (Lewiner) on the 0/1 volume at :data:`BINARY_LEVEL`,
    padded so that the surface is closed.
    """
    from skimage.measure import marching_cubes

    padded = np.pad(mask.astype(np.float32), 1)
    vertices, faces, _, _ = marching_cubes(padded, level=BINARY_LEVEL, method="lewiner")
    mesh = Mesh(vertices.astype(np.float64) - 1.0, faces.astype(np.int64))
    return mesh if signed_volume(mesh) > 0 else Mesh(mesh.vertices, mesh.faces[:, ::-1].copy())


def signed_volume(mesh: Mesh) -> float:
    """Enclosed volume (divergence theorem): positive when the faces are oriented outward."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def edges(faces: np.ndarray) -> np.ndarray:
    """The unique undirected edges (E, 2) of a triangle list, smaller index first."""
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(pairs, axis=1), axis=0)


def euler_characteristic(mesh: Mesh) -> int:
    """V - E + F: 2 for a closed surface of genus 0, 2 - 2g for genus g."""
    return int(len(mesh.vertices) - len(edges(mesh.faces)) + len(mesh.faces))


def components(mesh: Mesh) -> np.ndarray:
    """The connected component label of every vertex."""
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(adjacency(mesh), directed=False)
    return labels


def adjacency(mesh: Mesh) -> sparse.csr_matrix:
    """Symmetric vertex adjacency (1 per edge) as a sparse matrix."""
    e = edges(mesh.faces)
    n = len(mesh.vertices)
    ones = np.ones(len(e))
    matrix = sparse.coo_matrix((np.concatenate([ones, ones]), (np.concatenate([e[:, 0], e[:, 1]]),
                                                                np.concatenate([e[:, 1], e[:, 0]]))), shape=(n, n))
    return matrix.tocsr()


def face_normals(mesh: Mesh) -> np.ndarray:
    """Unnormalised face normals (length twice the face area)."""
    a, b, c = (mesh.vertices[mesh.faces[:, i]] for i in range(3))
    return np.cross(b - a, c - a)


def vertex_normals(mesh: Mesh) -> np.ndarray:
    """Area-weighted unit vertex normals, pointing outward for an outward-oriented mesh."""
    normals = np.zeros_like(mesh.vertices)
    per_face = face_normals(mesh)
    for i in range(3):
        np.add.at(normals, mesh.faces[:, i], per_face)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


def vertex_areas(mesh: Mesh) -> np.ndarray:
    """A third of the area of each face around a vertex (FreeSurfer's vertex area), in squared units."""
    area = np.linalg.norm(face_normals(mesh), axis=1) / 2.0
    out = np.zeros(len(mesh.vertices))
    for i in range(3):
        np.add.at(out, mesh.faces[:, i], area / 3.0)
    return out


def neighbour_mean(mesh: Mesh, values: np.ndarray, matrix: sparse.csr_matrix | None = None) -> np.ndarray:
    """The mean of ``values`` over each vertex's neighbours (a umbrella-operator step)."""
    matrix = adjacency(mesh) if matrix is None else matrix
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    return (matrix @ values) / degree.reshape((-1,) + (1,) * (values.ndim - 1))


def smooth_values(mesh: Mesh, values: np.ndarray, iterations: int) -> np.ndarray:
    """``values`` averaged with their neighbours' ``iterations`` times (half own, half neighbours)."""
    matrix = adjacency(mesh)
    for _ in range(iterations):
        values = 0.5 * values + 0.5 * neighbour_mean(mesh, values, matrix)
    return values


def _segments_cross_triangles(start: np.ndarray, end: np.ndarray, a: np.ndarray, b: np.ndarray,
                              c: np.ndarray) -> np.ndarray:
    """Whether each segment start-end crosses triangle abc strictly inside (Möller-Trumbore)."""
    direction = end - start
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t_vec = start - a
    u = np.einsum("ij,ij->i", t_vec, p) * inv
    q = np.cross(t_vec, e1)
    v = np.einsum("ij,ij->i", direction, q) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    eps = 1e-9
    return ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)


def _edge_face_pairs(midpoints: np.ndarray, half: np.ndarray, centroids: np.ndarray, radius: np.ndarray,
                     selected: np.ndarray, chunk: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate (edge, face) index pairs close enough to cross: centroid within half edge plus face radius.

    Most faces are queried with a common radius (the 99.9th percentile); the
    few larger ones are queried one by one from their side.
    """
    common = float(np.quantile(radius, 0.999))
    small = radius <= common
    tree = cKDTree(centroids[small])
    small_index = np.flatnonzero(small)
    blocks = []
    for start in range(0, len(selected), chunk):
        block = selected[start:start + chunk]
        found = tree.query_ball_point(midpoints[block], half[block] + common)
        edge_index = np.repeat(block, [len(p) for p in found])
        face_index = small_index[np.fromiter((j for p in found for j in p), dtype=np.int64, count=len(edge_index))]
        blocks.append((edge_index, face_index))
    large = np.flatnonzero(~small)
    if len(large) and len(selected):
        edge_tree = cKDTree(midpoints[selected])
        found = edge_tree.query_ball_point(centroids[large], radius[large] + float(half[selected].max()))
        face_index = np.repeat(large, [len(p) for p in found])
        edge_index = selected[np.fromiter((j for p in found for j in p), dtype=np.int64, count=len(face_index))]
        blocks.append((edge_index, face_index))
    return blocks


def crossings(mesh: Mesh, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Where the mesh crosses itself: the faces crossed by an edge sharing no vertex with them, and those edges'
    (K, 2) vertices.

    Candidates from KD-trees (:func:`_edge_face_pairs`), each tested exactly.
    """
    v, f = mesh.vertices, mesh.faces
    e = edges(f)
    centroids = v[f].mean(axis=1)
    radius = np.linalg.norm(v[f] - centroids[:, None, :], axis=2).max(axis=1)
    half = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1) / 2.0
    midpoints = (v[e[:, 0]] + v[e[:, 1]]) / 2.0
    selected = np.arange(len(e))
    crossed_faces, crossing_edges = [np.zeros(0, dtype=np.int64)], [np.zeros((0, 2), dtype=np.int64)]
    for edge_index, face_index in _edge_face_pairs(midpoints, half, centroids, radius, selected, chunk):
        ends = e[edge_index]
        shares = (f[face_index] == ends[:, :1]).any(axis=1) | (f[face_index] == ends[:, 1:]).any(axis=1)
        edge_index, face_index = edge_index[~shares], face_index[~shares]
        crossed = _segments_cross_triangles(v[e[edge_index, 0]], v[e[edge_index, 1]], v[f[face_index, 0]],
                                            v[f[face_index, 1]], v[f[face_index, 2]])
        crossed_faces.append(face_index[crossed])
        crossing_edges.append(e[edge_index[crossed]])
    return np.unique(np.concatenate(crossed_faces)), np.concatenate(crossing_edges)


def intersecting_faces(mesh: Mesh) -> np.ndarray:
    """The faces crossed by an edge of a face they share no vertex with."""
    return crossings(mesh)[0]


def self_intersections(mesh: Mesh) -> int:
    """The number of faces involved in a self-intersection (0 for an embedded surface)."""
    return int(intersecting_faces(mesh).size)

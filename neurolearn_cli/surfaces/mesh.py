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


def self_intersections(mesh: Mesh) -> int:
    """The number of faces crossed by an edge of a face they share no vertex with.

    Candidate pairs come from a KD-tree on face centroids (radius: the longest
    edge); each edge is tested against each candidate face.
    """
    v, f = mesh.vertices, mesh.faces
    e = edges(f)
    centroids = v[f].mean(axis=1)
    lengths = np.linalg.norm(v[e[:, 0]] - v[e[:, 1]], axis=1)
    reach = float(lengths.max()) * 1.5
    midpoints = (v[e[:, 0]] + v[e[:, 1]]) / 2.0
    pairs = cKDTree(midpoints).query_ball_tree(cKDTree(centroids), reach)
    edge_index = np.repeat(np.arange(len(e)), [len(p) for p in pairs])
    face_index = np.fromiter((j for p in pairs for j in p), dtype=np.int64, count=len(edge_index))
    shares = (f[face_index] == e[edge_index, :1]).any(axis=1) | (f[face_index] == e[edge_index, 1:]).any(axis=1)
    edge_index, face_index = edge_index[~shares], face_index[~shares]
    crossed = _segments_cross_triangles(v[e[edge_index, 0]], v[e[edge_index, 1]], v[f[face_index, 0]],
                                        v[f[face_index, 1]], v[f[face_index, 2]])
    return int(np.unique(face_index[crossed]).size)

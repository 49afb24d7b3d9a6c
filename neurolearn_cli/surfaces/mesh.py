"""Triangle meshes: extraction from a binary object, Euler characteristic, normals, the cotangent Laplacian, smoothing,
self-intersections.

A mesh is a pair of numpy arrays, vertices (V, 3) float64 and faces (F, 3)
int64, counter-clockwise seen from outside. Generic mesh steps use
scikit-image (marching cubes) and scipy (sparse adjacency, KD-trees).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu
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
    """The unique undirected edges (E, 2) of a triangle list, smaller index first, in lexicographic order.

    Each edge is keyed by one integer (smaller * count + larger), which sorts as the pair does, so that the
    unique keys are found by a flat sort rather than a row-wise one.
    """
    start, end = faces.astype(np.int64).ravel(), faces[:, [1, 2, 0]].astype(np.int64).ravel()
    count = int(faces.max()) + 1 if faces.size else 1
    key = np.unique(np.minimum(start, end) * count + np.maximum(start, end))
    return np.stack([key // count, key % count], axis=1).astype(faces.dtype, copy=False)


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


def neighbourhood(mesh: Mesh, rings: int) -> sparse.csr_matrix:
    """Each vertex's neighbourhood: itself and every vertex within ``rings`` edges (a boolean sparse matrix,
    rows sorted)."""
    step = adjacency(mesh).astype(bool) + sparse.identity(len(mesh.vertices), dtype=bool, format="csr")
    reach = sparse.identity(len(mesh.vertices), dtype=bool, format="csr")
    for _ in range(rings):
        reach = (reach @ step).astype(bool)
    reach = reach.tocsr()
    reach.sort_indices()
    return reach


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


def cotangent_laplacian(mesh: Mesh) -> sparse.csr_matrix:
    """The cotangent Laplacian of ``mesh``: weight (cot a + cot b) / 2 on each edge, a and b the angles facing it
    (a face of zero area gives a large finite weight, not a division by zero)."""
    corners = mesh.vertices[mesh.faces]
    rows, columns, weights = [], [], []
    for k in range(3):
        at, after, before = corners[:, k], corners[:, (k + 1) % 3], corners[:, (k + 2) % 3]
        u, w = after - at, before - at
        cotangent = np.einsum("ij,ij->i", u, w) / np.maximum(np.linalg.norm(np.cross(u, w), axis=1), 1e-12)
        i, j = mesh.faces[:, (k + 1) % 3], mesh.faces[:, (k + 2) % 3]
        rows += [i, j]
        columns += [j, i]
        weights += [cotangent / 2, cotangent / 2]
    count = len(mesh.vertices)
    off_diagonal = sparse.csr_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(columns))),
                                     shape=(count, count))
    return (sparse.diags(np.asarray(off_diagonal.sum(axis=1)).ravel()) - off_diagonal).tocsr()


def symmetric_solve(matrix: sparse.spmatrix, right: np.ndarray) -> np.ndarray:
    """``matrix``'s inverse applied to ``right``, for a symmetric positive definite sparse ``matrix`` (a mass plus
    a Laplacian): SuperLU in its symmetric mode (an ordering of A + Aᵀ, pivots on the diagonal), whose factors
    fill in less than with its default ordering for unsymmetric matrices."""
    factors = splu(sparse.csc_matrix(matrix), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                   options={"SymmetricMode": True})
    return factors.solve(right)


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


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...j,...j->...", a, b)


def closest_points_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The point of each triangle abc nearest to each of ``points`` (arrays of one shape (..., 3)).

    The Voronoi-region test of Ericson's *Real-Time Collision Detection*
    (5.1.5): a corner, a point on an edge, or the projection inside, found as
    the weights of ab and ac (two numbers per point rather than a 3-vector per
    region).
    """
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    ab_ab, ab_ac, ac_ac = _dot(ab, ab), _dot(ab, ac), _dot(ac, ac)
    d3, d4, d5, d6 = d1 - ab_ab, d2 - ab_ac, d1 - ab_ac, d2 - ac_ac  # ab.bp, ac.bp, ab.cp, ac.cp
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        safe = np.where(denominator != 0, denominator, 1.0)
        return np.where(denominator != 0, numerator / safe, 0.0)

    total = va + vb + vc
    on_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    regions = [(d1 <= 0) & (d2 <= 0), (d3 >= 0) & (d4 <= d3), (vc <= 0) & (d1 >= 0) & (d3 <= 0),
               (d6 >= 0) & (d5 <= d6), (vb <= 0) & (d2 >= 0) & (d6 <= 0),
               (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)]  # a, b, on ab, c, on ac, on bc: the first that holds
    zero, one = np.zeros_like(d1), np.ones_like(d1)
    along_ab = np.select(regions, [zero, one, ratio(d1, d1 - d3), zero, zero, 1.0 - on_bc], ratio(vb, total))
    along_ac = np.select(regions, [zero, zero, zero, one, ratio(d2, d2 - d6), on_bc], ratio(vc, total))
    return a + along_ab[..., None] * ab + along_ac[..., None] * ac


def distance_to_surface(points: np.ndarray, mesh: Mesh, *, neighbours: int = 8) -> np.ndarray:
    """The exact distance from each of ``points`` (N, 3) to the nearest point of ``mesh``'s triangles.

    An upper bound first: the nearest of the ``neighbours`` faces whose
    centroids are nearest. Faces are then grouped by size (their largest
    centroid-to-corner distance, in doublings of the median), a KD-tree of
    centroids per group: each point is tested against every face of a group
    whose centroid is within the bound plus the group's largest size (no other
    can be nearer), and the bound falls to the nearest found.
    """
    corners = mesh.vertices[mesh.faces]
    centroids = corners.mean(axis=1)
    size = np.linalg.norm(corners - centroids[:, None, :], axis=2).max(axis=1)
    group = np.ceil(np.log2(np.maximum(size / max(float(np.median(size)), 1e-12), 1.0))).astype(np.int64)
    count = min(neighbours, len(centroids))
    _, nearest = cKDTree(centroids).query(points, k=count)
    best = _distances(points, np.arange(len(points)).repeat(count), corners, nearest.ravel())
    best = best.reshape(len(points), count).min(axis=1)
    for level in np.unique(group):
        members = np.flatnonzero(group == level)
        best = np.minimum(best, _nearest_in_group(points, corners[members], centroids[members],
                                                  float(size[members].max()), best))
    return best


def _distances(points: np.ndarray, point: np.ndarray, corners: np.ndarray, face: np.ndarray,
               chunk: int = 1 << 16) -> np.ndarray:
    """The distance from ``points[point[i]]`` to triangle ``corners[face[i]]``, ``chunk`` pairs at a time."""
    found = np.empty(len(point))
    for start in range(0, len(point), chunk):
        here, near = points[point[start:start + chunk]], corners[face[start:start + chunk]]
        closest = closest_points_on_triangles(here, near[:, 0], near[:, 1], near[:, 2])
        found[start:start + chunk] = np.linalg.norm(closest - here, axis=1)
    return found


def _nearest_in_group(points: np.ndarray, corners: np.ndarray, centroids: np.ndarray, reach: float,
                      bound: np.ndarray, rows: int = 1 << 14) -> np.ndarray:
    """The distance from each point to the nearest of these triangles, or any value not below ``bound`` when
    every one of them is farther than ``bound`` (see :func:`distance_to_surface`); ``rows`` points at a time."""
    tree = cKDTree(centroids)
    distance = np.full(len(points), np.inf)
    for start in range(0, len(points), rows):
        block = np.arange(start, min(start + rows, len(points)))
        within = tree.query_ball_point(points[block], bound[block] + reach)
        count = np.fromiter(map(len, within), dtype=np.int64, count=len(within))
        face = np.fromiter((f for faces in within for f in faces), dtype=np.int64, count=int(count.sum()))
        found = _distances(points, block.repeat(count), corners, face)
        some = count > 0
        if some.any():
            distance[block[some]] = np.minimum.reduceat(found, (np.cumsum(count) - count)[some])
    return distance


def _segments_cross_triangles(start: np.ndarray, end: np.ndarray, a: np.ndarray, b: np.ndarray,
                              c: np.ndarray) -> np.ndarray:
    """Whether each segment start-end crosses triangle abc strictly inside (Möller-Trumbore)."""
    direction = end - start
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = _dot(e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    t_vec = start - a
    u = _dot(t_vec, p) * inv
    q = np.cross(t_vec, e1)
    v = _dot(direction, q) * inv
    t = _dot(e2, q) * inv
    eps = 1e-9
    return ok & (u > eps) & (v > eps) & (u + v < 1 - eps) & (t > eps) & (t < 1 - eps)


def _cell_span(low: np.ndarray, high: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """The first and last cell (F, 3) of each box (``low``, ``high``) on a grid of ``cell`` mm from the lowest
    corner."""
    origin = low.min(axis=0)
    return np.floor((low - origin) / cell).astype(np.int64), np.floor((high - origin) / cell).astype(np.int64)


def _cells(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of every box from cell ``first`` to ``last`` (F, 3): the box of each entry and its offset
    (E, 3) from the box's first cell, x fastest."""
    extent = last - first + 1
    per_face = extent.prod(axis=1)
    face = np.repeat(np.arange(len(first)), per_face)
    rank = np.arange(len(face)) - np.repeat(np.cumsum(per_face) - per_face, per_face)
    step = extent[face]
    offset = np.stack([rank % step[:, 0], (rank // step[:, 0]) % step[:, 1], rank // (step[:, 0] * step[:, 1])],
                      axis=1)
    return face, offset


def _sharing_a_cell(low: np.ndarray, high: np.ndarray, cell: float, among: np.ndarray) -> np.ndarray:
    """Whether each box (``low``, ``high``: (F, 3)) touches a cell of the ``cell`` mm grid that a box of an
    ``among`` face (bool per face) touches: every face whose box can overlap one of theirs.

    The cells of the ``among`` boxes are marked, and each box's count of marked
    cells read from their summed-area table, so the other boxes are never
    expanded into their cells.
    """
    first, last = _cell_span(low, high, cell)
    among_first = first[among]
    face, offset = _cells(among_first, last[among])
    marked = np.zeros(tuple(last.max(axis=0) + 1), dtype=np.int64)
    marked[tuple((among_first[face] + offset).T)] = 1
    table = np.zeros(tuple(np.asarray(marked.shape) + 1), dtype=np.int64)
    table[1:, 1:, 1:] = marked.cumsum(axis=0).cumsum(axis=1).cumsum(axis=2)
    count = np.zeros(len(low), dtype=np.int64)
    for corner in range(8):  # inclusion-exclusion over the box's eight corners in the table
        pick = [(corner >> axis) & 1 for axis in range(3)]
        index = tuple(np.where(pick[axis], last[:, axis] + 1, first[:, axis]) for axis in range(3))
        count += (-1) ** (3 - sum(pick)) * table[index]
    return count > 0


def _cell_pairs(low: np.ndarray, high: np.ndarray, cell: float, among: np.ndarray | None = None) -> np.ndarray:
    """Candidate face pairs (P, 2) whose bounding boxes (``low``, ``high``: (F, 3)) overlap, each pair once.

    A uniform grid of ``cell`` mm: every face is entered in each cell its box
    touches; two faces sharing a cell are a candidate when their boxes overlap,
    kept only in the cell that holds the low corner of the overlap: on every
    axis, that cell is the first of one of the two faces (cheap to test before
    the boxes). With ``among`` (bool per face), only pairs with at least one
    such face: those faces come first in their cells, so only pairs led by one
    are formed.
    """
    first, last = _cell_span(low, high, cell)
    dims = last.max(axis=0) + 1
    face, offset = _cells(first, last)
    index = first[face] + offset
    key = (index[:, 0] * dims[1] + index[:, 1]) * dims[2] + index[:, 2]
    first_on = ((offset == 0) * np.array([1, 2, 4])).sum(axis=1).astype(np.int8)  # bit a: face's first cell on a
    if among is None:
        order = np.argsort(key, kind="stable")
    else:
        wanted = np.isin(key, key[among[face]])
        key, face, first_on = key[wanted], face[wanted], first_on[wanted]
        order = np.lexsort((~among[face], key))
    key, face, first_on = key[order], face[order], first_on[order]
    partners = np.searchsorted(key, key, side="right") - np.arange(len(key)) - 1
    if among is not None:
        partners[~among[face]] = 0
    left = np.repeat(np.arange(len(key)), partners)
    right = left + 1 + np.arange(len(left)) - np.repeat(np.cumsum(partners) - partners, partners)
    here = (first_on[left] | first_on[right]) == 7
    s, t = face[left[here]], face[right[here]]
    for low_on, high_on in zip(low.T.copy(), high.T.copy(), strict=True):  # overlap, one axis at a time
        keep = (low_on[s] <= high_on[t]) & (low_on[t] <= high_on[s])
        s, t = s[keep], t[keep]
    return np.stack([s, t], axis=1)


def intersecting_pairs(mesh: Mesh, among: np.ndarray | None = None, *, chunk: int = 1 << 20) -> np.ndarray:
    """The pairs of faces (P, 2) that cross: an edge of one, sharing no vertex with the other, passes through it.

    Candidates from a uniform grid of bounding boxes (:func:`_cell_pairs`;
    with ``among``, a bool per face, only pairs with one of those), those
    entirely on one side of the other's plane dropped, the rest tested exactly:
    six edge-triangle tests per pair sharing no vertex, two (the edges opposite
    the shared vertex) per pair sharing one; pairs sharing an edge never cross
    in this sense. Each pair once, smaller face first, in lexicographic order.
    """
    v, f = mesh.vertices, mesh.faces
    corners = v[f]
    low, high = corners.min(axis=1), corners.max(axis=1)
    cell = max(1.5 * float(np.median((high - low).max(axis=1))), 1e-9)
    if among is None:
        candidates = _cell_pairs(low, high, cell)
    elif not among.any():
        candidates = np.zeros((0, 2), dtype=np.int64)
    else:  # only the faces near one of ``among`` can pair with one
        near = np.flatnonzero(_sharing_a_cell(low, high, cell, among))
        candidates = near[_cell_pairs(low[near], high[near], cell, among[near])]
    normals = face_normals(mesh)
    found = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, len(candidates), chunk):
        s, t = candidates[start:start + chunk].T
        s_corner, t_corner, shared = _shared_corners(f[s], f[t])
        apart, touching = np.flatnonzero(shared == 0), np.flatnonzero(shared == 1)
        apart = apart[_straddles(corners[t[apart]], corners[s[apart], 0], normals[s[apart]])
                      & _straddles(corners[s[apart]], corners[t[apart], 0], normals[t[apart]])]
        s_corner, t_corner = s_corner[touching], t_corner[touching]
        crossable = (_opposite_edge_straddles(corners, t[touching], t_corner, s[touching], normals)
                     | _opposite_edge_straddles(corners, s[touching], s_corner, t[touching], normals))
        touching, s_corner, t_corner = touching[crossable], s_corner[crossable], t_corner[crossable]
        found.append(_pairs_crossing_apart(corners, s[apart], t[apart]))
        found.append(_pairs_crossing_at_corner(corners, s[touching], t[touching], s_corner, t_corner))
    pairs = np.sort(np.concatenate(found), axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _edges_cross(corners: np.ndarray, one: np.ndarray, other: np.ndarray, start: np.ndarray,
                 end: np.ndarray) -> np.ndarray:
    """Whether the edge from corner ``start`` to corner ``end`` of each face ``one`` crosses face ``other``."""
    triangle = corners[other]
    return _segments_cross_triangles(corners[one, start], corners[one, end], triangle[:, 0], triangle[:, 1],
                                     triangle[:, 2])


def _pairs_crossing_apart(corners: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The pairs of faces sharing no vertex that cross: any of the three edges of either through the other."""
    crossed = np.zeros(len(s), dtype=bool)
    for one, other in ((s, t), (t, s)):
        for i, j in ((0, 1), (1, 2), (2, 0)):
            crossed |= _edges_cross(corners, one, other, np.full(len(s), i), np.full(len(s), j))
    return np.stack([s[crossed], t[crossed]], axis=1)


def _shared_corners(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pairs of faces (vertex indices, (K, 3) each): the corner of each face that is a vertex of the other
    (the last one, 0 when none) and how many vertices they share."""
    first_corner, second_corner = np.zeros(len(first), dtype=np.int64), np.zeros(len(first), dtype=np.int64)
    shared = np.zeros(len(first), dtype=np.int8)
    for i in range(3):
        for j in range(3):
            same = first[:, i] == second[:, j]
            shared += same
            first_corner[same], second_corner[same] = i, j
    return first_corner, second_corner, shared


def _pairs_crossing_at_corner(corners: np.ndarray, s: np.ndarray, t: np.ndarray, s_corner: np.ndarray,
                              t_corner: np.ndarray) -> np.ndarray:
    """The pairs of faces sharing one vertex (corner ``s_corner`` of s, ``t_corner`` of t) that cross: the edge
    of either opposite that vertex through the other."""
    crossed = np.zeros(len(s), dtype=bool)
    for one, other, shared_corner in ((s, t, s_corner), (t, s, t_corner)):
        crossed |= _edges_cross(corners, one, other, (shared_corner + 1) % 3, (shared_corner + 2) % 3)
    return np.stack([s[crossed], t[crossed]], axis=1)


def _straddles(triangles: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Whether the corners of each triangle (K, 3, 3) are not all strictly on one side of a plane."""
    side = np.einsum("kcj,kj->kc", triangles - origin[:, None, :], normal)
    return ~((side > 0).all(axis=1) | (side < 0).all(axis=1))


def _opposite_edge_straddles(corners: np.ndarray, one: np.ndarray, shared_corner: np.ndarray, other: np.ndarray,
                             normals: np.ndarray) -> np.ndarray:
    """Whether the edge of each face ``one`` opposite its ``shared_corner`` has its ends strictly on both sides of
    face ``other``'s plane: only then can it pass through ``other`` (faces sharing one vertex always touch that
    plane there, so :func:`_straddles` keeps them all)."""
    origin, normal = corners[other, 0], normals[other]
    start, end = (_dot(corners[one, (shared_corner + step) % 3] - origin, normal) for step in (1, 2))
    return ((start > 0) & (end < 0)) | ((start < 0) & (end > 0))


def intersecting_faces(mesh: Mesh, among: np.ndarray | None = None) -> np.ndarray:
    """The faces that cross another face of the mesh (sorted indices); with ``among``, only in pairs with one
    of those faces."""
    return np.unique(intersecting_pairs(mesh, among))


def self_intersections(mesh: Mesh) -> int:
    """The number of faces involved in a self-intersection (0 for an embedded surface)."""
    return int(intersecting_faces(mesh).size)

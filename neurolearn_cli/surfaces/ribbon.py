"""Voxelizing closed meshes: which voxel centres lie inside, and the cortical ribbon between white and pial."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from neurolearn_cli.surfaces.mesh import Mesh, face_normals

#: The largest spacing, in voxels, between the points marked along a triangle's edges: fine enough that the voxels
#: they fall in leave no gap a fill could leak through, however long the triangle (the pial surface's are stretched).
_POINT_SPACING_VOXELS = 0.25
#: Triangles whose points are made and reduced to one per voxel at a time.
_CHUNK_FACES = 1 << 16


def _barycentric_weights(divisions: int) -> np.ndarray:
    """The (K, 3) weights of the points of a triangle divided ``divisions`` times along each edge."""
    steps = [(i, j) for i in range(divisions + 1) for j in range(divisions + 1 - i)]
    return np.array([(i, j, divisions - i - j) for i, j in steps], dtype=np.float64) / divisions


def _surface_points(corners: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Points covering every triangle of (F, 3, 3) ``corners`` (voxel coordinates), each triangle divided so that
    its points lie at most :data:`_POINT_SPACING_VOXELS` apart, and the triangle of each point: in chunks of at
    most :data:`_CHUNK_FACES` triangles, so that the points of a large mesh are never all held at once."""
    longest = np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=-1).max(axis=1)
    divisions = np.maximum(np.ceil(longest / _POINT_SPACING_VOXELS), 1).astype(np.int64)
    for n in np.unique(divisions):
        weights = _barycentric_weights(int(n))
        same = np.flatnonzero(divisions == n)
        for start in range(0, len(same), _CHUNK_FACES):
            chosen = same[start:start + _CHUNK_FACES]
            yield (np.einsum("kc,fcd->fkd", weights, corners[chosen]).reshape(-1, 3),
                   np.repeat(chosen, len(weights)))


def _nearest_per_voxel(linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The index of the point of smallest ``offset`` (under 1) among those of each voxel ``linear``."""
    order = np.argsort(linear + offset, kind="stable")
    return order[np.r_[True, np.diff(linear[order]) != 0]]


def inside(mesh: Mesh, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """Whether each voxel centre of the grid (``shape``, ``affine``) lies inside the closed world ``mesh``.

    The voxels the surface passes through are marked, the region they enclose
    filled; each marked voxel is then decided by the side its centre lies on
    of the triangle through its surface point nearest the centre.
    """
    inverse = np.linalg.inv(affine)
    found: list[tuple[np.ndarray, ...]] = []
    for points, triangles in _surface_points(mesh.vertices[mesh.faces] @ inverse[:3, :3].T + inverse[:3, 3]):
        index = np.rint(points).astype(np.int64)
        keep = np.all((index >= 0) & (index < np.asarray(shape)), axis=1)
        points, index, triangles = points[keep], index[keep], triangles[keep]
        linear = np.ravel_multi_index(tuple(index.T), shape)
        offset = ((points - index) ** 2).sum(axis=1)  # under 0.75
        nearest = _nearest_per_voxel(linear, offset)
        found.append((linear[nearest], offset[nearest], points[nearest], triangles[nearest]))
    linear, offset, points, triangles = (np.concatenate(parts) for parts in zip(*found, strict=True))
    nearest = _nearest_per_voxel(linear, offset)
    marked = np.stack(np.unravel_index(linear[nearest], shape), axis=1)
    shell = np.zeros(shape, dtype=bool)
    shell[tuple(marked.T)] = True
    enclosed = ndimage.binary_fill_holes(shell) & ~shell
    towards_centre = (marked - points[nearest]) @ affine[:3, :3].T
    side = np.einsum("ij,ij->i", towards_centre, face_normals(mesh)[triangles[nearest]])
    enclosed[tuple(marked[side < 0].T)] = True
    return enclosed


def ribbon(white: Mesh, pial: Mesh, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """The voxels inside ``pial`` and outside ``white`` (FreeSurfer's ribbon) of one hemisphere."""
    return inside(pial, shape, affine) & ~inside(white, shape, affine)

"""Voxelizing closed meshes: which voxel centres lie inside, and the cortical ribbon between white and pial."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from neurolearn_cli.surfaces.mesh import Mesh, vertex_normals

#: Barycentric subdivisions per triangle edge when marking the voxels a surface passes through.
_SUBDIVISIONS = 4


def _surface_points(mesh: Mesh) -> np.ndarray:
    steps = [(i, j) for i in range(_SUBDIVISIONS + 1) for j in range(_SUBDIVISIONS + 1 - i)]
    weights = np.array([(i, j, _SUBDIVISIONS - i - j) for i, j in steps], dtype=np.float64) / _SUBDIVISIONS
    corners = mesh.vertices[mesh.faces]  # (F, 3, 3)
    return np.einsum("kc,fcd->fkd", weights, corners).reshape(-1, 3)


def inside(mesh: Mesh, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """Whether each voxel centre of the grid (``shape``, ``affine``) lies inside the closed world ``mesh``.

    The voxels the surface passes through are marked, the region they enclose
    filled; each marked voxel is then decided by the side of the nearest
    vertex's tangent plane it lies on.
    """
    inverse = np.linalg.inv(affine)
    voxel = _surface_points(mesh) @ inverse[:3, :3].T + inverse[:3, 3]
    index = np.rint(voxel).astype(np.int64)
    keep = np.all((index >= 0) & (index < np.asarray(shape)), axis=1)
    shell = np.zeros(shape, dtype=bool)
    shell[tuple(index[keep].T)] = True
    enclosed = ndimage.binary_fill_holes(shell) & ~shell
    marked = np.argwhere(shell)
    centres = marked @ affine[:3, :3].T + affine[:3, 3]
    _, nearest = cKDTree(mesh.vertices).query(centres)
    side = np.einsum("ij,ij->i", centres - mesh.vertices[nearest], vertex_normals(mesh)[nearest])
    result = enclosed.copy()
    result[tuple(marked[side < 0].T)] = True
    return result


def ribbon(white: Mesh, pial: Mesh, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """The voxels inside ``pial`` and outside ``white`` (FreeSurfer's ribbon) of one hemisphere."""
    return inside(pial, shape, affine) & ~inside(white, shape, affine)

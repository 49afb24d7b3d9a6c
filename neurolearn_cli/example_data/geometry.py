"""Grid coordinates, rigid transforms and resampling shared by the simulators."""

from __future__ import annotations

import numpy as np
from nibabel.affines import apply_affine, from_matvec
from nibabel.eulerangles import euler2mat
from scipy.ndimage import map_coordinates


def world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """World (mm) coordinates of every voxel centre, shape ``(3, *shape)``."""
    indices = np.indices(shape[:3], dtype=np.float32).reshape(3, -1).T
    return apply_affine(affine, indices).T.reshape(3, *shape[:3]).astype(np.float32)


def rigid_matrix(params: np.ndarray) -> np.ndarray:
    """4x4 world transform from ``(trans_x, trans_y, trans_z, rot_x, rot_y, rot_z)`` in mm and radians.

    Rotations are about the world origin, applied x then y then z, then the translation.
    """
    rotation = euler2mat(z=params[5], y=params[4], x=params[3])
    return from_matvec(rotation, params[:3])


def voxel_map(target_affine: np.ndarray, transform: np.ndarray, source_affine: np.ndarray) -> np.ndarray:
    """Matrix taking target voxel indices to the source voxel indices they sample.

    ``transform`` moves the object from source world to target world, so a
    target point ``x`` looks up ``transform^-1 x`` in the source.
    """
    return np.linalg.inv(source_affine) @ np.linalg.inv(transform) @ target_affine


def grid_points(shape: tuple[int, ...], matrix: np.ndarray) -> np.ndarray:
    """Apply a voxel-to-voxel matrix to every index of ``shape``; returns ``(3, n)`` float32."""
    indices = np.indices(shape[:3], dtype=np.float32).reshape(3, -1)
    return (matrix[:3, :3].astype(np.float32) @ indices + matrix[:3, 3:4].astype(np.float32))


def sample(volume: np.ndarray, points: np.ndarray, order: int = 1) -> np.ndarray:
    """Sample ``volume`` at voxel ``points`` ``(3, n)``; zero outside the grid."""
    return map_coordinates(volume, points, order=order, mode="constant", cval=0.0, prefilter=False)

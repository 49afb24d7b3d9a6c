"""Thick-slice copies of a scan, as a clinical protocol acquires them (e.g. 1x1x5 mm from 1 mm).

A thick slice integrates the signal over its width, so a slice of the copy is
the mean of ``factor`` consecutive slices of the original along ``axis`` (a box
slice profile); in-plane the voxels can be made finer by an integer factor
(linear interpolation). The affine keeps every voxel centre at the world point
it averages, so the copy overlays the original. Used by the tests and the
robustness benchmarks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def thick_slices(data: np.ndarray, affine: np.ndarray, *, axis: int, factor: int,
                 in_plane: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``data`` with every ``factor`` slices along ``axis`` averaged into one; in-plane voxels ``in_plane`` times finer.

    Slices past the last whole block are dropped. Returns the data (float32)
    and its voxel-to-world affine.
    """
    count = data.shape[axis] // factor
    kept = np.take(data.astype(np.float32), np.arange(count * factor), axis=axis)
    blocks = kept.reshape(*kept.shape[:axis], count, factor, *kept.shape[axis + 1:]).mean(axis=axis + 1)
    scale = np.ones(4)
    shift = np.zeros(3)
    scale[axis] = factor
    shift[axis] = (factor - 1) / 2.0
    if in_plane > 1:
        zoom = [1.0 / in_plane if a != axis else 1.0 for a in range(3)]
        blocks = ndimage.zoom(blocks, [in_plane if a != axis else 1 for a in range(3)], order=1, grid_mode=True,
                              mode="nearest")
        for a in range(3):
            if a != axis:
                scale[a] = zoom[a]
                shift[a] = (zoom[a] - 1) / 2.0
    voxel_map = np.diag(scale)
    voxel_map[:3, 3] = shift
    return blocks.astype(np.float32), affine @ voxel_map

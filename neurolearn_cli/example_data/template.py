"""Nilearn's MNI152 2009a template resampled to the example dataset's 2 mm grid.

The example dataset is simulated in template space and deformed per
participant. nilearn ships the 1 mm T1w, GM and WM maps inside its package, so
nothing is downloaded; they are block-averaged to 2 mm and padded below (room
for a neck) and in front (room for a face).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import nilearn
import numpy as np

_DATA_DIR = Path(nilearn.__file__).parent / "datasets" / "data"
_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
#: Padding of the 2 mm grid, in voxels: (before, after) along x, y, z.
_PAD = ((0, 0), (2, 6), (16, 0))
#: Slices kept along z after padding (the top of the template is mostly air).
_Z_SIZE = 104
_FACTOR = 2


@dataclass(frozen=True)
class TemplateMaps:
    """Brain maps on the 2 mm example grid (template space, RAS, mm).

    Attributes
    ----------
    t1 : ndarray
        Template T1w intensity scaled to 0..1 (WM about 0.86, GM 0.65, CSF 0.27), 0 outside the brain.
    gm, wm, csf : ndarray
        Tissue fractions 0..1; ``csf`` is the brain mask's remainder.
    affine : ndarray
        4x4 voxel-to-world matrix of the grid.
    """

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    affine: np.ndarray

    @property
    def brain(self) -> np.ndarray:
        """Brain fraction (GM + WM + CSF) per voxel."""
        return self.gm + self.wm + self.csf


def block_average(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping ``factor``-cubes, dropping trailing partial blocks."""
    shape = [size // factor for size in volume.shape]
    cropped = volume[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor]
    return cropped.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))


def _downsampled_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """Affine of ``block_average``'s output: voxels ``factor`` times larger, centred on their blocks."""
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] * factor
    scaled[:3, 3] = affine[:3, :3] @ np.full(3, (factor - 1) / 2) + affine[:3, 3]
    return scaled


def _to_grid(volume: np.ndarray) -> np.ndarray:
    """Pad a downsampled map to the example grid and crop its top."""
    return np.pad(volume, _PAD)[:, :, :_Z_SIZE].astype(np.float32)


def _load(path: Path) -> nib.spatialimages.SpatialImage:
    image = nib.load(path)
    if not isinstance(image, nib.spatialimages.SpatialImage):
        raise TypeError(f"{path} is not a volume image")
    return image


@lru_cache(maxsize=1)
def load_template() -> TemplateMaps:
    """Load and downsample the bundled template once per process (arrays are read-only)."""
    images = {name: _load(_DATA_DIR / filename) for name, filename in _FILES.items()}
    affine = _downsampled_affine(images["t1"].affine, _FACTOR)
    affine[:3, 3] -= affine[:3, :3] @ np.array([before for before, _ in _PAD], dtype=float)
    maps = {}
    for name, image in images.items():
        data = np.asarray(image.dataobj, dtype=np.float32) / 255.0
        maps[name] = _to_grid(block_average(data, _FACTOR))
    t1_mask = np.asarray(images["t1"].dataobj) > 0
    mask = _to_grid(block_average(t1_mask.astype(np.float32), _FACTOR))
    gm = np.minimum(maps["gm"], mask)
    wm = np.minimum(maps["wm"], mask - gm)
    csf = np.clip(mask - gm - wm, 0.0, 1.0)
    arrays = {"t1": maps["t1"], "gm": gm, "wm": wm, "csf": csf}
    for array in arrays.values():
        array.setflags(write=False)
    affine.setflags(write=False)
    return TemplateMaps(affine=affine, **arrays)

"""The bundled MNI152NLin2009aSym template (nilearn's 1 mm copy) and its tissue priors.

nilearn ships the T1w and the GM/WM probability maps; the brain mask is the
T1w (scaled to [0, 1]) above 0.2, as ``nilearn.datasets.load_mni152_brain_mask``
makes it, and the CSF prior is what the mask holds beyond GM and WM (clipped
to [0, 1]).
Coarser resolutions are integer block averages of the 1 mm grid, so every
resolution shares the same world extent and no interpolation is involved.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurolearn_cli.engine.image import Grid, Image
from neurolearn_cli.spaces import BUNDLED_TEMPLATE

TEMPLATE_NAME = BUNDLED_TEMPLATE
MASK_THRESHOLD = 0.2


@dataclass(frozen=True)
class Template:
    """A T1w template with tissue priors, all on one grid.

    Attributes
    ----------
    name : str
        Template identifier used in derivative names (``space-<name>``).
    t1w : Image
        Template T1w, intensities in [0, 1].
    gm, wm, csf : Image
        Tissue probability maps in [0, 1].
    mask : Image
        Brain mask fraction in [0, 1] (binary at 1 mm, partial volume when coarser).
    """

    name: str
    t1w: Image
    gm: Image
    wm: Image
    csf: Image
    mask: Image

    def priors(self) -> Image:
        """GM, WM and CSF maps as one 4D image, so one resampling maps the points once for all three."""
        return self.gm.with_data(torch.stack([self.gm.data, self.wm.data, self.csf.data], dim=-1))

    @property
    def resolution(self) -> float:
        """Voxel size in mm."""
        return self.t1w.spacing[0]


def _block_average(data: torch.Tensor, factor: int) -> torch.Tensor:
    """Average ``factor``³ blocks; the volume is zero-padded up to a multiple of ``factor``."""
    pad = [(-n) % factor for n in data.shape]
    padded = F.pad(data[None, None], (0, pad[2], 0, pad[1], 0, pad[0]))
    return F.avg_pool3d(padded, factor)[0, 0]


def _coarse_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """Affine of a grid whose voxels are ``factor``³ blocks of the ``affine`` grid."""
    scaled = affine.copy()
    scaled[:3, :3] = affine[:3, :3] * factor
    scaled[:3, 3] = affine[:3, :3] @ np.full(3, (factor - 1) / 2.0) + affine[:3, 3]
    return scaled


def _check_factor(factor: float) -> int:
    if int(factor) != factor or factor < 1:
        raise ValueError(f"coarsening factor must be a positive integer, got {factor}")
    return int(factor)


def coarse_grid(grid: Grid, factor: int) -> Grid:
    """The grid of ``factor``³ blocks of ``grid``: where :func:`coarsen` puts its block averages."""
    factor = _check_factor(factor)
    affine = torch.as_tensor(_coarse_affine(grid.affine.cpu().numpy(), factor), dtype=torch.float64,
                             device=grid.device)
    nx, ny, nz = (-(-n // factor) for n in grid.shape)
    return Grid((nx, ny, nz), affine)


def coarsen(template: Template, factor: int) -> Template:
    """``template`` block-averaged by an integer ``factor`` (voxels ``factor`` times larger)."""
    factor = _check_factor(factor)
    if factor == 1:
        return template
    affine = coarse_grid(template.t1w.grid, factor).affine
    images = {
        key: Image(_block_average(getattr(template, key).data, factor).contiguous(), affine)
        for key in ("t1w", "gm", "wm", "csf", "mask")
    }
    return Template(name=template.name, **images)


@functools.lru_cache(maxsize=8)
def template_grid(device: torch.device, resolution: int) -> Grid:
    """The bundled template's grid at ``resolution`` mm, from its file's header alone (no voxels read)."""
    from nilearn import datasets

    from neurolearn_cli.engine.io import read_grid

    return coarse_grid(read_grid(datasets.MNI152_FILE_PATH, device), resolution)  # load_template's T1w file


@functools.lru_cache(maxsize=4)
def load_template(device: torch.device, resolution: int = 1) -> Template:
    """Load the bundled template at ``resolution`` mm (an integer block size) on ``device``.

    Cached: every stage of a participant run uses it, and it is never modified
    (steps read its tensors and build new ones).

    Parameters
    ----------
    device : torch.device
        Where the images live.
    resolution : int
        Voxel size in mm: 1 (native) or a coarser integer (block average).

    Returns
    -------
    Template
    """
    from nilearn import datasets

    t1w_img = datasets.load_mni152_template(resolution=1)
    arrays = {
        "t1w": t1w_img.get_fdata(dtype=np.float32),
        "gm": datasets.load_mni152_gm_template(resolution=1).get_fdata(dtype=np.float32),
        "wm": datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32),
    }
    arrays["t1w"] /= arrays["t1w"].max()
    arrays["mask"] = (arrays["t1w"] > MASK_THRESHOLD).astype(np.float32)
    arrays["csf"] = np.clip(arrays["mask"] - arrays["gm"] - arrays["wm"], 0.0, 1.0)
    affine = torch.as_tensor(np.asarray(t1w_img.affine, dtype=np.float64), device=device)
    images = {key: Image(torch.as_tensor(array, device=device).contiguous(), affine) for key, array in arrays.items()}
    return coarsen(Template(name=TEMPLATE_NAME, **images), resolution)

"""Intensity-based head/brain mask of an EPI or GRE volume (BOLD reference, fieldmap magnitude).

Half of Otsu's threshold on the lightly smoothed positive intensities (coil
shading leaves deep structures of an EPI darker than Otsu's bright/dark cut;
half of it keeps them and still rejects the background), a two-voxel opening
(erosion then dilation) that cuts bridges to the scalp and ghosts, the
largest connected component, holes filled. EPI and GRE magnitude images show
little signal outside the head, so this is what BET-like tools reduce to there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.morphology import dilate, erode, fill_holes, largest_component
from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.errors import InputError

_OTSU_FRACTION = 0.5
_OPENING = 2
_CORNERS = 3  # connected components join across corners (26-connectivity)


def _smooth(volume: torch.Tensor) -> torch.Tensor:
    """3x3x3 box average (replicate padding): light denoising before thresholding."""
    padded = F.pad(volume[None, None], (1,) * 6, mode="replicate")
    return F.avg_pool3d(padded, 3, stride=1)[0, 0]


def intensity_mask(volume: torch.Tensor) -> torch.Tensor:
    """Boolean mask (X, Y, Z) of the bright object in a 3D volume, on its device."""
    if volume.dim() != 3:
        raise InputError(None, f"mask input must be a 3D volume, got shape {tuple(volume.shape)}")
    smooth = _smooth(volume.to(torch.float32))
    positive = smooth[smooth > 0]
    if positive.numel() == 0:
        raise InputError(None, "volume holds no positive intensity to mask")
    mask = smooth > _OTSU_FRACTION * otsu_threshold(positive)
    mask = dilate(largest_component(erode(mask, _OPENING), _CORNERS), _OPENING)
    return fill_holes(largest_component(mask & (smooth > 0), _CORNERS))

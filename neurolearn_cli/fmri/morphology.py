"""Binary morphology on 3D boolean tensors.

Erosion and dilation are 3x3x3 min / max pools on the tensor's device.
Connected components and hole filling are sequential by nature (union-find),
which a GPU gains nothing from: the small boolean mask makes one host round
trip through ``scipy.ndimage`` (26-connectivity) and comes back to its device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

_CUBE = np.ones((3, 3, 3), dtype=bool)


def dilate(mask: torch.Tensor, iterations: int = 1) -> torch.Tensor:
    """Binary dilation by a 3x3x3 cube, ``iterations`` times."""
    out = mask.to(torch.float32)[None, None]
    for _ in range(iterations):
        out = F.max_pool3d(out, 3, stride=1, padding=1)
    return out[0, 0] > 0.5


def erode(mask: torch.Tensor, iterations: int = 1) -> torch.Tensor:
    """Binary erosion by a 3x3x3 cube, ``iterations`` times (outside the volume counts as 0)."""
    out = F.pad(mask.to(torch.float32), (iterations,) * 6)[None, None]
    for _ in range(iterations):
        out = -F.max_pool3d(-out, 3, stride=1, padding=1)
    inner = tuple(slice(iterations, n - iterations) for n in out.shape[2:])
    return out[0, 0][inner] > 0.5


def largest_component(mask: torch.Tensor) -> torch.Tensor:
    """The largest 26-connected component of a boolean mask (empty stays empty)."""
    labels, count = ndimage.label(mask.detach().cpu().numpy().astype(bool), structure=_CUBE)
    if count == 0:
        return mask.bool()
    sizes = np.bincount(labels.ravel())[1:]
    return torch.from_numpy(labels == 1 + int(sizes.argmax())).to(mask.device)


def fill_holes(mask: torch.Tensor) -> torch.Tensor:
    """Fill cavities: background voxels not connected to the volume's border become foreground."""
    filled = ndimage.binary_fill_holes(mask.detach().cpu().numpy().astype(bool))
    return torch.from_numpy(filled).to(mask.device)

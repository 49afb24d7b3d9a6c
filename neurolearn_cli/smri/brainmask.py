"""Brain mask from tissue posteriors and the warped template mask.

Brain = voxels where the brain classes outweigh the non-brain class, with GM
and WM counted within a margin around the warped template mask and CSF only
inside it (plus a small margin). CSF-dark voxels outside the template brain
(thick extra-cerebral fluid, dura, partial-volume skull, dark muscle) are
ambiguous by intensity alone; counting them as brain made the mask swell into
a shell around the brain on heads with a wide fluid layer. The raw mask is
opened to cut thin bridges to the scalp (meninges, optic nerves), reduced to
its largest connected component, closed, and its holes filled. Morphology runs
on the host with ``scipy.ndimage`` (connected components have no torch
equivalent); only the binary mask crosses.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from neurolearn_cli.engine.image import Image, bounding_box
from neurolearn_cli.errors import ProcessingError


def _ball(radius_vox: tuple[int, int, int]) -> np.ndarray:
    axes = [np.arange(-r, r + 1) / max(r, 1) for r in radius_vox]
    grid = np.meshgrid(*axes, indexing="ij")
    return sum(g**2 for g in grid) <= 1.0


def _radius(spacing: tuple[float, float, float], mm: float) -> tuple[int, int, int]:
    return tuple(max(1, int(round(mm / s))) for s in spacing)


#: Radii of the opening (cuts bridges to the scalp) and of the closing of the brain mask.
OPEN_MM, CLOSE_MM = 2.0, 2.0


def clean_mask(
    mask: np.ndarray, spacing: tuple[float, float, float], *, open_mm: float = OPEN_MM, close_mm: float = CLOSE_MM
) -> np.ndarray:
    """Open, keep the largest component, close, fill holes (slice-wise too) of a boolean volume."""
    opened = ndimage.binary_opening(mask, structure=_ball(_radius(spacing, open_mm)))
    labels, n = ndimage.label(opened)
    if n == 0:
        raise ProcessingError("brain mask: no brain voxels found")
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = labels == int(np.argmax(sizes))
    pad = max(_radius(spacing, close_mm))
    padded = np.pad(largest, pad)
    closed = ndimage.binary_closing(padded, structure=_ball(_radius(spacing, close_mm)))[pad:-pad, pad:-pad, pad:-pad]
    filled = ndimage.binary_fill_holes(closed)
    for axis in range(3):
        for index in range(filled.shape[axis]):
            plane = np.take(filled, index, axis=axis)
            holes = ndimage.binary_fill_holes(plane) & ~plane
            if holes.any():
                view = [slice(None)] * 3
                view[axis] = index
                filled[tuple(view)] |= holes
    return filled


def _box_max(mask: torch.Tensor, radius: tuple[int, int, int]) -> torch.Tensor:
    """Box dilation of a boolean volume: three 1D maxima, O(3r) rather than O(r^3) per voxel."""
    grown = mask[None, None].float()
    for axis, r in enumerate(radius):
        kernel, padding = [1, 1, 1], [0, 0, 0]
        kernel[axis], padding[axis] = 2 * r + 1, r
        grown = torch.nn.functional.max_pool3d(grown, tuple(kernel), stride=1, padding=tuple(padding))
    return grown[0, 0] > 0


def dilate(mask: torch.Tensor, spacing: tuple[float, float, float], mm: float) -> torch.Tensor:
    """Boolean ``mask`` grown by ``mm`` along each axis (box element; ``mm`` <= 0 returns it unchanged).

    Works on the mask's bounding box widened by the radius (a brain fills a
    fifth of a 0.7 mm head scan's grid), which gives the same result.
    """
    if mm <= 0 or not bool(mask.any()):
        return mask
    radius = _radius(spacing, mm)
    box = bounding_box(mask, radius)
    grown = torch.zeros_like(mask, dtype=torch.bool)
    grown[box] = _box_max(mask[box], radius)
    return grown


def brain_mask(
    posteriors: torch.Tensor, template_mask: Image, *, margin_mm: float = 6.0, csf_margin_mm: float = 0.0
) -> Image:
    """Binary brain mask (float32 0/1) on ``template_mask``'s grid.

    Parameters
    ----------
    posteriors : Tensor
        (4, X, Y, Z) GM, WM, CSF, other probabilities on the T1w grid.
    template_mask : Image
        Template brain mask (fraction in [0, 1]) warped onto the same grid.
    margin_mm : float
        How far beyond the warped template mask GM and WM may extend.
    csf_margin_mm : float
        How far beyond it CSF still counts as brain (0: only inside it).
    """
    spacing = template_mask.spacing
    inside = template_mask.data > 0.5
    tissue = posteriors[0] + posteriors[1]
    brain_prob = torch.where(dilate(inside, spacing, margin_mm), tissue, 0.0)
    brain_prob = brain_prob + torch.where(dilate(inside, spacing, csf_margin_mm), posteriors[2], 0.0)
    raw = (brain_prob > 0.5).cpu().numpy()
    return template_mask.with_data(torch.as_tensor(_clean_in_box(raw, spacing), device=template_mask.device).float())


def _clean_in_box(raw: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """:func:`clean_mask` on the mask's bounding box only (a third of a 0.7 mm head scan: 16 s -> 5 s).

    The box keeps a background margin wider than the opening and closing
    radii, so every step sees what it would on the whole grid.
    """
    if not raw.any():
        return clean_mask(raw, spacing)
    margin = np.array(_radius(spacing, OPEN_MM)) + np.array(_radius(spacing, CLOSE_MM)) + 2
    box = bounding_box(torch.from_numpy(raw), margin.tolist())
    cleaned = np.zeros_like(raw)
    cleaned[box] = clean_mask(raw[box], spacing)
    return cleaned

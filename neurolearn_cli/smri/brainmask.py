"""Brain mask from tissue posteriors and the warped template mask.

Brain = voxels where the brain classes outweigh the non-brain class, with GM
and WM counted within a margin around the warped template mask and CSF only
inside it (plus a small margin). CSF-dark voxels outside the template brain
(thick extra-cerebral fluid, dura, partial-volume skull, dark muscle) are
ambiguous by intensity alone; counting them as brain made the mask swell into
a shell around the brain on heads with a wide fluid layer. The raw mask is
opened to cut thin bridges to the scalp (meninges, optic nerves), reduced to
its largest connected component, closed, and its holes filled, with
:mod:`neurolearn_cli.engine.morphology` (on the mask's device; connected
components and hole filling on a host copy). Last, its outermost layer loses
the voxels that are mostly white matter with no white matter inside the mask
beside them (:func:`detached_white_rim`): cortex covers the white matter
everywhere but at the brainstem's cut, so such a voxel is dura, a sinus or
fat of white matter's brightness, which the template's margin let in.
"""

from __future__ import annotations

import torch

from neurolearn_cli.engine.image import Image, bounding_box
from neurolearn_cli.engine.morphology import (
    ball,
    box,
    closing,
    cross,
    dilate,
    erode,
    fill_holes,
    largest_component,
    opening,
    radius_voxels,
)
from neurolearn_cli.errors import ProcessingError

#: Radii of the opening (cuts bridges to the scalp) and of the closing of the brain mask.
OPEN_MM, CLOSE_MM = 2.0, 2.0


def clean_mask(
    mask: torch.Tensor, spacing: tuple[float, float, float], *, open_mm: float = OPEN_MM, close_mm: float = CLOSE_MM
) -> torch.Tensor:
    """Open, keep the largest component, close, fill holes (slice-wise too) of a boolean volume.

    The opening and closing use balls of ``open_mm`` and ``close_mm``; the
    closing is computed as if the grid went on with background, so the grid's
    faces erode nothing.
    """
    opened = opening(mask, structure=ball(radius_voxels(spacing, open_mm)))
    if not bool(opened.any()):
        raise ProcessingError("brain mask: no brain voxels found")
    closed = closing(largest_component(opened), structure=ball(radius_voxels(spacing, close_mm)), extend=True)
    filled = fill_holes(closed)
    for axis in range(3):
        filled = fill_holes(filled, plane_axis=axis)
    return filled


def grow(mask: torch.Tensor, spacing: tuple[float, float, float], mm: float) -> torch.Tensor:
    """Boolean ``mask`` dilated by a box reaching ``mm`` along each axis (``mm`` <= 0 returns it unchanged)."""
    if mm <= 0:
        return mask
    return dilate(mask, structure=box(radius_voxels(spacing, mm)))


def brain_mask(
    posteriors: torch.Tensor, template_mask: Image, *, margin_mm: float = 6.0, csf_margin_mm: float = 0.0,
    keep: torch.Tensor | None = None,
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
    keep : Tensor, optional
        Boolean voxels never taken off the mask's rim (a lesion).
    """
    spacing = template_mask.spacing
    inside = template_mask.data > 0.5
    tissue = posteriors[0] + posteriors[1]
    brain_prob = torch.where(grow(inside, spacing, margin_mm), tissue, 0.0)
    brain_prob = brain_prob + torch.where(grow(inside, spacing, csf_margin_mm), posteriors[2], 0.0)
    mask = _clean_in_box(brain_prob > 0.5, spacing)
    rim = detached_white_rim(mask, posteriors[1] > 0.5)
    if keep is not None:
        rim &= ~keep
    return template_mask.with_data((mask & ~rim).float())


def detached_white_rim(mask: torch.Tensor, white: torch.Tensor) -> torch.Tensor:
    """Voxels of ``mask``'s outermost layer that are ``white`` with no ``white`` voxel of its interior among their
    6 neighbours; voxels on the grid's faces (a cropped scan's cut) are never counted.

    The brainstem's white matter, cut by the mask, continues inwards and stays.
    """
    interior = erode(mask, structure=cross())
    beside_white = dilate(interior & white, structure=cross())
    rim = mask & ~interior & white & ~beside_white
    rim[[0, -1]] = False
    rim[:, [0, -1]] = False
    rim[:, :, [0, -1]] = False
    return rim


def foreground_mask(image: Image) -> Image:
    """Brain mask (float32 0/1) of an already skull-stripped image: its non-zero voxels, cleaned as above.

    The user's extraction is kept, as fMRIPrep keeps a pre-stripped T1w's
    foreground: tissue classes at its edge (the zero background next to
    dark CSF) would cut into the brain it holds.
    """
    return image.with_data(_clean_in_box(image.data != 0, image.spacing).float())


def _clean_in_box(raw: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
    """:func:`clean_mask` on the mask's bounding box only (a third of a 0.7 mm head scan).

    The box keeps a background margin wider than the opening and closing
    radii, so every step sees what it would on the whole grid.
    """
    if not bool(raw.any()):
        return clean_mask(raw, spacing)
    margin = [o + c + 2 for o, c in zip(radius_voxels(spacing, OPEN_MM), radius_voxels(spacing, CLOSE_MM), strict=True)]
    region = bounding_box(raw, margin)
    cleaned = torch.zeros_like(raw)
    cleaned[region] = clean_mask(raw[region], spacing)
    return cleaned

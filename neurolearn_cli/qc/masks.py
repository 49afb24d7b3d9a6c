"""Head, air ("hat") and artifact masks of a T1w image, as MRIQC's anatomical workflow uses them.

Masks are torch bool tensors on the image's device. Thresholds and distances
run on the tensors; connected components, hole filling and the distance
transform run on a host copy with ``scipy.ndimage`` (one-off geometry, no
torch equivalent).

Simplifications against MRIQC
-----------------------------
- Head mask: MRIQC thresholds a gradient image (or uses BET); here the image is
  thresholded at Otsu's level, closed, reduced to its largest connected
  component and hole-filled (in 3D and slice by slice). Cavities open to the
  outside (mouth, sinuses of a non-defaced face) can stay out of it; they only
  reach the air mask when the brain mask reaches down to them.
- Air mask: MRIQC keeps the background above the nasion-to-occipital plane,
  found by warping a template mask. Here the background is kept above the
  lowest slice of the brain mask along the axis closest to world superior, a
  plane parallel to the axial slices through the bottom of the cerebellum. Both
  drop the neck, the shoulders and the air in front of the face, where
  aliasing and fat shifts are expected. Large connected regions of exact zeros
  (defacing, padding outside the field of view: MRIQC's "rotmask") are
  excluded as well.
- Artifact mask: as MRIQC (Mortamet 2009): air voxels whose intensity lies more
  than ``zscore`` robust standard deviations above the air median, away from
  the head (normalised distance >= 0.1, the distance computed on a ~3 mm grid),
  cleaned by a binary opening.
"""

from __future__ import annotations

import nibabel.orientations as nio
import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

from neurolearn_cli.engine import morphology
from neurolearn_cli.engine.morphology import cross, fill_holes, largest_component, opening
from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.qc.measures import mad, median, percentile


def head_mask(t1w: torch.Tensor, closing: int = 2) -> torch.Tensor:
    """Mask of the head (scalp, skull and brain) of a 3D image.

    Otsu's threshold on intensities clipped at their 99.5th percentile, a
    binary closing by ``closing`` 3x3x3 iterations (computed as if
    the grid went on with background, so it never erodes the head where it
    meets the grid's faces), the largest connected component, then hole
    filling in 3D and in every slice along each axis.
    """
    t1w = t1w.contiguous()  # readers may hand over Fortran-ordered views
    clipped = t1w.clamp(max=percentile(t1w[t1w > 0], 99.5)) if bool((t1w > 0).any()) else t1w
    mask = clipped > otsu_threshold(clipped)
    mask = fill_holes(largest_component(morphology.closing(mask, closing, extend=True)))
    for axis in range(3):  # slice-wise too: the head is open at the neck and, defaced, at the face
        mask = fill_holes(mask, plane_axis=axis)
    return mask


def frame_mask(t1w: torch.Tensor) -> torch.Tensor:
    """Regions of exact zeros (defacing, padding outside the field of view), opened to drop isolated zeros.

    Beyond the field of view there is no signal either, so the zeros are
    padded with one layer of set voxels before the 3x3x3 opening (as MRIQC's
    rotation mask): a zero frame one or two voxels thick along the grid's
    faces survives it.
    """
    zeros = t1w == 0
    if not bool(zeros.any()):
        return zeros
    padded = F.pad(zeros.to(torch.uint8), (1,) * 6, value=1) > 0
    return opening(padded)[1:-1, 1:-1, 1:-1]


def superior_axis(affine: np.ndarray) -> tuple[int, int]:
    """The voxel axis closest to world superior and its direction (+1: index grows upwards)."""
    ornt = nio.io_orientation(np.asarray(affine, dtype=np.float64))
    axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    return axis, int(ornt[axis, 1])


def air_mask(
    t1w: torch.Tensor, head: torch.Tensor, brain: torch.Tensor, affine: np.ndarray
) -> torch.Tensor:
    """The background above the bottom of the brain, outside the head and outside zero-filled frames.

    Parameters
    ----------
    t1w : Tensor
        3D T1w intensities.
    head, brain : Tensor
        Bool head and brain masks on the same grid.
    affine : ndarray
        4x4 voxel-to-world (RAS) affine, to find which way is up.
    """
    axis, direction = superior_axis(affine)
    occupied = brain.any(dim=tuple(a for a in range(3) if a != axis)).nonzero().reshape(-1)
    shape = [1, 1, 1]
    shape[axis] = t1w.shape[axis]
    index = torch.arange(t1w.shape[axis], device=t1w.device).reshape(shape)
    if occupied.numel() == 0:
        above = torch.zeros_like(head)
    elif direction > 0:
        above = (index >= int(occupied.min())).expand(t1w.shape)
    else:
        above = (index <= int(occupied.max())).expand(t1w.shape)
    return ~head & above & ~frame_mask(t1w)


def distance_to_mask(
    mask: torch.Tensor, spacing: tuple[float, float, float], step_mm: float = 3.0
) -> torch.Tensor:
    """Euclidean distance in mm from each voxel to ``mask``, computed on a grid of about ``step_mm``.

    The mask is reduced by blocks of ``f`` voxels per axis (a block belongs to the
    mask when any of its voxels does), the exact distance transform runs on that
    coarse grid and each voxel takes its block's value: the error stays under
    one block diagonal, and the cost drops by ``f**3``.
    """
    factors = [max(1, int(round(step_mm / float(step)))) for step in spacing]
    coarse = F.max_pool3d(
        mask[None, None].to(torch.float32), kernel_size=factors, stride=factors, ceil_mode=True
    )
    coarse_mask = coarse[0, 0].cpu().numpy() > 0.5
    sampling = [float(step) * f for step, f in zip(spacing, factors, strict=True)]
    distance = torch.from_numpy(ndi.distance_transform_edt(~coarse_mask, sampling=sampling)).to(
        mask.device
    )
    for axis, f in enumerate(factors):
        distance = distance.repeat_interleave(f, dim=axis).narrow(axis, 0, mask.shape[axis])
    return distance


def artifact_mask(
    t1w: torch.Tensor,
    air: torch.Tensor,
    head: torch.Tensor,
    spacing: tuple[float, float, float],
    zscore: float = 10.0,
) -> torch.Tensor:
    """Artifactual voxels in the air mask (Mortamet 2009, as MRIQC).

    Positive air intensities are standardised by their median and normalised MAD;
    voxels with ``z > zscore`` whose distance to the head is at least 10% of
    the largest head-to-air distance (:func:`distance_to_mask`) are kept, then a
    binary opening (6-connected cross) removes isolated voxels.
    """
    values = t1w[air & (t1w > 0)]
    if values.numel() < 100:
        return torch.zeros_like(air)
    spread = mad(values)
    if spread <= 0:
        return torch.zeros_like(air)
    candidates = air & ((t1w - median(values)) / spread > zscore)
    if not bool(candidates.any()):
        return candidates
    distance = distance_to_mask(head, spacing)
    far = distance >= 0.1 * float(distance[air].max())
    return opening(candidates & far, structure=cross()) & air

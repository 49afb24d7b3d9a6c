"""Resample an image onto a target grid through a transform, in one interpolation.

For every target voxel centre ``x`` the source image is evaluated at
``T(x)`` (pull-back, as ``antsApplyTransforms``). A whole chain of transforms
(motion, distortion, coregistration, normalization) is applied to the points
first, so the image is interpolated once. Linear chains collapse into one
voxel-to-voxel matrix. 4D images are processed in chunks of volumes to bound
memory; a batched transform gives each volume its own transform.
"""

from __future__ import annotations

from typing import Literal

import torch

from neurolearn_cli.engine._bspline import prefilter, sample_bspline
from neurolearn_cli.engine._sampling import sample
from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.transforms import Transform, as_matrix
from neurolearn_cli.errors import InputError

Order = Literal["nearest", "linear", "bspline"]

#: Target points processed at once (times volumes), bounding peak memory to ~1 GiB.
_MAX_POINTS = 2**23


def _index_grid(grid: Grid) -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float32, device=grid.device) for n in grid.shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _voxel_coords(
    source_affine: torch.Tensor, target: Grid, transform: Transform | None, start: int, stop: int
) -> torch.Tensor:
    """Continuous source voxel coordinates (N, X', Y', Z', 3) of the target voxel centres.

    N is ``stop - start`` for a batched transform (volumes ``start:stop``), else 1.
    """
    device = source_affine.device
    batched = transform is not None and transform.n_volumes is not None
    part = transform.select_volumes(start, stop) if batched else transform
    world_to_source = torch.linalg.inv(source_affine)
    matrix = as_matrix(part, device)
    if matrix is not None:
        vox2vox = world_to_source @ matrix @ target.affine.to(device)
        vox2vox = vox2vox.reshape(-1, 4, 4).to(torch.float32)
        index = _index_grid(target.to(device)).reshape(1, -1, 3)
        voxel = torch.baddbmm(vox2vox[:, None, :3, 3], index.expand(vox2vox.shape[0], -1, -1),
                              vox2vox[:, :3, :3].transpose(1, 2))
        return voxel.reshape(-1, *target.shape, 3)
    points = part.map_points(world_grid(target.to(device)).unsqueeze(0))
    w2s = world_to_source.to(torch.float32)
    return points @ w2s[:3, :3].T + w2s[:3, 3]


def _interpolate(
    volumes: torch.Tensor, voxel: torch.Tensor, order: Order, fill: float
) -> torch.Tensor:
    if order == "bspline":
        return sample_bspline(prefilter(volumes), voxel, fill=fill)
    return sample(volumes, voxel, mode=order, fill=fill)


def resample(
    image: Image,
    target: Grid,
    transform: Transform | None = None,
    *,
    order: Order = "linear",
    fill: float = 0.0,
) -> Image:
    """Resample ``image`` onto ``target`` through ``transform`` (fixed -> moving points).

    Parameters
    ----------
    image : Image
        3D or 4D source ("moving") image.
    target : Grid
        Output grid ("fixed" / reference space).
    transform : Transform or None
        Maps target world points to source world points; None is the identity
        (resampling by world coordinates). A batched transform (T volumes)
        needs a 3D image or a 4D image of T volumes, and gives a 4D output.
    order : {"nearest", "linear", "bspline"}
        Interpolation; "bspline" is cubic B-spline (can overshoot the input range).
    fill : float
        Value for target points that map outside the source image.

    Returns
    -------
    Image
        On ``target``'s grid and on ``image``'s device, float32.
    """
    if order not in ("nearest", "linear", "bspline"):
        raise InputError(None, f"unknown interpolation order {order!r}")
    device = image.device
    transform = None if transform is None else transform.to(device)
    batch = None if transform is None else transform.n_volumes
    if batch is not None and image.data.dim() == 4 and image.n_volumes != batch:
        raise InputError(None, f"image has {image.n_volumes} volumes but the transform has {batch}")
    data = image.data if image.data.dim() == 4 else image.data.unsqueeze(-1)
    n_out = batch or data.shape[-1]
    n_points = max(1, target.shape[0] * target.shape[1] * target.shape[2])
    chunk = max(1, _MAX_POINTS // n_points)
    pieces = []
    for start in range(0, n_out, chunk):
        stop = min(n_out, start + chunk)
        voxel = _voxel_coords(image.affine, target, transform, start, stop)
        if batch is None:
            volumes = data[..., start:stop].permute(3, 0, 1, 2).unsqueeze(0)
        elif image.data.dim() == 3:
            volumes = data.permute(3, 0, 1, 2).unsqueeze(0).expand(stop - start, -1, -1, -1, -1)
        else:
            volumes = data[..., start:stop].permute(3, 0, 1, 2).unsqueeze(1)
        out = _interpolate(volumes.contiguous(), voxel, order, fill)
        pieces.append(out.reshape(-1, *target.shape))
    result = torch.cat(pieces, dim=0).permute(1, 2, 3, 0)
    if image.data.dim() == 3 and batch is None:
        result = result[..., 0]
    return Image(result.contiguous(), target.affine.to(device))


def resample_labels(
    labels: Image, target: Grid, transform: Transform | None = None, *, labels_per_pass: int = 8
) -> Image:
    """Resample a 3D label image, keeping label values: per-label linear vote.

    Each label's indicator is interpolated linearly and every target voxel takes
    the label with the highest weight (ANTs' ``GenericLabel`` with a linear
    kernel), which gives smoother, less blocky boundaries than nearest neighbour.
    Target points outside the source get label 0.
    """
    if labels.data.dim() != 3:
        raise InputError(None, f"label image must be 3D, got shape {tuple(labels.data.shape)}")
    if transform is not None and transform.n_volumes is not None:
        raise InputError(None, "label images take a single (unbatched) transform")
    values = torch.unique(labels.data)
    if not bool((values == torch.round(values)).all()):
        raise InputError(None, "label image holds non-integer values")
    device = labels.device
    transform = None if transform is None else transform.to(device)
    voxel = _voxel_coords(labels.affine, target, transform, 0, 1)
    best_score = torch.full(target.shape, -1.0, device=device)
    best_label = torch.zeros(target.shape, device=device)
    for start in range(0, values.numel(), labels_per_pass):
        group = values[start : start + labels_per_pass]
        indicators = (labels.data.unsqueeze(0) == group.view(-1, 1, 1, 1)).to(torch.float32)
        scores = sample(indicators.unsqueeze(0), voxel, mode="linear", fill=0.0)[0]
        top_score, top_index = scores.max(dim=0)
        better = top_score > best_score
        best_score = torch.where(better, top_score, best_score)
        best_label = torch.where(better, group[top_index], best_label)
    best_label = best_label.masked_fill(best_score <= 0, 0.0)
    return Image(best_label, target.affine.to(device))


__all__ = ["Order", "resample", "resample_labels", "world_grid"]

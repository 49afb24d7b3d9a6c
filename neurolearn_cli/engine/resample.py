"""Resample an image onto a target grid through a transform, in one interpolation.

For every target voxel centre ``x`` the source image is evaluated at
``T(x)`` (pull-back, as ``antsApplyTransforms``). A whole chain of transforms
(motion, distortion, coregistration, normalization) is applied to the points
first, so the image is interpolated once. Linear chains collapse into one
voxel-to-voxel matrix. 4D images are processed in chunks of volumes to bound
memory (the points of an unbatched transform are mapped once for all of
them); a batched transform gives each volume its own transform.
"""

from __future__ import annotations

from typing import Literal

import torch

from neurolearn_cli.engine._bspline import interpolate
from neurolearn_cli.engine._sampling import inside_mask, sample, spatial_shape
from neurolearn_cli.engine.geometry import index_grid
from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.transforms import Chain, Transform, as_matrix

Order = Literal["nearest", "linear", "bspline", "sinc"]
ORDERS: tuple[Order, ...] = ("nearest", "linear", "bspline", "sinc")

#: Target points processed at once (times volumes), bounding peak memory to ~1 GiB.
_MAX_POINTS = 2**23
#: Interpolate only the target points inside the source when fewer than this fraction are.
_COMPACT_BELOW = 0.8


def _split_linear_tail(transform: Transform) -> tuple[Transform | None, torch.Tensor | None]:
    """``transform`` as (head, tail matrix): an unbatched head, then a linear tail (4, 4) or (T, 4, 4).

    The head is None when the whole transform is linear, and the tail the
    identity when the transform ends non-linearly. The tail is None when the
    head holds a per-volume (batched) part: the whole transform must then be
    mapped volume by volume.
    """
    cpu = torch.device("cpu")
    parts = transform.transforms if isinstance(transform, Chain) else [transform]
    split = len(parts)
    while split > 0 and as_matrix(parts[split - 1], cpu) is not None:
        split -= 1
    head = None if split == 0 else Chain(parts[:split])
    if head is not None and head.n_volumes is not None:
        return head, None
    return head, as_matrix(Chain(parts[split:]), cpu) if split < len(parts) else as_matrix(None, cpu)


class _TargetPoints:
    """Source voxel coordinates of a target grid's voxel centres, volume by volume.

    Splits the transform into an unbatched head, mapped once for all volumes,
    and a linear (possibly per-volume) tail applied as one matrix per volume;
    a fully linear transform becomes one voxel-to-voxel matrix per volume.
    Only a per-volume part followed by a non-linear one maps every volume's
    points through the whole transform.
    """

    def __init__(self, source_affine: torch.Tensor, target: Grid | torch.Tensor, transform: Transform | None) -> None:
        """``target``: a grid (its voxel centres) or world points (P, 3)."""
        device = source_affine.device
        world_to_source = torch.linalg.inv(source_affine)
        head, tail = (None, as_matrix(None, device)) if transform is None else _split_linear_tail(transform)
        self.per_volume = transform if tail is None else None
        if isinstance(target, Grid) and tail is not None and head is None:  # one voxel-to-voxel matrix
            target = target.to(device)
            self.points = index_grid(target.shape, target.device, torch.float32).reshape(1, -1, 3)
            self.matrices = world_to_source @ tail.to(device) @ target.affine
            return
        world = (world_grid(target.to(device)) if isinstance(target, Grid)
                 else target.to(device=device, dtype=torch.float32)).reshape(1, -1, 3)
        if tail is None:
            self.points, self.matrices = world, world_to_source
        else:
            self.points = world if head is None else head.map_points(world)
            self.matrices = world_to_source @ tail.to(device)

    def voxel(self, start: int, stop: int) -> torch.Tensor:
        """Continuous source voxel coordinates (N, P, 3) of the P target points, N volumes or 1."""
        points = self.points
        if self.per_volume is not None:
            points = self.per_volume.select_volumes(start, stop).map_points(points)
        matrices = self.matrices if self.matrices.dim() == 2 else self.matrices[start:stop]
        matrices = matrices.reshape(-1, 4, 4).to(torch.float32)
        n = max(points.shape[0], matrices.shape[0])
        return torch.baddbmm(matrices[:, None, :3, 3].expand(n, -1, -1), points.expand(n, -1, -1),
                             matrices[:, :3, :3].transpose(1, 2).expand(n, -1, -1))


def _interpolate(
    volumes: torch.Tensor, voxel: torch.Tensor, order: Order, fill: float
) -> torch.Tensor:
    """``volumes`` (N, C, X, Y, Z) at ``voxel`` (N, P, 3): (N, C, P).

    When many points fall outside the source (often half of a template grid
    around a BOLD field of view), only the inside ones are interpolated and
    the rest set to ``fill``; gathering them costs more than it saves when
    nearly all are inside.
    """
    shape = spatial_shape(volumes)
    # decided on every 64th point (a full pass over the mask would cost more than the decision is worth)
    compact = float(inside_mask(voxel[:, ::64], shape).float().mean()) < _COMPACT_BELOW
    inside = inside_mask(voxel, shape).any(dim=0) if compact else None
    grid = (voxel if inside is None else voxel[:, inside]).reshape(voxel.shape[0], 1, 1, -1, 3)
    if order == "nearest" or order == "linear":
        values = sample(volumes, grid, mode=order, fill=fill)
    else:
        values = interpolate(volumes, grid, bandlimited=order == "sinc", fill=fill)
    values = values.reshape(*values.shape[:2], -1)
    if inside is None:
        return values
    out = torch.full((*values.shape[:2], voxel.shape[1]), fill, dtype=values.dtype, device=values.device)
    out[:, :, inside] = values
    return out


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
    order : {"nearest", "linear", "bspline", "sinc"}
        Interpolation. "bspline" is cubic B-spline; "sinc" is band-limited
        (exact 2x upsampling, then cubic B-spline), which keeps the fine
        detail and noise texture of MRI data that a cubic spline smooths
        (~1.2x its cost). Both can overshoot the input range near edges.
    fill : float
        Value for target points that map outside the source image.

    Returns
    -------
    Image
        On ``target``'s grid and on ``image``'s device, float32.
    """
    if order not in ORDERS:
        raise ValueError(f"unknown interpolation order {order!r}")
    device = image.device
    values = _sample(image, target, None if transform is None else transform.to(device), order, fill)
    result = values.reshape(-1, *target.shape).permute(1, 2, 3, 0)
    if image.data.dim() == 3 and (transform is None or transform.n_volumes is None):
        result = result[..., 0]
    return Image(result.contiguous(), target.affine.to(device))


def sample_points(
    image: Image,
    points: torch.Tensor,
    transform: Transform | None = None,
    *,
    order: Order = "linear",
    fill: float = 0.0,
) -> torch.Tensor:
    """Values of ``image`` at world ``points`` (P, 3) pulled back through ``transform``, in one interpolation.

    As :func:`resample` with scattered points (e.g. a surface's vertices) for
    a grid. Returns (P,) for a 3D image and an unbatched transform, else
    (P, T), on ``image``'s device.
    """
    if order not in ORDERS:
        raise ValueError(f"unknown interpolation order {order!r}")
    device = image.device
    transform = None if transform is None else transform.to(device)
    values = _sample(image, points.reshape(-1, 3), transform, order, fill)
    if image.data.dim() == 3 and (transform is None or transform.n_volumes is None):
        return values[0]
    return values.T.contiguous()


def _sample(image: Image, target: Grid | torch.Tensor, transform: Transform | None, order: Order,
            fill: float) -> torch.Tensor:
    """(T, P) values of ``image`` at the P target points (a grid's voxel centres or world points), T volumes."""
    batch = None if transform is None else transform.n_volumes
    if batch is not None and image.data.dim() == 4 and image.n_volumes != batch:
        raise ValueError(f"image has {image.n_volumes} volumes but the transform has {batch}")
    data = image.data if image.data.dim() == 4 else image.data.unsqueeze(-1)
    n_out = batch or data.shape[-1]
    n_points = max(1, target.shape[0] * target.shape[1] * target.shape[2] if isinstance(target, Grid)
                   else target.shape[0])
    chunk = max(1, _MAX_POINTS // n_points)
    pieces = []
    points = _TargetPoints(image.affine, target, transform)
    shared = None if batch is not None else points.voxel(0, 1)
    for start in range(0, n_out, chunk):
        stop = min(n_out, start + chunk)
        voxel = shared if shared is not None else points.voxel(start, stop)
        if batch is None:
            volumes = data[..., start:stop].permute(3, 0, 1, 2).unsqueeze(0)
        elif image.data.dim() == 3:
            volumes = data.permute(3, 0, 1, 2).unsqueeze(0).expand(stop - start, -1, -1, -1, -1)
        else:
            volumes = data[..., start:stop].permute(3, 0, 1, 2).unsqueeze(1)
        pieces.append(_interpolate(volumes.contiguous(), voxel, order, fill).reshape(-1, n_points))
    return torch.cat(pieces, dim=0)


def _corner_vote(labels: torch.Tensor, voxel: torch.Tensor) -> torch.Tensor:
    """Labels at continuous voxel coordinates ``(P, 3)``: the label of the largest linear weight.

    Linear interpolation of a label's indicator at a point is the summed weight
    of the point's 8 neighbours that hold that label, so the winning label is
    always one of those 8: scoring each neighbour's label against the others
    gives the per-label vote in ``O(64)`` per point whatever the label count,
    and only points whose neighbours disagree (parcel borders) need it.
    Ties go to the smallest label; points outside the grid (ITK rule) get 0.
    """
    sizes = labels.shape
    upper = torch.tensor(sizes, device=voxel.device, dtype=voxel.dtype) - 1
    clamped = torch.minimum(voxel.clamp_min(0.0), upper)  # "border" padding
    base = torch.minimum(clamped.floor(), (upper - 1).clamp_min(0))  # so base + 1 stays inside
    frac = clamped - base
    base = base.long()
    # an axis of length 1 has no "+1" neighbour: its step is 0 (both corners are the one voxel)
    strides = [(sizes[1] * sizes[2]) * (sizes[0] > 1), sizes[2] * (sizes[1] > 1), int(sizes[2] > 1)]
    offsets = torch.tensor([i * strides[0] + j * strides[1] + k * strides[2]
                            for i in (0, 1) for j in (0, 1) for k in (0, 1)], device=voxel.device)
    flat = (base[:, 0] * sizes[1] * sizes[2] + base[:, 1] * sizes[2] + base[:, 2])[:, None] + offsets
    corner_labels = labels.reshape(-1)[flat]  # (P, 8)
    voted = corner_labels[:, 0].clone()
    mixed = torch.nonzero((corner_labels != corner_labels[:, :1]).any(dim=1)).squeeze(1)
    if mixed.numel():
        f = frac[mixed]
        pairs = [torch.stack([1.0 - f[:, axis], f[:, axis]], dim=1) for axis in range(3)]
        weight = (pairs[0][:, :, None, None] * pairs[1][:, None, :, None] * pairs[2][:, None, None, :]).reshape(-1, 8)
        candidates = corner_labels[mixed]
        score = ((candidates[:, :, None] == candidates[:, None, :]) * weight[:, None, :]).sum(dim=-1)
        best = score.max(dim=1, keepdim=True).values
        ties = torch.where(score == best, candidates, torch.full_like(candidates, torch.inf))
        voted[mixed] = ties.min(dim=1).values
    return voted.masked_fill(~inside_mask(voxel, spatial_shape(labels)), 0.0)


def resample_labels(labels: Image, target: Grid, transform: Transform | None = None) -> Image:
    """Resample a 3D label image, keeping label values: per-label linear vote.

    Each label's indicator is interpolated linearly and every target voxel takes
    the label with the highest weight (ANTs' ``GenericLabel`` with a linear
    kernel), which gives smoother, less blocky boundaries than nearest neighbour.
    The vote is taken among each point's 8 neighbours (:func:`_corner_vote`),
    so its cost does not grow with the number of labels (atlases hold hundreds).
    Target points outside the source get label 0.
    """
    if labels.data.dim() != 3:
        raise ValueError(f"label image must be 3D, got shape {tuple(labels.data.shape)}")
    if transform is not None and transform.n_volumes is not None:
        raise ValueError("label images take a single (unbatched) transform")
    values = labels.data
    if not bool((values == torch.round(values)).all()):
        raise ValueError("label image holds non-integer values")
    device = labels.device
    transform = None if transform is None else transform.to(device)
    voxel = _TargetPoints(labels.affine, target, transform).voxel(0, 1).reshape(-1, 3)
    chunk = _MAX_POINTS // 16  # ~0.3 GiB of per-corner work arrays
    voted = torch.cat([_corner_vote(values, voxel[start:start + chunk]) for start in range(0, voxel.shape[0], chunk)])
    return Image(voted.reshape(target.shape), target.affine.to(device))


__all__ = ["ORDERS", "Order", "resample", "resample_labels", "sample_points", "world_grid"]

"""Images as tensors with a voxel-to-world affine.

An :class:`Image` is what travels between torch steps: a float32 tensor on the
run's device plus its 4x4 voxel-to-world affine (RAS, mm, float64, same device).
A :class:`Grid` is the geometry alone (shape + affine), the target of resampling.
Affine arithmetic (orientation, grid centres) goes through ``nibabel.affines`` and
``nibabel.orientations`` on a host copy of the 4x4 matrix; voxel sizes and
index grids come from :mod:`~neurolearn_cli.engine.geometry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import nibabel.affines as nia
import nibabel.orientations as nio
import numpy as np
import torch

from neurolearn_cli.engine.geometry import index_grid, ints3, voxel_spacing


def _check_affine(affine: torch.Tensor) -> None:
    if affine.shape != (4, 4) or affine.dtype != torch.float64:
        raise ValueError(
            f"affine must be a (4, 4) float64 tensor, got {tuple(affine.shape)} {affine.dtype}"
        )


@dataclass(frozen=True, eq=False)
class Grid:
    """Voxel grid geometry: a 3D shape and its 4x4 float64 voxel-to-world (RAS mm) affine.

    Two grids are equal when their shapes and affines are exactly equal.
    """

    shape: tuple[int, int, int]
    affine: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.shape) != 3 or any(int(n) < 1 for n in self.shape):
            raise ValueError(f"grid shape must be three positive sizes, got {self.shape}")
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        _check_affine(self.affine)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self.shape == other.shape and torch.equal(self.affine.cpu(), other.affine.cpu())

    # not hashable (mutable tensor inside): a class that defines __eq__ gets __hash__ = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel sizes in mm, from the affine's column norms."""
        return voxel_spacing(self.affine)

    @property
    def device(self) -> torch.device:
        """Device holding the affine."""
        return self.affine.device

    def to(self, device: torch.device) -> Grid:
        """The same grid with its affine on ``device``."""
        return Grid(self.shape, self.affine.to(device))

    def strided(self, step: int) -> Grid:
        """The grid of every ``step``-th voxel (voxel ``i`` here is voxel ``step * i`` of this grid).

        Matches ``data[::step, ::step, ::step]`` of an image on this grid.
        """
        affine = self.affine.clone()
        affine[:3, :3] *= step
        return Grid(ints3(-(-n // step) for n in self.shape), affine)


@dataclass(frozen=True, eq=False)
class Image:
    """A 3D (X, Y, Z) or 4D (X, Y, Z, T) tensor (float32 by default) with its voxel-to-world affine.

    Images compare by identity (``is``); compare ``.grid`` and ``.data`` explicitly.
    """

    data: torch.Tensor
    affine: torch.Tensor

    def __post_init__(self) -> None:
        if self.data.dim() not in (3, 4):
            raise ValueError(f"image data must be 3D or 4D, got shape {tuple(self.data.shape)}")
        if not self.data.is_floating_point():
            raise ValueError(
                f"image data must be floating point (float32 by default), got {self.data.dtype}"
            )
        _check_affine(self.affine)
        if self.affine.device != self.data.device:
            raise ValueError("image data and affine must be on the same device")

    @property
    def shape3(self) -> tuple[int, int, int]:
        """Spatial shape (X, Y, Z)."""
        return ints3(self.data.shape[:3])

    @property
    def grid(self) -> Grid:
        """The image's spatial grid."""
        return Grid(self.shape3, self.affine)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel sizes in mm, from the affine."""
        return self.grid.spacing

    @property
    def device(self) -> torch.device:
        """Device holding the data."""
        return self.data.device

    @property
    def n_volumes(self) -> int:
        """Number of volumes: 1 for a 3D image, T for a 4D image."""
        return 1 if self.data.dim() == 3 else int(self.data.shape[3])

    def to(self, device: torch.device) -> Image:
        """The same image on ``device``."""
        return Image(self.data.to(device), self.affine.to(device))

    def with_data(self, new_data: torch.Tensor) -> Image:
        """A new image on the same grid holding ``new_data`` (cast to float32)."""
        if tuple(new_data.shape[:3]) != self.shape3:
            raise ValueError(
                f"new data shape {tuple(new_data.shape)} does not match grid {self.shape3}"
            )
        return Image(new_data.to(device=self.device, dtype=torch.float32), self.affine)


def reorient_to_ras(image: Image) -> Image:
    """Permute and flip voxel axes so they run (closest to) Right, Anterior, Superior.

    Lossless (no interpolation): the world position of every voxel is unchanged;
    only the storage order and the affine change. Uses ``nibabel.orientations``.
    """
    affine = image.affine.cpu().numpy()
    current = nio.io_orientation(affine)
    transform = nio.ornt_transform(current, nio.axcodes2ornt(("R", "A", "S")))
    if np.array_equal(transform, [[0, 1], [1, 1], [2, 1]]):
        return image
    data = image.data
    flips = [axis for axis, (_, flip) in enumerate(transform) if flip == -1]
    if flips:
        data = torch.flip(data, dims=flips)
    order = [int(a) for a in np.argsort(transform[:, 0])]
    data = data.permute(*order, *range(3, data.dim())).contiguous()
    new_affine = affine @ nio.inv_ornt_aff(transform, image.shape3)
    return Image(data, torch.as_tensor(new_affine, dtype=torch.float64, device=image.device))


def conform_grid(
    grid: Grid, spacing: tuple[float, float, float], shape: tuple[int, int, int]
) -> Grid:
    """An RAS grid of ``shape`` voxels of size ``spacing`` mm, centred on ``grid``'s centre.

    The conformed grid is the target a step resamples to when it needs a fixed
    orientation and resolution (e.g. a network's input); resample with
    :func:`neurolearn_cli.engine.resample.resample`.
    """
    if len(spacing) != 3 or any(s <= 0 for s in spacing):
        raise ValueError(f"spacing must be three positive sizes, got {spacing}")
    affine = grid.affine.cpu().numpy()
    centre = nia.apply_affine(affine, (np.asarray(grid.shape, dtype=float) - 1) / 2)
    new_affine = np.diag([*map(float, spacing), 1.0])
    new_affine[:3, 3] = centre - new_affine[:3, :3] @ ((np.asarray(shape, dtype=float) - 1) / 2)
    return Grid(shape, torch.as_tensor(new_affine, dtype=torch.float64, device=grid.device))


def world_grid(grid: Grid) -> torch.Tensor:
    """World coordinates (X, Y, Z, 3), float32, of every voxel centre of ``grid``.

    Computed in float64 and rounded once, so large offsets keep sub-micron precision.
    """
    index = index_grid(grid.shape, grid.device)
    return (index @ grid.affine[:3, :3].T + grid.affine[:3, 3]).to(torch.float32)


def bounding_box(mask: torch.Tensor, margin: int | Sequence[int] = 1) -> tuple[slice, ...]:
    """Slices of the smallest box holding ``mask``, grown by ``margin`` voxels and clipped to the grid.

    ``margin`` is one number or one per axis; an empty mask gives empty slices.
    Found from per-axis projections, so no (N, 3) index array of the voxels is built.
    """
    margins = [margin] * mask.dim() if isinstance(margin, int) else [int(m) for m in margin]
    box = []
    for axis, extra in enumerate(margins):
        others = tuple(a for a in range(mask.dim()) if a != axis)
        present = torch.nonzero(mask.any(dim=others) if others else mask).squeeze(1)
        if present.numel() == 0:
            return tuple(slice(0, 0) for _ in mask.shape)
        box.append(slice(max(int(present[0]) - extra, 0), min(int(present[-1]) + extra + 1, mask.shape[axis])))
    return tuple(box)

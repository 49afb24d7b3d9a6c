"""Binary morphology of 3D boolean tensors: one implementation, one edge rule.

Edge rule
---------
Outside the grid is background, as ``scipy.ndimage``'s default
(``border_value=0``): a dilation never grows in from outside, and an erosion
removes every set voxel whose structuring element reaches past the grid's
faces. Every function here equals its ``scipy.ndimage`` namesake
(``binary_dilation``, ``binary_erosion``, ``binary_opening``,
``binary_closing``, ``label``, ``binary_fill_holes``) for the same structure and
iterations. A closing ends with an erosion, so it too can remove set voxels on
the faces; :func:`closing` with ``extend=True`` computes it on the grid padded
with background by the element's reach, where it contains the mask everywhere,
as on an unbounded grid.

Structuring elements are odd-sized boolean arrays centred on the voxel
(:func:`box`, :func:`ball`, :func:`cross`; the default is the 3x3x3 cube).
Dilation and erosion run on the mask's bounding box only, on the tensor's
device: a box element as three 1D max pools, any other element as a
convolution, or with ``scipy.ndimage`` for a tensor on the CPU (faster there).
Connected components and hole filling are sequential by nature (union-find),
which a GPU gains nothing from: the mask makes one host round trip through
``scipy.ndimage`` and comes back to its device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from neurolearn_cli.engine.geometry import ints3
from neurolearn_cli.engine.image import bounding_box


def box(radius: int | Sequence[int] = 1) -> np.ndarray:
    """Box element of half-width ``radius`` voxels (one number, or one per axis)."""
    radii = [radius] * 3 if isinstance(radius, int) else [int(r) for r in radius]
    return np.ones([2 * r + 1 for r in radii], dtype=bool)


def ball(radius: Sequence[int]) -> np.ndarray:
    """Ellipsoid element with semi-axes ``radius`` voxels (a ball in mm on anisotropic voxels)."""
    axes = [np.arange(-r, r + 1) / max(r, 1) for r in radius]
    grid = np.meshgrid(*axes, indexing="ij")
    return sum((g**2 for g in grid), np.zeros(grid[0].shape)) <= 1.0


def cross() -> np.ndarray:
    """The 6-connected 3x3x3 cross (face neighbours)."""
    return ndimage.generate_binary_structure(3, 1)


def radius_voxels(spacing: Sequence[float], mm: float) -> tuple[int, int, int]:
    """Per-axis radius in voxels of a distance of ``mm`` on a grid of ``spacing``.

    At least one voxel along the finest axis; along a coarser one the nearest
    whole number, zero when ``mm`` is at most half its voxel (a 2 mm ball on
    5 mm slices stays within its slice instead of reaching 5 mm across them).
    """
    finest = min(float(s) for s in spacing)
    return ints3(max(1 if float(s) == finest else 0, int(round(mm / float(s)))) for s in spacing)


def _reach(structure: np.ndarray) -> list[int]:
    if structure.ndim != 3 or any(n % 2 == 0 for n in structure.shape):
        raise ValueError(f"structuring element must be 3D with odd sizes, got {structure.shape}")
    return [n // 2 for n in structure.shape]


def _hits(mask: torch.Tensor, structure: np.ndarray) -> torch.Tensor:
    """Voxels ``x`` with a set voxel at some ``x + s``, ``s`` in the element (centred); zeros outside."""
    reach = _reach(structure)
    grown = mask[None, None].to(torch.float32)
    if structure.all():
        for axis, r in enumerate(reach):
            if r:
                kernel, padding = [1, 1, 1], [0, 0, 0]
                kernel[axis], padding[axis] = 2 * r + 1, r
                grown = F.max_pool3d(grown, tuple(kernel), stride=1, padding=tuple(padding))
        return grown[0, 0] > 0.5
    weights = torch.from_numpy(np.ascontiguousarray(structure)).to(grown)[None, None]
    return F.conv3d(grown, weights, padding=tuple(reach))[0, 0] > 0.5


def _on_host(mask: torch.Tensor, structure: np.ndarray) -> bool:
    """Whether scipy runs the step: an element other than a box, on a CPU tensor (faster than a convolution)."""
    return mask.device.type == "cpu" and not structure.all()


def _dilate_once(mask: torch.Tensor, structure: np.ndarray, host: bool) -> torch.Tensor:
    """``scipy.ndimage.binary_dilation`` (one iteration): the reflected element, so an asymmetric one matches."""
    if host:
        return torch.from_numpy(ndimage.binary_dilation(mask.numpy(), structure=structure))
    return _hits(mask, structure[::-1, ::-1, ::-1])


def _erode_once(mask: torch.Tensor, structure: np.ndarray, host: bool) -> torch.Tensor:
    """``scipy.ndimage.binary_erosion`` (one iteration): set where the element fits inside mask and grid."""
    if host:
        return torch.from_numpy(ndimage.binary_erosion(mask.numpy(), structure=structure))
    reach = _reach(structure)
    pad = [r for r in reversed(reach) for _ in range(2)]
    outside = F.pad((~mask).to(torch.float32), pad, value=1.0) > 0.5
    hit = _hits(outside, structure)
    return hit[tuple(slice(r, r + n) for r, n in zip(reach, mask.shape, strict=True))].logical_not()


def _structure(structure: np.ndarray | None) -> np.ndarray:
    return box(1) if structure is None else np.asarray(structure, dtype=bool)


def _repeat_in_box(mask: torch.Tensor, element: np.ndarray, iterations: int, margin: Sequence[int],
                   step: Callable[[torch.Tensor, np.ndarray, bool], torch.Tensor]) -> torch.Tensor:
    """``step`` applied ``iterations`` times to the mask's bounding box widened by ``margin`` voxels.

    Outside that box the result is background, as the full-grid result is
    when the margin covers what the steps can reach.
    """
    region = bounding_box(mask, list(margin))
    out = torch.zeros_like(mask, dtype=torch.bool)
    part = mask[region].bool()
    if part.numel() == 0:
        return out
    host = _on_host(part, element)
    for _ in range(iterations):
        part = step(part, element, host)
    out[region] = part
    return out


def dilate(mask: torch.Tensor, iterations: int = 1, *, structure: np.ndarray | None = None) -> torch.Tensor:
    """Binary dilation of a 3D bool tensor by ``structure`` (default 3x3x3 cube), ``iterations`` times.

    Computed on the mask's bounding box widened by the element's reach, which
    gives the same result at a fraction of the cost for a compact mask.
    """
    element = _structure(structure)
    return _repeat_in_box(mask, element, iterations, [r * iterations for r in _reach(element)], _dilate_once)


def erode(mask: torch.Tensor, iterations: int = 1, *, structure: np.ndarray | None = None) -> torch.Tensor:
    """Binary erosion of a 3D bool tensor by ``structure`` (default 3x3x3 cube), ``iterations`` times.

    Outside the grid is background, so set voxels within reach of the grid's
    faces are removed. Computed on the mask's bounding box: outside it is
    background too, so the result is the same.
    """
    element = _structure(structure)
    return _repeat_in_box(mask, element, iterations, [0, 0, 0], _erode_once)


def opening(mask: torch.Tensor, iterations: int = 1, *, structure: np.ndarray | None = None) -> torch.Tensor:
    """Erosion then dilation (``iterations`` of each): removes parts thinner than the element."""
    return dilate(erode(mask, iterations, structure=structure), iterations, structure=structure)


def closing(
    mask: torch.Tensor, iterations: int = 1, *, structure: np.ndarray | None = None, extend: bool = False
) -> torch.Tensor:
    """Dilation then erosion (``iterations`` of each): fills gaps narrower than the element.

    Parameters
    ----------
    extend : bool
        Compute on the grid padded with background by the element's reach and
        crop back, so the grid's faces erode nothing and the result contains
        ``mask``. False gives ``scipy.ndimage.binary_closing``.
    """
    if not extend:
        return erode(dilate(mask, iterations, structure=structure), iterations, structure=structure)
    reach = [r * iterations for r in _reach(_structure(structure))]
    pad = [r for r in reversed(reach) for _ in range(2)]
    padded = F.pad(mask.to(torch.uint8), pad) > 0
    closed = erode(dilate(padded, iterations, structure=structure), iterations, structure=structure)
    return closed[tuple(slice(r, r + n) for r, n in zip(reach, mask.shape, strict=True))]


def largest_component(mask: torch.Tensor, connectivity: int = 1) -> torch.Tensor:
    """The largest connected component of a 3D bool tensor (an empty mask stays empty).

    ``connectivity`` as ``scipy.ndimage.generate_binary_structure``: 1 face
    (6-connected), 2 edge (18), 3 corner (26) neighbours. Ties go to the
    component met first in raster order.
    """
    structure = ndimage.generate_binary_structure(3, connectivity)
    labels, count = ndimage.label(mask.detach().cpu().numpy().astype(bool), structure=structure)
    if count <= 1:
        return mask.bool()
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return torch.from_numpy(labels == int(np.argmax(sizes))).to(mask.device)


def fill_holes(mask: torch.Tensor, plane_axis: int | None = None) -> torch.Tensor:
    """Fill holes: background components (6-connected) that do not reach the grid's faces become set.

    With ``plane_axis`` set, connectivity stays within the slices across that
    axis, so each slice's holes are filled in 2D (4-connected), as
    ``binary_fill_holes`` on every slice.
    """
    host = mask.detach().cpu().numpy().astype(bool)
    structure = ndimage.generate_binary_structure(3, 1)
    faces = [0, 1, 2]
    if plane_axis is not None:
        structure[(slice(None),) * plane_axis + (0,)] = False
        structure[(slice(None),) * plane_axis + (2,)] = False
        faces.remove(plane_axis)
    labels, count = ndimage.label(~host, structure=structure)
    outside = np.zeros(count + 1, dtype=bool)
    for axis in faces:
        outside[np.take(labels, [0, -1], axis=axis).ravel()] = True
    outside[0] = False
    return torch.from_numpy(host | ((labels > 0) & ~outside[labels])).to(mask.device)

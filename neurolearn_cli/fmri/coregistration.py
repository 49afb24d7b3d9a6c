"""BOLD -> T1w rigid coregistration: NMI, then a boundary-based (BBR) refinement.

1. NMI (engine ``register_linear``, 6 dof) with the boldref as the fixed
   image and its brain mask limiting the samples, so the T1w's scalp (absent
   from the EPI) does not pull; started from the scanner (header) alignment,
   as both come from one session (a centre-of-mass start is pulled off by the
   T1w's neck and scalp), rotating about the boldref brain's centre of mass.
2. BBR (Greve and Fischl, 2009) when a T1w white-matter mask is given: at
   points ``p`` on the WM surface with outward normal ``n``, the boldref is
   sampled at ``p - d n`` (white) and ``p + d n`` (grey), ``d`` = 2 mm;
   ``Q = 100 (g - w) / ((g + w) / 2)`` and the cost
   ``mean(1 - tanh(M Q))``, ``M = 0.5`` (BOLD: grey brighter than white),
   minimised with Adam over the six rigid parameters.
   As in fMRIPrep, BBR is kept only when it lowers its own cost and stays
   within 10 mm (at 50 mm from the centre) of the NMI result; otherwise the
   NMI result is the fallback.

A lesion mask on the T1w grid is left out of both costs: NMI drops the
samples that land in it, and BBR the boundary points whose white or grey
sample does (a WM/lesion edge is no WM/GM boundary).

The result maps T1w world points to boldref world points: the ITK pull-back
transform that resamples the boldref onto the T1w grid, fMRIPrep's
``from-boldref_to-T1w_mode-image_xfm``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from neurolearn_cli.engine.geometry import center_of_mass
from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.morphology import erode
from neurolearn_cli.engine.optimizers import Adam
from neurolearn_cli.engine.registration import LinearSettings, register_linear
from neurolearn_cli.engine.transforms import AffineTransform

_DEPTH_MM = 2.0
_SLOPE = 0.5
_MAX_POINTS = 20_000
_ITERATIONS = 150
_STEP = 0.02
_RADIUS_MM = 50.0
_MAX_DEVIATION_MM = 10.0


@dataclass(frozen=True)
class Coregistration:
    """T1w -> boldref world map, the final cost of the method kept, and that method."""

    transform: AffineTransform
    cost: float
    method: str


@dataclass(frozen=True)
class Boundary:
    """White-matter surface points (N, 3) and outward unit normals (N, 3), world mm, float32."""

    points: torch.Tensor
    normals: torch.Tensor


def wm_boundary(white_matter: Image, max_points: int = _MAX_POINTS) -> Boundary:
    """Surface voxels of a WM mask with normals ``-grad(WM) / |grad(WM)|`` in world mm.

    The mask is box-smoothed before the gradient; at most ``max_points``
    evenly strided points are kept (deterministic).
    """
    mask = white_matter.data > 0.5
    surface = mask & ~erode(mask)
    smooth = F.avg_pool3d(mask.float()[None, None], 3, stride=1, padding=1)[0, 0]
    gradient = torch.stack(torch.gradient(smooth), dim=-1)
    linear = white_matter.affine[:3, :3].to(torch.float32)
    world_gradient = gradient @ torch.linalg.inv(linear)
    index = torch.nonzero(surface).to(torch.float32)
    normals = -world_gradient[surface]
    length = normals.norm(dim=-1)
    keep = length > 1e-6
    index, normals, length = index[keep], normals[keep], length[keep]
    stride = max(1, index.shape[0] // max_points)
    index, normals, length = index[::stride], normals[::stride], length[::stride]
    points = index @ linear.T + white_matter.affine[:3, 3].to(torch.float32)
    return Boundary(points, normals / length[:, None])


def away_from(boundary: Boundary, lesion: Image) -> Boundary:
    """The boundary points whose white and grey samples (``_DEPTH_MM`` in and out) both miss ``lesion``."""
    keep = torch.ones(boundary.points.shape[0], dtype=torch.bool, device=boundary.points.device)
    for side in (-1.0, 1.0):
        keep &= _sample(lesion, boundary.points + side * _DEPTH_MM * boundary.normals) <= 0.0
    return Boundary(boundary.points[keep], boundary.normals[keep])


def _sample(volume: Image, points: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of a 3D image at world points (N, 3); zero outside."""
    inverse = torch.linalg.inv(volume.affine).to(points.dtype)
    voxel = points @ inverse[:3, :3].T + inverse[:3, 3]
    sizes = torch.tensor(volume.shape3, dtype=points.dtype, device=points.device)
    normalized = (2.0 * voxel / (sizes - 1) - 1.0).flip(-1).view(1, 1, 1, -1, 3)
    values = F.grid_sample(volume.data[None, None], normalized, mode="bilinear", align_corners=True)
    return values.view(-1)


def bbr_cost(reference: Image, boundary: Boundary, matrix: torch.Tensor) -> torch.Tensor:
    """BBR cost of the T1w -> boldref map ``matrix`` (4, 4); differentiable in ``matrix``."""
    m = matrix.to(torch.float32)
    inner = boundary.points - _DEPTH_MM * boundary.normals
    outer = boundary.points + _DEPTH_MM * boundary.normals
    white = _sample(reference, inner @ m[:3, :3].T + m[:3, 3])
    grey = _sample(reference, outer @ m[:3, :3].T + m[:3, 3])
    valid = (white > 0) & (grey > 0)
    contrast = 100.0 * (grey - white) / (0.5 * (grey + white)).clamp(min=1e-6)
    return (1.0 - torch.tanh(_SLOPE * contrast[valid])).mean()


def refine_bbr(
    reference: Image, boundary: Boundary, start: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Adam on the six rigid parameters (rotations scaled by 50 mm) from ``start``; returns map, cost."""
    center = boundary.points.mean(0).to(torch.float64)
    angles, shifts = AffineTransform(start).rigid_parameters(center)
    params = torch.cat([angles * _RADIUS_MM, shifts]).clone().requires_grad_(True)
    optimizer = Adam(params, lr=_STEP * _RADIUS_MM / 10.0)
    for _ in range(_ITERATIONS):
        optimizer.zero_grad()
        matrix = AffineTransform.rigid(params[:3] / _RADIUS_MM, params[3:], center).matrix
        loss = bbr_cost(reference, boundary, matrix)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        matrix = AffineTransform.rigid(params[:3] / _RADIUS_MM, params[3:], center).matrix
        return matrix, float(bbr_cost(reference, boundary, matrix))


def _deviation_mm(a: torch.Tensor, b: torch.Tensor, center: torch.Tensor) -> float:
    """Largest displacement between two maps over a sphere of 50 mm about ``center`` (bound)."""
    delta = a - b
    return float(
        delta[:3, :3].norm(p=2) * _RADIUS_MM + (delta[:3, :3] @ center + delta[:3, 3]).norm()
    )


def coregister(
    reference: Image,
    reference_mask: torch.Tensor,
    t1w: Image,
    white_matter: Image | None = None,
    *,
    settings: LinearSettings | None = None,
    lesion: Image | None = None,
) -> Coregistration:
    """Rigidly align the boldref to the T1w.

    Parameters
    ----------
    reference : Image
        BOLD reference (3D); distortion-corrected when SDC ran.
    reference_mask : Tensor
        Its brain mask (bool, reference grid): the NMI samples.
    t1w : Image
        The T1w, bias-corrected and skull-stripped (smri's brain): on xa30 a
        full-head T1w gave NMI optima several mm apart for starts 5 mm apart.
    white_matter : Image, optional
        WM mask on the T1w grid (smri ``dseg == 2``); enables BBR.
    settings : LinearSettings, optional
        The NMI stage's pyramid and iterations (engine defaults when None).
    lesion : Image, optional
        Lesion mask on the T1w grid, left out of both costs.
    """
    mask = reference_mask.to(torch.float32)
    init = torch.eye(4, dtype=torch.float64, device=reference.device)
    center = center_of_mass(reference.data, reference.affine, mask)
    bold_to_t1, nmi_cost = register_linear(
        reference.data,
        reference.affine,
        t1w.data,
        t1w.affine,
        init,
        center,
        dof=6,
        metric="nmi",
        fixed_mask=mask,
        moving_mask=None if lesion is None else lesion.data <= 0.5,
        settings=settings,
    )
    nmi_map = torch.linalg.inv(bold_to_t1)
    if white_matter is None:
        return Coregistration(AffineTransform(nmi_map), nmi_cost, "nmi")
    boundary = wm_boundary(white_matter)
    if lesion is not None:
        boundary = away_from(boundary, lesion)
    start_cost = float(bbr_cost(reference, boundary, nmi_map))
    bbr_map, cost = refine_bbr(reference, boundary, nmi_map)
    deviation = _deviation_mm(bbr_map, nmi_map, boundary.points.mean(0).to(torch.float64))
    if cost < start_cost and deviation < _MAX_DEVIATION_MM:
        return Coregistration(AffineTransform(bbr_map), cost, "bbr")
    return Coregistration(AffineTransform(nmi_map), nmi_cost, "nmi")

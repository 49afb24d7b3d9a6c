"""Public entry points of the registration engine, on :class:`Image` objects.

``register`` follows ``antsRegistrationSyNQuick.sh``: centre-of-mass start,
then rigid or affine, then (for ``syn``) the symmetric diffeomorphic stage.
Transforms use ITK/ANTs pull-back semantics: ``forward`` maps fixed points to
moving points (resampling the moving image onto the fixed grid through it
gives ``warped``), and for SyN it is ``Chain([warp, affine])``, the order of
``antsApplyTransforms -t 1Warp.nii.gz -t 0GenericAffine.mat``.

Without a fixed mask the metric covers the fixed image's foreground
(:func:`foreground_mask`), not its whole grid: the background carries no
alignment information, and the SyN stage computes only on the mask's
bounding box, so a head in a larger field of view costs what the head does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.metrics import MetricName
from neurolearn_cli.engine.morphology import dilate, fill_holes, largest_component
from neurolearn_cli.engine.registration.init import moments_init
from neurolearn_cli.engine.registration.linear import LinearSettings, register_linear
from neurolearn_cli.engine.registration.syn import SynSettings, register_syn
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.threshold import otsu_threshold
from neurolearn_cli.engine.transforms import AffineTransform, Chain, DisplacementField, Transform
from neurolearn_cli.errors import ProcessingError

TransformName = Literal["rigid", "affine", "syn"]
DEFAULT_METRIC: dict[str, MetricName] = {"rigid": "nmi", "affine": "nmi", "syn": "lncc"}


@dataclass(frozen=True)
class RegistrationResult:
    """Outcome of :func:`register`.

    ``forward`` maps fixed -> moving points, ``inverse`` moving -> fixed;
    ``affine`` is the linear part and ``warp``/``inverse_warp`` the
    displacement fields on the fixed grid (None unless SyN). ``warped`` is the
    moving image on the fixed grid, ``inverse_warped`` the fixed image on the
    moving grid. ``metric_value`` is the final dissimilarity-free score of
    ``metric`` (r for ncc, mean squared local r for lncc, NMI in [1, 2] for
    nmi, mean squared error for mse); ``timings`` are seconds per stage.
    """

    forward: Transform
    inverse: Transform
    affine: AffineTransform
    warp: DisplacementField | None
    inverse_warp: DisplacementField | None
    warped: Image
    inverse_warped: Image
    metric: MetricName
    metric_value: float
    timings: dict[str, float] = field(default_factory=dict)


def _check_volume(image: Image, name: str) -> None:
    if image.data.dim() != 3:
        raise ValueError(f"{name}: expected a 3D image, got shape {tuple(image.data.shape)}")
    if min(image.shape3) < 4:
        raise ProcessingError(f"{name}: image too small to register: shape {image.shape3}")
    if not bool(torch.isfinite(image.data).all()):
        raise ValueError(f"{name}: image data contain NaN or infinite values")
    if float(image.data.max() - image.data.min()) <= 0:
        raise ProcessingError(f"{name}: image is constant")
    if abs(float(torch.linalg.det(image.affine[:3, :3]))) < 1e-12:
        raise ValueError(f"{name}: voxel-to-world affine is singular")


def _mask_on(grid_image: Image, mask: Image, name: str) -> torch.Tensor:
    """The mask as a 0/1 tensor on ``grid_image``'s grid (nearest neighbour)."""
    mask = mask.to(grid_image.device)
    if mask.data.dim() != 3:
        raise ValueError(f"{name}: expected a 3D mask, got shape {tuple(mask.data.shape)}")
    on_grid = resample(mask, grid_image.grid, order="nearest").data > 0
    if not bool(on_grid.any()):
        raise ProcessingError(f"{name}: mask is empty on the image's grid")
    return on_grid.to(torch.float32)


def foreground_mask(image: Image) -> Image:
    """The object in ``image`` (e.g. the head), as a 0/1 image on its grid.

    The largest 26-connected region above Otsu's threshold, holes filled (so
    dark enclosed tissue such as ventricles stays in), dilated by one voxel
    (3x3x3 cube) so the object's edge lies inside.
    """
    above = image.data > otsu_threshold(image.data)
    return image.with_data(dilate(fill_holes(largest_component(above, connectivity=3))).to(torch.float32))


def _score(metric: MetricName, dissimilarity: float) -> float:
    """Turn a loss of :func:`metrics.dissimilarity` back into the metric's own value."""
    offsets = {"mse": None, "ncc": 1.0, "lncc": 1.0, "nmi": 2.0}
    offset = offsets[metric]
    return dissimilarity if offset is None else offset - dissimilarity


def register(
    fixed: Image,
    moving: Image,
    *,
    transform: TransformName = "syn",
    metric: MetricName | None = None,
    fixed_mask: Image | None = None,
    moving_mask: Image | None = None,
    device: torch.device,
    linear_settings: LinearSettings | None = None,
    syn_settings: SynSettings | None = None,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` (3D images) with a rigid, affine or SyN transform.

    ``metric`` applies to the last stage (default: nmi for rigid/affine, as
    ANTs' linear stages use mutual information, lncc for syn; the affine
    stage before SyN uses ncc, which left SyN more accurate on the template
    benchmark). ``fixed_mask`` restricts the
    metric to a region of the fixed image (e.g. a template brain mask); by
    default it is the fixed image's :func:`foreground_mask`. ``moving_mask``
    leaves out what lies outside it in the moving image (e.g. the complement
    of a lesion, ANTs' second ``-x`` mask) from every stage's metric.

    Raises
    ------
    ValueError
        For 4D or non-finite images and singular affines (a caller's bug).
    ProcessingError
        For constant or too small images and masks empty on the fixed grid.
    """
    if transform not in ("rigid", "affine", "syn"):
        raise ValueError(f"unknown transform {transform!r}: expected rigid, affine or syn")
    metric = metric or DEFAULT_METRIC[transform]
    if transform == "syn" and metric != "lncc":
        raise ValueError("the syn stage uses the lncc metric")
    _check_volume(fixed, "fixed image")
    _check_volume(moving, "moving image")
    fixed, moving = fixed.to(device), moving.to(device)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    mask = foreground_mask(fixed).data if fixed_mask is None else _mask_on(fixed, fixed_mask, "fixed mask")
    counted = None if moving_mask is None else _mask_on(moving, moving_mask, "moving mask")
    init, center = moments_init(fixed.data, fixed.affine, moving.data, moving.affine, mask)
    timings["init"] = time.perf_counter() - start
    tic = time.perf_counter()
    linear_metric = metric if transform != "syn" else "ncc"
    matrix, loss = register_linear(
        fixed.data, fixed.affine, moving.data, moving.affine, init, center,
        dof=6 if transform == "rigid" else 12, metric=linear_metric, fixed_mask=mask, moving_mask=counted,
        settings=linear_settings,
    )
    timings["linear"] = time.perf_counter() - tic
    affine = AffineTransform(matrix)
    warp = inverse_warp = None
    forward: Transform = affine
    inverse: Transform = affine.inverse()
    value = _score(linear_metric, loss)
    if transform == "syn":
        tic = time.perf_counter()
        fields = register_syn(
            fixed.data, fixed.affine, moving.data, moving.affine, matrix, fixed_mask=mask, moving_mask=counted,
            settings=syn_settings,
        )
        timings["syn"] = time.perf_counter() - tic
        warp = DisplacementField(fields.forward, fixed.grid)
        inverse_warp = DisplacementField(fields.inverse, fixed.grid)
        forward = Chain([warp, affine])
        inverse = Chain([affine.inverse(), inverse_warp])
        value = fields.metric
    tic = time.perf_counter()
    warped = resample(moving, fixed.grid, forward)
    inverse_warped = resample(fixed, moving.grid, inverse)
    timings["resample"] = time.perf_counter() - tic
    timings["total"] = time.perf_counter() - start
    return RegistrationResult(
        forward, inverse, affine, warp, inverse_warp, warped, inverse_warped, metric, value, timings
    )

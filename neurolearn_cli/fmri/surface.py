"""BOLD on the cortical surface: sampled along the ribbon between white and pial, in one interpolation.

As FreeSurfer's ``mri_vol2surf --projfrac-avg 0 1 0.2`` in fMRIPrep, each
vertex's value is the mean of the BOLD at six depths from the white (0) to the
pial (1) surface, but the depths' world points (T1w) are carried to the raw
BOLD through the same chain as the volume outputs (coregistration,
susceptibility correction, head motion per volume), so the series is
interpolated once (trilinear, as ``mri_vol2surf --interp trilinear``). Samples are left out where they fall outside the brain
mask or the BOLD's field of view, and where the signal is unreliable as the
HCP's "goodvoxels" (fMRIPrep's ``--project-goodvoxels``) defines it: a
temporal coefficient of variation, divided by its local mean, above the mean
plus half a standard deviation (veins, dropout at the edge of the field of
view), unless that would leave a vertex none (fMRIPrep fills such vertices
from their neighbours; here they keep their own samples). A vertex with no
sample in the brain and field of view is missing (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import sparse

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.resample import Order, sample_points
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.spaces import OutputSpace
from neurolearn_cli.surfaces.mesh import Mesh, smooth_values

#: Fractions of the way from the white to the pial surface at which the BOLD is sampled and averaged.
DEPTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: A sample is unreliable when its locally normalized coefficient of variation exceeds the mean by this many SD.
GOODVOXELS_SD = 0.5
#: ... and exceeds its local mean by at least this fraction (where the ratio barely varies, its SD is no yardstick).
GOODVOXELS_MIN_EXCESS = 0.05
#: Surface smoothing steps giving the local mean of the coefficient of variation (a few millimetres).
LOCAL_STEPS = 50


@dataclass(frozen=True)
class CorticalSurfaces:
    """One hemisphere's white and pial meshes (T1w world mm, one connectivity) and, per surface template space,
    the weights (template vertices x ours) taking values on its vertices to the template's."""

    white: Mesh
    pial: Mesh
    to_templates: Mapping[OutputSpace, sparse.csr_matrix] = field(default_factory=dict)


@dataclass(frozen=True)
class RibbonSampling:
    """One hemisphere's BOLD on its vertices and how many samples were kept.

    ``series`` is (V, T) float32, NaN at a vertex none of whose samples was
    kept; ``kept``, ``outside`` and ``unreliable`` count the vertex-depth
    samples kept, outside the brain mask or field of view, and left out as
    unreliable.
    """

    series: np.ndarray
    kept: int
    outside: int
    unreliable: int



def missing_vertices(series: np.ndarray) -> int:
    """Vertices of a (V, T) series with no value (NaN)."""
    return int(np.isnan(series[:, 0]).sum()) if series.size else 0


def _coefficient_of_variation(samples: torch.Tensor) -> torch.Tensor:
    """Temporal standard deviation over mean of each (P, T) sample; inf where the mean is not positive."""
    mean = samples.mean(dim=1)
    std = samples.std(dim=1)
    return torch.where(mean > 0, std / mean.clamp(min=1e-12), torch.full_like(mean, float("inf")))


def unreliable_samples(cov: np.ndarray, usable: np.ndarray, mesh: Mesh) -> np.ndarray:
    """Samples (D, V) whose coefficient of variation, divided by its local mean, is an outlier.

    The local mean is the usable samples' mean over depths smoothed over the
    mesh (:data:`LOCAL_STEPS`); a sample more than :data:`GOODVOXELS_SD`
    standard deviations above the usable samples' mean of that ratio is
    unreliable (the HCP's goodvoxels criterion, on the samples instead of
    voxels), if the ratio also exceeds 1 by :data:`GOODVOXELS_MIN_EXCESS`.
    """
    finite = usable & np.isfinite(cov)
    if not finite.any():
        return np.zeros_like(usable)
    counts = finite.sum(axis=0)
    vertex_mean = np.where(finite, cov, 0.0).sum(axis=0) / np.maximum(counts, 1)
    weights = smooth_values(mesh, (counts > 0).astype(np.float64), LOCAL_STEPS)
    local = smooth_values(mesh, np.where(counts > 0, vertex_mean, 0.0), LOCAL_STEPS) / np.maximum(weights, 1e-12)
    ratio = np.where(finite, cov / np.maximum(local, 1e-12)[None, :], np.inf)
    threshold = max(ratio[finite].mean() + GOODVOXELS_SD * ratio[finite].std(), 1.0 + GOODVOXELS_MIN_EXCESS)
    return usable & (ratio > threshold)


def sample_ribbon(bold: Image, white: Mesh, pial: Mesh, to_bold: Transform, brain: Image, *,
                  order: Order = "linear", depths: tuple[float, ...] = DEPTHS) -> RibbonSampling:
    """The BOLD series at each vertex: the mean over ``depths`` between ``white`` and ``pial``.

    ``white`` and ``pial`` share connectivity, in T1w world mm; ``to_bold``
    maps T1w points to the raw BOLD's points (per volume where motion is in
    it); ``brain`` is the T1w brain mask. Trilinear by default, as
    ``mri_vol2surf --interp trilinear`` in fMRIPrep: the depth average is a
    low-pass of its own, and a band-limited kernel costs several times more
    (``benchmarks/surface_bold.py`` compares them). Pure: no IO.
    """
    device = bold.device
    white_points = torch.as_tensor(white.vertices, dtype=torch.float32, device=device)
    offset = torch.as_tensor(pial.vertices, dtype=torch.float32, device=device) - white_points
    fractions = torch.tensor(depths, dtype=torch.float32, device=device)[:, None, None]
    points = (white_points + fractions * offset).reshape(-1, 3)  # every depth at once: one pass over the run
    shape = (len(depths), white_points.shape[0], bold.n_volumes)
    samples = sample_points(bold, points, to_bold, order=order, fill=float("nan")).clamp_(min=0).reshape(shape)
    inside = torch.isfinite(samples).all(dim=2) & (sample_points(brain, points, order="linear") > 0.5).reshape(
        shape[:2])
    samples.nan_to_num_(0.0)
    usable = inside.cpu().numpy()
    cov = _coefficient_of_variation(samples.reshape(-1, shape[2])).reshape(shape[:2]).double().cpu().numpy()
    unreliable = unreliable_samples(cov, usable, white.with_vertices((white.vertices + pial.vertices) / 2))
    unreliable &= ~(unreliable | ~usable).all(axis=0)  # a vertex keeps its in-brain samples if all are unreliable
    kept = usable & ~unreliable
    keep = torch.as_tensor(kept, device=device)
    total = samples.mul_(keep[..., None]).sum(dim=0)
    counts = keep.sum(dim=0).to(torch.float32)
    series = torch.where(counts[:, None] > 0, total / counts.clamp(min=1)[:, None],
                         torch.full_like(total, float("nan")))
    return RibbonSampling(series.cpu().numpy(), int(kept.sum()), int((~usable).sum()), int(unreliable.sum()))


def resample_series(series: np.ndarray, weights: sparse.csr_matrix) -> np.ndarray:
    """(V, T) vertex series taken to another mesh by ``weights`` (T' x V), missing vertices left out of each mix.

    A target vertex whose every source vertex is missing is missing (NaN).
    """
    present = ~np.isnan(series[:, 0]) if series.size else np.zeros(len(series), dtype=bool)  # NaN in all volumes
    mass = weights @ present.astype(np.float64)
    mixed = weights @ np.where(present[:, None], series, 0.0).astype(np.float64)
    out = mixed / np.maximum(mass, 1e-12)[:, None]
    out[mass <= 1e-6] = np.nan
    return out.astype(np.float32)

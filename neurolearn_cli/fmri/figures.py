"""Report figures for a BOLD run, returned as SVG or PNG bytes (no file IO, no pyplot state).

- carpet plot: every (sub-sampled) voxel's steady-state series, detrended and
  z-scored, as one row, grouped by tissue (GM, WM, CSF) with a coloured side
  bar, under FD and std DVARS traces whose spikes (volumes above the run's
  thresholds) are marked; the non-steady-state volumes are shaded and left
  out of the detrending, the scaling and the traces' ranges;
- boldref with the brain-mask contour;
- coregistration check: the T1w white-matter boundary over the boldref.

The pure parts (:func:`carpet_rows`, :func:`steady_trace`, :func:`spikes`,
:func:`trace_limits`) are separate from the drawing so their properties can
be tested. Volumes are reoriented to RAS (lossless) so every run displays the
same way: neurological convention, the subject's left on the image's left.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from neurolearn_cli.engine.image import Image, reorient_to_ras
from neurolearn_cli.fmri.compcor import regress_out
from neurolearn_cli.palette import (
    BOUNDARY_COLOUR,
    EXCLUDED_COLOUR,
    FLAG_COLOUR,
    MASK_COLOUR,
    TISSUE_COLOURS,
)

#: At most this many voxel rows are drawn, split across tissues by voxel count.
MAX_ROWS = 1500
#: Degree of the Legendre polynomial removed from each voxel's series.
DETREND_DEGREE = 2
#: The carpet's grey scale spans z = -Z_LIMIT .. Z_LIMIT; larger values saturate.
Z_LIMIT = 2.0
_SVG_META = {"Date": None}
#: What each figure shows, by its role in the fmri stage's outputs, for the report's captions.
CAPTIONS = {
    "carpetplot": (
        f"One row per voxel (at most {MAX_ROWS}, evenly sampled), grouped by tissue (side bar): its "
        f"steady-state series less a degree-{DETREND_DEGREE} polynomial, z-scored, grey scale "
        f"±{Z_LIMIT:g}. Shaded: non-steady-state volumes, left out of the detrending, the scaling and "
        "the traces. Red: volumes whose FD or std DVARS exceeds the run's spike threshold."
    ),
    "brainmask": "The T1w brain mask, mapped onto the BOLD reference through the coregistration.",
    "coreg": "The T1w white-matter boundary over the BOLD reference: it should follow the BOLD's "
    "grey/white contrast.",
}


def _to_bytes(figure: Figure, fmt: str, dpi: int) -> bytes:
    """Render a figure; SVG without a date and with fixed ids, so output is reproducible."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    metadata = _SVG_META if fmt == "svg" else None
    with mpl.rc_context({"svg.hashsalt": "neurolearn"}):
        figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


@dataclass(frozen=True)
class Carpet:
    """The carpet's rows and how they are grouped.

    Attributes
    ----------
    rows : ndarray
        (rows, steady-state volumes) z-scores, tissue by tissue.
    segments : list of (str, int)
        Tissue name and its number of rows, in the rows' order.
    first_volume : int
        Index in the run of the rows' first column (the number of non-steady-state volumes).
    """

    rows: np.ndarray
    segments: list[tuple[str, int]]
    first_volume: int


def detrend_zscore(series: torch.Tensor, degree: int = DETREND_DEGREE) -> torch.Tensor:
    """Each row of ``series`` (voxels, time) less its least-squares Legendre fit of ``degree``, z-scored.

    Removes the scanner drift as MRIQC's and fMRIPrep's carpet plots do before
    scaling, so the rows show fluctuations, not the baseline. The degree is
    lowered for runs too short for it; a constant row stays 0.
    """
    n_times = int(series.shape[1])
    degree = max(0, min(degree, n_times - 2))
    x = torch.linspace(-1.0, 1.0, n_times, dtype=torch.float64, device=series.device)
    basis = torch.stack([_legendre(k, x) for k in range(degree + 1)], dim=1)  # (time, degree + 1)
    values = series.to(torch.float64)
    residual = regress_out(values.T, basis[:, 1:]).T  # the constant is degree 0
    std = residual.std(dim=1, keepdim=True)
    return torch.where(std > 1e-9 * values.abs().amax(1, keepdim=True).clamp(min=1.0), residual / std, 0.0)


def _legendre(degree: int, x: torch.Tensor) -> torch.Tensor:
    """Legendre polynomial of ``degree`` at ``x`` (Bonnet's recursion)."""
    previous, current = torch.ones_like(x), x
    if degree == 0:
        return previous
    for n in range(1, degree):
        previous, current = current, ((2 * n + 1) * x * current - n * previous) / (n + 1)
    return current


def carpet_rows(
    bold: torch.Tensor,
    tissues: Mapping[str, torch.Tensor],
    n_nonsteady: int,
    *,
    max_rows: int = MAX_ROWS,
    degree: int = DETREND_DEGREE,
) -> Carpet:
    """The carpet of ``bold`` (X, Y, Z, T): steady-state volumes only, voxels grouped by tissue.

    The first ``n_nonsteady`` volumes are dropped before anything else, so
    their excess signal neither bends the detrending nor sets the scale.
    ``tissues`` are disjoint boolean masks, drawn in the mapping's order;
    at most ``max_rows`` evenly spaced voxels are kept, split by voxel count.
    A tissue without voxels is left out.
    """
    steady = bold[..., n_nonsteady:]
    counts = {name: int(mask.sum()) for name, mask in tissues.items()}
    total = sum(counts.values())
    if total == 0:
        raise ValueError("carpet plot: no voxel in any tissue mask")
    rows, segments = [], []
    for name, mask in tissues.items():
        if counts[name] == 0:
            continue
        series = steady[mask.bool()]
        keep = max(1, int(max_rows * counts[name] // total))
        series = series[torch.linspace(0, counts[name] - 1, keep, device=bold.device).round().long()]
        rows.append(detrend_zscore(series, degree).cpu().numpy())
        segments.append((name, keep))
    return Carpet(rows=np.concatenate(rows), segments=segments, first_volume=n_nonsteady)


def steady_trace(values: ArrayLike, n_nonsteady: int) -> np.ndarray:
    """A per-volume confound (FD, DVARS) with NaN where it involves a non-steady-state volume.

    Volume ``t``'s FD and DVARS compare it with volume ``t - 1``, so the first
    steady-state volume's value reflects the non-steady state too.
    """
    trace = np.asarray(values, dtype=np.float64).copy()
    trace[: n_nonsteady + 1] = np.nan
    return trace


def spikes(trace: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the volumes whose value exceeds ``threshold`` (NaN never does)."""
    return np.flatnonzero(np.nan_to_num(trace, nan=-np.inf) > threshold)


def trace_limits(trace: np.ndarray, threshold: float) -> tuple[float, float]:
    """y range of a trace panel: 0 to 10 % above its largest value or the threshold, whichever is higher."""
    finite = trace[np.isfinite(trace)]
    top = max(float(finite.max()) if finite.size else threshold, threshold)
    return 0.0, 1.1 * top


@dataclass(frozen=True)
class Trace:
    """A confound drawn above the carpet, with its spike threshold."""

    label: str
    unit: str
    values: np.ndarray
    threshold: float
    colour: str


def _draw_trace(ax: Axes, trace: Trace, time_s: np.ndarray) -> None:
    """The trace, its threshold line and its spikes, with a legend naming the threshold."""
    ax.plot(time_s, trace.values, color=trace.colour, lw=1, label=trace.label)
    unit = f" {trace.unit}" if trace.unit else ""
    ax.axhline(trace.threshold, color=FLAG_COLOUR, lw=0.8, ls="--", label=f"threshold {trace.threshold:g}{unit}")
    above = spikes(trace.values, trace.threshold)
    ax.scatter(time_s[above], trace.values[above], s=14, color=FLAG_COLOUR, zorder=3,
               label=f"spikes ({above.size})")
    ax.set_ylim(*trace_limits(trace.values, trace.threshold))
    ax.set_ylabel(f"{trace.label}\n({trace.unit})" if trace.unit else trace.label, fontsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    ax.tick_params(labelsize=7)


def carpet_figure(carpet: Carpet, traces: Sequence[Trace], repetition_time: float) -> Figure:
    """The carpet under its traces, sharing a time axis, with the tissue side bar and the spikes marked."""
    n_rows, n_steady = carpet.rows.shape
    n_volumes = carpet.first_volume + n_steady
    time_s = np.arange(n_volumes) * repetition_time
    figure = Figure(figsize=(9.0, 2.0 + 1.1 * len(traces) + 4.5))
    grid = figure.add_gridspec(
        len(traces) + 1, 3, height_ratios=[1.0] * len(traces) + [4.0], width_ratios=[0.025, 1.0, 0.015],
        hspace=0.12, wspace=0.02,
    )
    carpet_ax = figure.add_subplot(grid[-1, 1])
    trace_axes = [figure.add_subplot(grid[k, 1], sharex=carpet_ax) for k in range(len(traces))]
    start, end = (carpet.first_volume - 0.5) * repetition_time, (n_volumes - 0.5) * repetition_time
    image = carpet_ax.imshow(carpet.rows, aspect="auto", cmap="gray", vmin=-Z_LIMIT, vmax=Z_LIMIT,
                             interpolation="nearest", extent=(start, end, n_rows, 0))
    carpet_ax.set_xlim(-0.5 * repetition_time, end)
    carpet_ax.set_yticks([])
    carpet_ax.set_xlabel("time (s)", fontsize=8)
    carpet_ax.tick_params(labelsize=7)
    if carpet.first_volume:
        carpet_ax.axvspan(-0.5 * repetition_time, start, color=EXCLUDED_COLOUR, alpha=0.6, lw=0)
        for ax in trace_axes:
            ax.axvspan(-0.5 * repetition_time, start, color=EXCLUDED_COLOUR, alpha=0.6, lw=0,
                       label="non-steady state (excluded)")
    for ax, trace in zip(trace_axes, traces, strict=True):
        _draw_trace(ax, trace, time_s)
        ax.tick_params(labelbottom=False)
    marked = sorted(set().union(*(spikes(t.values, t.threshold).tolist() for t in traces)))
    for volume in marked:
        for ax in trace_axes:
            ax.axvline(volume * repetition_time, color=FLAG_COLOUR, lw=0.6, alpha=0.5)
    carpet_ax.plot(np.asarray(marked) * repetition_time, np.full(len(marked), -0.012 * n_rows), "v",
                   color=FLAG_COLOUR, markersize=5, clip_on=False)
    carpet_ax.set_ylim(n_rows, 0)
    _tissue_bar(figure.add_subplot(grid[-1, 0]), carpet.segments)
    colourbar = figure.colorbar(image, cax=figure.add_subplot(grid[-1, 2]))
    colourbar.set_label("z", fontsize=8)
    colourbar.ax.tick_params(labelsize=7)
    return figure


def _tissue_bar(ax: Axes, segments: Sequence[tuple[str, int]]) -> None:
    """A column of the tissues' colours beside the carpet's rows, each labelled with its name."""
    names = [name for name, _ in segments]
    labels = np.repeat(np.arange(len(segments)), [count for _, count in segments])[:, None]
    colours = ListedColormap([TISSUE_COLOURS.get(name, "#7f7f7f") for name in names])
    ax.imshow(labels, aspect="auto", cmap=colours, vmin=-0.5, vmax=len(segments) - 0.5,
              interpolation="nearest", extent=(0, 1, len(labels), 0))
    bounds = np.cumsum([0] + [count for _, count in segments])
    ax.set_yticks((bounds[:-1] + bounds[1:]) / 2, names, fontsize=8)
    ax.tick_params(left=False)
    ax.set_xticks([])


def carpet_plot(
    bold: torch.Tensor,
    tissues: Mapping[str, torch.Tensor],
    framewise_displacement: ArrayLike,
    std_dvars: ArrayLike,
    repetition_time: float,
    *,
    n_nonsteady: int,
    fd_threshold: float,
    dvars_threshold: float,
    fmt: str = "png",
) -> bytes:
    """Carpet plot of ``bold`` (X, Y, Z, T) with the FD (mm) and std DVARS traces and their spikes.

    See :func:`carpet_rows` for the rows; the thresholds are the run's
    motion-outlier thresholds (``--fd-spike-threshold``, ``--dvars-spike-threshold``).
    """
    traces = [
        Trace("FD", "mm", steady_trace(framewise_displacement, n_nonsteady), fd_threshold, "#444444"),
        Trace("std DVARS", "", steady_trace(std_dvars, n_nonsteady), dvars_threshold, "#9467bd"),
    ]
    figure = carpet_figure(carpet_rows(bold, tissues, n_nonsteady), traces, repetition_time)
    return _to_bytes(figure, fmt, dpi=100)


@dataclass(frozen=True)
class Outline:
    """A mask drawn as a contour, with its colour and legend label."""

    mask: torch.Tensor
    colour: str
    label: str


def _slices(extent: np.ndarray, axis: int, count: int) -> list[int]:
    """``count`` slice indices spread over the central 80 % of the mask ``extent`` along ``axis``."""
    others = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(extent.any(axis=others))
    first, last = (present[0], present[-1]) if present.size else (0, extent.shape[axis] - 1)
    span = last - first
    return [int(round(x)) for x in np.linspace(first + 0.1 * span, last - 0.1 * span, count)]


def contour_mosaic(background: Image, outlines: Sequence[Outline], count: int) -> Figure:
    """Axial, coronal and sagittal rows of ``count`` slices with each outline, and a legend of the outlines."""
    ras = reorient_to_ras(background)
    data = ras.data.detach().cpu().numpy()
    spacing = ras.spacing
    planes = [
        (reorient_to_ras(background.with_data(o.mask.float())).data.cpu().numpy() > 0.5, o.colour)
        for o in outlines
    ]
    extent = planes[0][0] if planes[0][0].any() else data > 0
    low, high = np.percentile(data[data > 0], [1, 99.5]) if (data > 0).any() else (0.0, 1.0)
    views = (2, 1, 0)  # axial, coronal, sagittal
    # each row as tall as its slices are at the columns' width, so rows sit without gaps
    heights = [_plane_height(data.shape, spacing, axis) for axis in views]
    width = 1.6
    figure = Figure(figsize=(width * count, width * sum(heights) + 0.4))
    axes = figure.subplots(3, count, squeeze=False, gridspec_kw={"height_ratios": heights})
    for row, axis in enumerate(views):
        plane_axes = [a for a in range(3) if a != axis]
        aspect = spacing[plane_axes[1]] / spacing[plane_axes[0]]
        for col, index in enumerate(_slices(extent, axis, count)):
            ax = axes[row, col]
            ax.imshow(np.take(data, index, axis=axis).T, origin="lower", cmap="gray", vmin=low,
                      vmax=high, aspect=aspect)
            for outline, colour in planes:
                plane = np.take(outline, index, axis=axis).T.astype(float)
                if plane.any() and not plane.all():
                    ax.contour(plane, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.02, left=0, right=1, top=1, bottom=0)
    figure.legend(handles=[Line2D([], [], color=o.colour, lw=1.5, label=o.label) for o in outlines],
                  loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(outlines), fontsize=9, frameon=False)
    return figure


def _plane_height(shape: tuple[int, ...], spacing: tuple[float, float, float], axis: int) -> float:
    """Height over width, in mm, of a slice across ``axis`` as :func:`contour_mosaic` shows it."""
    across, up = (a for a in range(3) if a != axis)
    return shape[up] * spacing[up] / (shape[across] * spacing[across])


def mask_figure(reference: Image, mask: torch.Tensor, *, count: int = 6, fmt: str = "svg") -> bytes:
    """The BOLD reference with its brain mask's contour."""
    outline = Outline(mask, MASK_COLOUR, "brain mask (T1w, on the BOLD grid)")
    return _to_bytes(contour_mosaic(reference, [outline], count), fmt, dpi=80)


def coregistration_figure(
    reference: Image, white_matter: torch.Tensor, *, count: int = 6, fmt: str = "svg"
) -> bytes:
    """The BOLD reference with the T1w white-matter boundary (resampled to its grid)."""
    outline = Outline(white_matter, BOUNDARY_COLOUR, "T1w white-matter boundary")
    return _to_bytes(contour_mosaic(reference, [outline], count), fmt, dpi=80)

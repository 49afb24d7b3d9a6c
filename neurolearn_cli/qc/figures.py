"""Report figures, returned as PNG bytes (no file IO, no global pyplot state).

Figures are drawn with matplotlib's object API on an Agg canvas. Volumes come in
as numpy arrays in RAS voxel order (the report edge converts tensors); slices
are shown in neurological convention (the subject's left on the left). Each
``*_figure`` function returns the figure itself, so what it draws (legend
entries, threshold lines) can be checked; its namesake without the suffix
renders it to PNG.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import scipy.ndimage as ndi
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from pandas import DataFrame

from neurolearn_cli.palette import FLAG_COLOUR, LESION_COLOUR, MASK_COLOUR, TISSUE_COLOURS
from neurolearn_cli.smri.tissues import LESION_LABEL

#: smri's dseg labels (1 GM, 2 WM, 3 CSF, 4 lesion) in their colours; 0 (background) transparent.
DSEG_LABELS = ("GM", "WM", "CSF")
DSEG_COLOURS = ListedColormap(["#00000000", *(TISSUE_COLOURS[name] for name in DSEG_LABELS), LESION_COLOUR])
#: Opacity of the tissue colours over the T1w, also used for their legend patches.
DSEG_ALPHA = 0.35
#: Colour of the template's edges over the normalized T1w.
EDGE_COLOUR = "#00e5ff"


def _png(figure: Figure, dpi: int = 90) -> bytes:
    """Render ``figure`` to PNG bytes."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(
        buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor=figure.get_facecolor()
    )
    return buffer.getvalue()


def _window(data: np.ndarray) -> tuple[float, float]:
    """Display range: 1st to 99.5th percentile of the positive intensities."""
    positive = data[data > 0]
    if positive.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(positive, [1.0, 99.5])
    return float(low), float(max(high, low + 1e-6))


def _slice_positions(extent: np.ndarray, axis: int, n_slices: int) -> np.ndarray:
    """``n_slices`` indices spread over the occupied range of ``extent`` along ``axis``."""
    occupied = np.flatnonzero(extent.any(axis=tuple(a for a in range(3) if a != axis)))
    if occupied.size == 0:
        occupied = np.arange(extent.shape[axis])
    low, high = occupied[0], occupied[-1]
    margin = (high - low) * 0.08
    return np.unique(np.linspace(low + margin, high - margin, n_slices).round().astype(int))


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A 2D slice, transposed so the second remaining axis runs upwards (with ``origin='lower'``)."""
    return np.take(volume, index, axis=axis).T


def _dark_legend(figure: Figure, handles: Sequence[Artist]) -> None:
    """A legend under a figure on a black background."""
    figure.legend(handles=list(handles), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles),
                  fontsize=9, frameon=False, labelcolor="white")


def mosaic_legend(mask: bool, dseg: bool, lesion: bool = False) -> list[Artist]:
    """Legend entries of :func:`mosaic`: the mask's outline, then the tissue (and lesion) colours, for what is drawn."""
    handles: list[Artist] = []
    if mask:
        handles.append(Line2D([], [], color=MASK_COLOUR, lw=1.5, label="brain mask"))
    if dseg:
        handles += [Patch(color=TISSUE_COLOURS[name], alpha=DSEG_ALPHA * 2, label=name) for name in DSEG_LABELS]
    if lesion:
        handles.append(Patch(color=LESION_COLOUR, alpha=DSEG_ALPHA * 2, label="lesion"))
    return handles


def mosaic(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    dseg: np.ndarray | None = None,
    axis: int = 2,
    n_slices: int = 12,
    columns: int = 6,
) -> bytes:
    """PNG of :func:`mosaic_figure`."""
    return _png(mosaic_figure(data, mask, dseg, axis, n_slices, columns))


def mosaic_figure(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    dseg: np.ndarray | None = None,
    axis: int = 2,
    n_slices: int = 12,
    columns: int = 6,
) -> Figure:
    """Slices of a 3D volume with an optional mask contour and tissue (dseg) overlay, and their legend.

    Parameters
    ----------
    data : ndarray
        3D intensities, RAS voxel order.
    mask : ndarray, optional
        Bool mask drawn as a red contour.
    dseg : ndarray, optional
        Labels (1 GM, 2 WM, 3 CSF) drawn as translucent colours.
    axis : int
        Slicing axis (0 sagittal, 1 coronal, 2 axial).
    """
    low, high = _window(data)
    extent = mask if mask is not None else data > low
    positions = _slice_positions(np.asarray(extent, dtype=bool), axis, n_slices)
    rows = int(np.ceil(len(positions) / columns))
    figure = Figure(figsize=(1.6 * columns, 1.6 * rows), facecolor="black")
    for k, index in enumerate(positions):
        ax = figure.add_subplot(rows, columns, k + 1)
        ax.imshow(
            _plane(data, axis, index),
            cmap="gray",
            vmin=low,
            vmax=high,
            origin="lower",
            interpolation="none",
        )
        if dseg is not None:
            labels = np.ma.masked_equal(_plane(dseg, axis, index).astype(int), 0)
            ax.imshow(
                labels,
                cmap=DSEG_COLOURS,
                vmin=0,
                vmax=LESION_LABEL,
                alpha=DSEG_ALPHA,
                origin="lower",
                interpolation="none",
            )
        if mask is not None:
            plane = _plane(mask, axis, index).astype(float)  # one slice, not the volume, to float
            if plane.any() and not plane.all():
                ax.contour(plane, levels=[0.5], colors=MASK_COLOUR, linewidths=0.8, origin="lower")
        ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.02, left=0, right=1, bottom=0, top=1)
    handles = mosaic_legend(mask is not None, dseg is not None, dseg is not None and bool((dseg == LESION_LABEL).any()))
    if handles:
        _dark_legend(figure, handles)
    return figure


def _edges(template: np.ndarray) -> np.ndarray:
    """Template edges: gradient magnitude above its 90th percentile inside the head."""
    smooth = ndi.gaussian_filter(template.astype(np.float64), 1.0)
    magnitude = np.sqrt(sum(ndi.sobel(smooth, axis=a) ** 2 for a in range(3)))
    inside = template > _window(template)[0]
    threshold = np.percentile(magnitude[inside], 90.0) if inside.any() else magnitude.max()
    return magnitude > threshold


def normalization_check(
    t1w_in_template: np.ndarray, template: np.ndarray, n_slices: int = 4
) -> bytes:
    """PNG of :func:`normalization_figure`."""
    return _png(normalization_figure(t1w_in_template, template, n_slices))


def normalization_figure(
    t1w_in_template: np.ndarray, template: np.ndarray, n_slices: int = 4
) -> Figure:
    """The normalised T1w with the template's edges on top, in three views.

    Misregistration shows as edges (cortex, ventricles) that do not sit on the
    T1w's boundaries. Both arrays are on the template grid, RAS voxel order.
    """
    edges = _edges(template)
    low, high = _window(t1w_in_template)
    figure = Figure(figsize=(1.9 * n_slices, 1.9 * 3), facecolor="black")
    for row, axis in enumerate((0, 1, 2)):
        positions = _slice_positions(template > _window(template)[0], axis, n_slices)
        for col, index in enumerate(positions[:n_slices]):
            ax = figure.add_subplot(3, n_slices, row * n_slices + col + 1)
            plane = _plane(t1w_in_template, axis, index)
            ax.imshow(plane, cmap="gray", vmin=low, vmax=high, origin="lower", interpolation="none")
            outline = np.ma.masked_equal(_plane(edges, axis, index).astype(int), 0)
            ax.imshow(
                outline,
                cmap=ListedColormap([EDGE_COLOUR]),
                alpha=0.8,
                origin="lower",
                interpolation="none",
            )
            ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.02, left=0, right=1, bottom=0, top=1)
    _dark_legend(figure, [Patch(color=EDGE_COLOUR, label="template edges")])
    return figure


def motion_traces(parameters: np.ndarray, fd: np.ndarray, repetition_time: float, *, threshold: float) -> bytes:
    """PNG of :func:`motion_figure`."""
    return _png(motion_figure(parameters, fd, repetition_time, threshold=threshold))


def motion_figure(parameters: np.ndarray, fd: np.ndarray, repetition_time: float, *, threshold: float) -> Figure:
    """Translations (mm), rotations (degrees) and framewise displacement over time.

    ``parameters`` is (T, 6): three translations in mm then three rotations in
    radians (fMRIPrep's column order); ``fd`` has T values (the first may be NaN).
    ``threshold`` is the run's FD spike threshold (``--fd-spike-threshold``):
    drawn as a labelled line, with the volumes above it marked in red.
    """
    params = np.asarray(parameters, dtype=np.float64)
    displacement = np.asarray(fd, dtype=np.float64)
    time = np.arange(params.shape[0]) * repetition_time
    figure = Figure(figsize=(8.0, 4.2))
    axes = figure.subplots(3, 1, sharex=True)
    for k, label in enumerate("xyz"):
        axes[0].plot(time, params[:, k], lw=1, label=f"trans {label}")
        axes[1].plot(time, np.degrees(params[:, 3 + k]), lw=1, label=f"rot {label}")
    axes[0].set_ylabel("mm", fontsize=8)
    axes[1].set_ylabel("degrees", fontsize=8)
    axes[2].plot(time, displacement, lw=1, color="black", label="FD")
    axes[2].axhline(threshold, color=FLAG_COLOUR, lw=0.8, ls="--", label=f"threshold {threshold:g} mm")
    above = np.nan_to_num(displacement, nan=-np.inf) > threshold
    axes[2].scatter(time[above], displacement[above], s=10, color=FLAG_COLOUR, zorder=3,
                    label=f"above threshold ({int(above.sum())})")
    axes[2].set_ylabel("FD (mm)", fontsize=8)
    axes[2].set_xlabel("time (s)", fontsize=8)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
        ax.tick_params(labelsize=7)
    return figure


def confounds_correlation(matrix: DataFrame, reference: str) -> bytes:
    """Heat map of the confounds' correlations and bar plot of ``|r|`` with ``reference``.

    ``matrix`` is square and ordered with ``reference`` first (see
    :func:`~neurolearn_cli.qc.confounds.confound_correlations`). Only the lower
    triangle is drawn. Column names come from the data: they are drawn as
    plain text (no mathtext), so ``$`` or markup in a name is shown as is.
    """
    names = [str(name) for name in matrix.columns]
    values = matrix.to_numpy(dtype=np.float64)
    lower = np.ma.masked_where(np.triu(np.ones_like(values, dtype=bool), k=1), values)
    size = max(3.0, 0.24 * len(names) + 1.5)
    figure = Figure(figsize=(2.0 * size + 1.0, size))
    heat, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1.0]})
    image = heat.imshow(lower, cmap="coolwarm", vmin=-1.0, vmax=1.0, interpolation="none")
    ticks = np.arange(len(names))
    heat.set_xticks(ticks)
    heat.set_xticklabels(names, rotation=90, fontsize=7, parse_math=False)
    heat.set_yticks(ticks)
    heat.set_yticklabels(names, fontsize=7, parse_math=False)
    for side in ("top", "right"):
        heat.spines[side].set_visible(False)
    figure.colorbar(image, ax=heat, fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
    others = [k for k, name in enumerate(names) if name != reference]
    strength = np.abs(values[names.index(reference), others])
    bars.barh(np.arange(len(others)), strength, color="#4c72b0")
    bars.set_yticks(np.arange(len(others)))
    bars.set_yticklabels([names[k] for k in others], fontsize=7, parse_math=False)
    bars.invert_yaxis()
    bars.set_xlim(0.0, 1.0)
    bars.set_xlabel(f"|r| with {reference}", fontsize=8, parse_math=False)
    bars.tick_params(labelsize=7)
    for side in ("top", "right"):
        bars.spines[side].set_visible(False)
    figure.subplots_adjust(wspace=0.6)
    return _png(figure)

"""Report figures for a BOLD run, returned as SVG or PNG bytes (no file IO).

- carpet plot: every (sub-sampled) voxel's detrended, z-scored series as one
  row, grouped by tissue (GM, WM, CSF), under FD and DVARS traces;
- boldref with the brain-mask contour;
- coregistration check: the T1w white-matter boundary over the boldref.

Volumes are reoriented to RAS (lossless) so every run displays the same way:
neurological convention, the subject's left on the image's left.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from neurolearn_cli.engine.image import Image, reorient_to_ras  # noqa: E402

_MAX_ROWS = 1500
_TISSUE_COLOURS = {"GM": "#1f77b4", "WM": "#2ca02c", "CSF": "#ff7f0e"}
_SVG_META = {"Date": None}


def _to_bytes(figure: plt.Figure, fmt: str, dpi: int) -> bytes:
    """Render and close a figure; SVG without a date and with fixed ids, so output is reproducible."""
    buffer = io.BytesIO()
    metadata = _SVG_META if fmt == "svg" else None
    with plt.rc_context({"svg.hashsalt": "neurolearn"}):
        figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
    plt.close(figure)
    return buffer.getvalue()


def carpet_plot(
    bold: torch.Tensor,
    tissues: Mapping[str, torch.Tensor],
    framewise_displacement: ArrayLike,
    dvars: ArrayLike,
    repetition_time: float,
    *,
    fmt: str = "png",
) -> bytes:
    """Carpet plot of ``bold`` (X, Y, Z, T) with voxels grouped by the boolean ``tissues`` masks.

    Each series has its least-squares line removed and is z-scored; at most
    1500 evenly spaced rows are drawn, split across tissues by voxel count.
    """
    n_volumes = int(bold.shape[3])
    total = sum(int(mask.sum()) for mask in tissues.values())
    rows, bounds = [], []
    t = torch.arange(n_volumes, dtype=torch.float64, device=bold.device)
    tc = (t - t.mean()) / (t - t.mean()).norm()
    for name, mask in tissues.items():
        series = bold[mask.bool()].to(torch.float64)
        keep = max(1, round(_MAX_ROWS * series.shape[0] / max(total, 1)))
        series = series[torch.linspace(0, series.shape[0] - 1, keep, device=bold.device).long()]
        series = series - series.mean(1, keepdim=True)
        series = series - (series @ tc)[:, None] * tc
        series = series / series.std(1, keepdim=True).clamp(min=1e-6)
        rows.append(series.cpu().numpy())
        bounds.append((name, keep))
    carpet = np.concatenate(rows)
    figure, axes = plt.subplots(
        3, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1, 5], "hspace": 0.08}
    )
    time_s = np.arange(n_volumes) * repetition_time
    axes[0].plot(time_s, np.asarray(framewise_displacement, dtype=float), color="#d62728", lw=1)
    axes[0].set_ylabel("FD (mm)")
    axes[1].plot(time_s, np.asarray(dvars, dtype=float), color="#9467bd", lw=1)
    axes[1].set_ylabel("DVARS")
    extent = (-0.5 * repetition_time, (n_volumes - 0.5) * repetition_time, carpet.shape[0], 0)
    axes[2].imshow(
        carpet, aspect="auto", cmap="gray", vmin=-2, vmax=2, interpolation="nearest", extent=extent
    )
    start = 0
    for name, count in bounds:
        axes[2].axhspan(
            start, start + count, xmin=0, xmax=0.01, color=_TISSUE_COLOURS.get(name, "k")
        )
        axes[2].text(
            -0.02,
            start + count / 2,
            name,
            transform=axes[2].get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=8,
        )
        start += count
    axes[2].set_yticks([])
    axes[2].set_xlabel("time (s)")
    return _to_bytes(figure, fmt, dpi=100)


def _slices(extent: np.ndarray, axis: int, count: int) -> list[int]:
    """``count`` slice indices spread over the central 80 % of the mask ``extent`` along ``axis``."""
    others = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(extent.any(axis=others))
    first, last = (present[0], present[-1]) if present.size else (0, extent.shape[axis] - 1)
    span = last - first
    return [int(round(x)) for x in np.linspace(first + 0.1 * span, last - 0.1 * span, count)]


def _contour_mosaic(
    background: Image, masks: Sequence[tuple[torch.Tensor, str]], count: int, fmt: str
) -> bytes:
    """Axial, coronal and sagittal rows of ``count`` slices with each mask's outline."""
    ras = reorient_to_ras(background)
    data = ras.data.detach().cpu().numpy()
    spacing = ras.spacing
    outlines = [
        (reorient_to_ras(background.with_data(m.float())).data.cpu().numpy() > 0.5, c)
        for m, c in masks
    ]
    extent = outlines[0][0] if outlines[0][0].any() else data > 0
    low, high = np.percentile(data[data > 0], [1, 99.5]) if (data > 0).any() else (0.0, 1.0)
    figure, axes = plt.subplots(3, count, figsize=(1.6 * count, 5.0))
    for row, axis in enumerate((2, 1, 0)):
        plane_axes = [a for a in range(3) if a != axis]
        aspect = spacing[plane_axes[1]] / spacing[plane_axes[0]]
        for col, index in enumerate(_slices(extent, axis, count)):
            ax = axes[row, col]
            ax.imshow(
                np.take(data, index, axis=axis).T,
                origin="lower",
                cmap="gray",
                vmin=low,
                vmax=high,
                aspect=aspect,
            )
            for outline, colour in outlines:
                plane = np.take(outline, index, axis=axis).T.astype(float)
                if plane.any() and not plane.all():
                    ax.contour(plane, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.02)
    return _to_bytes(figure, fmt, dpi=80)


def mask_figure(reference: Image, mask: torch.Tensor, *, count: int = 6, fmt: str = "svg") -> bytes:
    """The BOLD reference with its brain mask's contour (red)."""
    return _contour_mosaic(reference, [(mask, "#ff3030")], count, fmt)


def coregistration_figure(
    reference: Image, white_matter: torch.Tensor, *, count: int = 6, fmt: str = "svg"
) -> bytes:
    """The BOLD reference with the T1w white-matter boundary (resampled to its grid) in green."""
    return _contour_mosaic(reference, [(white_matter, "#30ff30")], count, fmt)

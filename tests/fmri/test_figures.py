import numpy as np
import pytest
import torch
from matplotlib.collections import PathCollection

from neurolearn_cli.engine.image import Image
from neurolearn_cli.fmri.figures import (
    Outline,
    Trace,
    carpet_figure,
    carpet_plot,
    carpet_rows,
    contour_mosaic,
    coregistration_figure,
    detrend_zscore,
    mask_figure,
    spikes,
    steady_trace,
    trace_limits,
)
from neurolearn_cli.palette import MASK_COLOUR

AFFINE = torch.tensor(
    [[-3.0, 0, 0, 30], [0, 3.0, 0, -40], [0, 0, 3.3, -20], [0, 0, 0, 1]], dtype=torch.float64
)
LIMIT = 300_000
N_VOLUMES, DUMMIES, TR = 40, 3, 2.0
SPIKES = (17, 29)


def _phantom() -> tuple[Image, torch.Tensor, torch.Tensor]:
    axes = [torch.arange(n, dtype=torch.float32) for n in (20, 24, 16)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    r = ((grid - torch.tensor([9.5, 11.5, 7.5])) / torch.tensor([8.0, 10.0, 6.0])).norm(dim=-1)
    brain, core = r < 1.0, r < 0.6
    return Image(torch.where(core, 60.0, torch.where(brain, 100.0, 2.0)), AFFINE), brain, core


def _run() -> tuple[torch.Tensor, dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """A run with bright non-steady-state volumes, a drift, and FD/DVARS spikes at SPIKES."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(N_VOLUMES, dtype=torch.float32)
    bold = 100 + torch.randn(20, 24, 16, N_VOLUMES, generator=gen) + 0.01 * (t - 20) ** 2
    bold[..., :DUMMIES] += 40.0 * 0.35 ** torch.arange(DUMMIES)
    _, brain, core = _phantom()
    fd = np.full(N_VOLUMES, 0.1)
    fd[0] = np.nan
    dvars = np.full(N_VOLUMES, 1.0)
    dvars[0], dvars[DUMMIES] = np.nan, 25.0  # the first steady volume against the last dummy
    for index in SPIKES:
        fd[index], dvars[index] = 0.8, 2.5
    return bold, {"GM": brain & ~core, "WM": core}, fd, dvars


def test_contour_figures_are_small_reproducible_svgs_with_the_outline_and_its_legend():
    reference, brain, core = _phantom()
    first = mask_figure(reference, brain, count=3)
    assert first.startswith(b"<?xml") and len(first) < LIMIT
    assert MASK_COLOUR.encode() in first
    assert mask_figure(reference, brain, count=3) == first
    coreg = coregistration_figure(reference, core, count=3, fmt="png")
    assert coreg.startswith(b"\x89PNG") and len(coreg) < LIMIT
    figure = contour_mosaic(reference, [Outline(brain, "#123456", "brain mask")], 3)
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == ["brain mask"]
    assert [h.get_color() for h in legend.legend_handles] == ["#123456"]


def test_carpet_rows_leave_out_the_nonsteady_volumes():
    bold, tissues, _, _ = _run()
    carpet = carpet_rows(bold, tissues, DUMMIES)
    assert carpet.first_volume == DUMMIES and carpet.rows.shape[1] == N_VOLUMES - DUMMIES
    cropped = carpet_rows(bold[..., DUMMIES:].contiguous(), tissues, 0)
    np.testing.assert_allclose(carpet.rows, cropped.rows, atol=1e-9)
    # with the dummies kept their excess dominates the scaling: the first column saturates
    assert np.median(carpet_rows(bold, tissues, 0).rows[:, 0]) > 3.0
    assert abs(np.median(carpet.rows[:, 0])) < 1.0


def test_carpet_rows_are_grouped_by_tissue_within_the_row_budget():
    bold, tissues, _, _ = _run()
    signal = torch.sin(torch.arange(N_VOLUMES, dtype=torch.float32))
    bold = bold + 5.0 * tissues["WM"][..., None] * signal  # only WM carries the sine
    empty = torch.zeros_like(tissues["GM"])
    carpet = carpet_rows(bold, {"WM": tissues["WM"], "CSF": empty, "GM": tissues["GM"]}, DUMMIES, max_rows=200)
    names = [name for name, _ in carpet.segments]
    assert names == ["WM", "GM"]  # the mapping's order; an empty tissue is left out
    n_wm = carpet.segments[0][1]
    assert carpet.rows.shape[0] == sum(count for _, count in carpet.segments) <= 200
    wm_share = int(tissues["WM"].sum()) / int(tissues["WM"].sum() + tissues["GM"].sum())
    assert n_wm == pytest.approx(200 * wm_share, abs=1)
    sine = signal[DUMMIES:].numpy()
    r_wm = [np.corrcoef(row, sine)[0, 1] for row in carpet.rows[:n_wm]]
    r_gm = [np.corrcoef(row, sine)[0, 1] for row in carpet.rows[n_wm:]]
    assert min(r_wm) > 0.8 and max(np.abs(r_gm)) < 0.7
    with pytest.raises(ValueError, match="no voxel"):
        carpet_rows(bold, {"GM": empty}, DUMMIES)


def test_detrend_zscore_removes_a_quadratic_drift_and_scales_each_row():
    t = torch.linspace(0.0, 1.0, 60, dtype=torch.float64)
    noise = torch.randn(3, 60, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    series = torch.stack([500 + 80 * t**2 - 30 * t + noise[0], 20 + noise[1], torch.full_like(t, 7.0)])
    z = detrend_zscore(series, degree=2)
    for row in z[:2]:
        assert float(row.mean()) == pytest.approx(0.0, abs=1e-9)
        assert float(row.std()) == pytest.approx(1.0)
        for k in (1, 2):
            assert abs(float(np.corrcoef(row, t**k)[0, 1])) < 1e-6
    assert torch.equal(z[2], torch.zeros(60, dtype=torch.float64))  # constant row: 0, not NaN
    np.testing.assert_allclose(z[0], detrend_zscore(noise[:1] * 1.0, degree=2)[0], atol=1e-6)


def test_traces_ignore_the_nonsteady_volumes_and_spikes_are_the_volumes_above_threshold():
    _, _, fd, dvars = _run()
    steady = steady_trace(dvars, DUMMIES)
    assert np.isnan(steady[: DUMMIES + 1]).all() and np.isfinite(steady[DUMMIES + 1 :]).all()
    assert trace_limits(steady, 1.5) == pytest.approx((0.0, 1.1 * 2.5))  # not set by volume 3's 25
    assert trace_limits(np.full(5, np.nan), 1.5) == pytest.approx((0.0, 1.1 * 1.5))
    assert spikes(steady, 1.5).tolist() == list(SPIKES)
    assert spikes(steady_trace(fd, DUMMIES), 0.5).tolist() == list(SPIKES)
    assert spikes(steady_trace(fd, DUMMIES), 0.9).tolist() == []


def test_carpet_figure_marks_the_thresholds_spikes_tissues_and_excluded_volumes():
    bold, tissues, fd, dvars = _run()
    traces = [
        Trace("FD", "mm", steady_trace(fd, DUMMIES), 0.3, "black"),
        Trace("std DVARS", "", steady_trace(dvars, 0), 2.0, "purple"),
    ]
    figure = carpet_figure(carpet_rows(bold, tissues, DUMMIES), traces, TR)
    fd_ax, dvars_ax, bar_ax, carpet_ax = figure.axes[1], figure.axes[2], figure.axes[3], figure.axes[0]
    expected = (
        (fd_ax, 0.3, "threshold 0.3 mm", list(SPIKES)),
        (dvars_ax, 2.0, "threshold 2", [DUMMIES, *SPIKES]),  # no dummies given for DVARS
    )
    for ax, threshold, label, volumes in expected:
        (line,) = [line for line in ax.get_lines() if line.get_label() == label]
        assert set(line.get_ydata()) == {threshold}
        (markers,) = [c for c in ax.collections if isinstance(c, PathCollection)]
        np.testing.assert_allclose(markers.get_offsets()[:, 0], np.array(volumes) * TR)
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert label in texts and f"spikes ({len(volumes)})" in texts and "non-steady state (excluded)" in texts
    # DVARS kept from volume 1: volume 3's 25 is a spike too, and sets its range
    assert dvars_ax.get_ylim()[1] == pytest.approx(1.1 * 25.0)
    assert fd_ax.get_ylim()[1] == pytest.approx(1.1 * 0.8)
    (carpet_image,) = carpet_ax.get_images()
    assert carpet_image.get_extent()[0] == pytest.approx((DUMMIES - 0.5) * TR)
    marks = [line for line in carpet_ax.get_lines() if line.get_marker() == "v"]
    np.testing.assert_allclose(marks[0].get_xdata(), np.array([DUMMIES, *SPIKES]) * TR)
    assert [t.get_text() for t in bar_ax.get_yticklabels()] == ["GM", "WM"]


def test_carpet_plot_is_a_small_png():
    bold, tissues, fd, dvars = _run()
    png = carpet_plot(bold, tissues, fd, dvars, TR, n_nonsteady=DUMMIES, fd_threshold=0.5, dvars_threshold=1.5)
    assert png.startswith(b"\x89PNG") and len(png) < LIMIT

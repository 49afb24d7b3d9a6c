"""Legends and thresholds of the qc report figures, read from the figures themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from neurolearn_cli.fmri.motion import MOTION_COLUMNS
from neurolearn_cli.palette import LESION_COLOUR, MASK_COLOUR, TISSUE_COLOURS
from neurolearn_cli.qc import figures, pipeline

SHAPE = (12, 14, 10)


def _volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A T1w-like box with a brain mask and GM/WM/CSF labels, axes of different lengths."""
    grid = np.stack(np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij"), -1)
    r = np.linalg.norm((grid - (np.array(SHAPE) - 1) / 2) / (np.array(SHAPE) / 2.5), axis=-1)
    brain = r < 1.0
    dseg = np.select([r < 0.4, r < 0.7, brain], [2, 1, 3], 0)
    data = np.where(brain, 100.0 + 10 * dseg, 5.0)
    return data, brain, dseg


def _legend_entries(figure) -> list[tuple[str, str]]:
    (legend,) = figure.legends
    handles = legend.legend_handles
    colours = [to_hex(h.get_color() if hasattr(h, "get_color") else h.get_facecolor()) for h in handles]
    return [(t.get_text(), c) for t, c in zip(legend.get_texts(), colours, strict=True)]


def test_mosaic_legend_names_the_mask_outline_and_the_tissue_colours() -> None:
    data, brain, dseg = _volume()
    entries = _legend_entries(figures.mosaic_figure(data, brain, dseg, n_slices=4, columns=4))
    assert entries == [("brain mask", MASK_COLOUR)] + [(name, TISSUE_COLOURS[name]) for name in ("GM", "WM", "CSF")]
    # the legend's colours are the ones the labels are drawn in: dseg label k -> DSEG_COLOURS(k)
    for label, name in enumerate(figures.DSEG_LABELS, start=1):
        assert to_hex(figures.DSEG_COLOURS(label)) == TISSUE_COLOURS[name]
    assert [text for text, _ in _legend_entries(figures.mosaic_figure(data, brain, n_slices=4))] == ["brain mask"]
    assert figures.mosaic_figure(data, n_slices=4).legends == []


def test_a_lesion_label_is_drawn_in_its_own_colour_and_named() -> None:
    data, brain, dseg = _volume()
    lesioned = dseg.copy()
    lesioned[dseg == 2] = 4  # smri's lesion label
    entries = _legend_entries(figures.mosaic_figure(data, brain, lesioned, n_slices=4, columns=4))
    assert entries[-1] == ("lesion", LESION_COLOUR)
    assert to_hex(figures.DSEG_COLOURS(4)) == LESION_COLOUR != to_hex(figures.DSEG_COLOURS(3))


def _motion(n_volumes: int = 30) -> tuple[np.ndarray, np.ndarray]:
    params = np.zeros((n_volumes, 6))
    params[:, 0] = np.linspace(0.0, 0.6, n_volumes)
    fd = np.r_[np.nan, np.abs(np.diff(params[:, 0]))]
    fd[[9, 21]] = [0.45, 0.9]
    return params, fd


@pytest.mark.parametrize(("threshold", "above"), [(0.2, [9, 21]), (0.5, [21])])
def test_motion_figure_draws_the_given_fd_threshold_and_marks_the_volumes_above(threshold, above) -> None:
    params, fd = _motion()
    fd_axis = figures.motion_figure(params, fd, 2.0, threshold=threshold).axes[2]
    (line,) = [line for line in fd_axis.get_lines() if line.get_label().startswith("threshold")]
    assert set(line.get_ydata()) == {threshold}
    assert line.get_label() == f"threshold {threshold:g} mm"
    np.testing.assert_allclose(fd_axis.collections[0].get_offsets()[:, 0], np.array(above) * 2.0)
    texts = [t.get_text() for t in fd_axis.get_legend().get_texts()]
    assert f"threshold {threshold:g} mm" in texts and f"above threshold ({len(above)})" in texts


def test_confound_figures_pass_the_runs_fd_threshold_to_the_motion_figure(monkeypatch) -> None:
    params, fd = _motion()
    table = pd.DataFrame(params, columns=list(MOTION_COLUMNS)).assign(framewise_displacement=fd)
    seen: list[float] = []

    def motion_traces(*args: object, threshold: float) -> bytes:
        seen.append(threshold)
        return b"\x89PNG"

    monkeypatch.setattr(figures, "motion_traces", motion_traces)
    made = pipeline.confound_figures(table, 2.0, 0, fd_threshold=0.37)
    assert seen == [0.37] and [f.title for f in made] == ["Head motion"]


def test_fmri_figures_carry_a_caption_in_the_report() -> None:
    from neurolearn_cli.fmri.figures import CAPTIONS

    assert {f"figure_{role}" for role in CAPTIONS} == set(pipeline.FMRI_FIGURE_TITLES)
    assert all(caption.strip() for caption in CAPTIONS.values())


def test_normalization_check_has_a_legend_for_the_template_edges() -> None:
    data, _, _ = _volume()
    entries = _legend_entries(figures.normalization_figure(data, data, n_slices=2))
    assert entries == [("template edges", figures.EDGE_COLOUR)]

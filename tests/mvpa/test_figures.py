"""The confusion matrix is readable: every count contrasts with its cell, no cell fades into the page."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import to_rgb

from neurolearn_cli.mvpa.figures import CONFUSION_COLOURS, confusion_cells, confusion_plot
from neurolearn_cli.palette import contrast_ratio, text_colour_on

#: Three classes of unequal size, with a class never predicted and mid-range fractions.
Y = np.array([0] * 12 + [1] * 5 + [2] * 3)
PREDICTED = np.array([0] * 10 + [1, 2] + [1] * 4 + [0] + [0, 0, 0])


def _rgb(rgba: tuple[float, ...]) -> tuple[float, float, float]:
    return float(rgba[0]), float(rgba[1]), float(rgba[2])


def test_confusion_cells_count_and_normalise_by_true_class() -> None:
    counts, fractions = confusion_cells(Y, PREDICTED, 4)
    assert counts.tolist() == [[10, 1, 1, 0], [1, 4, 0, 0], [3, 0, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(fractions[:3].sum(axis=1), 1.0)
    assert np.isnan(fractions[3]).all()  # a class without samples has no fractions, not zeros


def test_every_annotation_contrasts_with_its_cell() -> None:
    figure = confusion_plot(Y, PREDICTED, ["control", "patient", "$other$"])
    axis = figure.axes[0]
    image = axis.get_images()[0]
    counts, fractions = confusion_cells(Y, PREDICTED, 3)
    texts = axis.texts
    assert len(texts) == counts.size
    for text in texts:
        x, y = text.get_position()
        cell = _rgb(image.to_rgba(fractions[int(y), int(x)]))
        assert text.get_text().split("\n")[0] == str(counts[int(y), int(x)])
        assert contrast_ratio(to_rgb(text.get_color()), cell) >= 4.5, text.get_text()
    assert [t.get_text() for t in axis.get_xticklabels()] == ["control", "patient", "$other$"]


def test_the_colour_map_never_washes_out_to_the_page() -> None:
    lightest = _rgb(CONFUSION_COLOURS(0.0))
    assert contrast_ratio(lightest, (1.0, 1.0, 1.0)) > 1.1
    # across the whole map, black or white text reaches WCAG AA contrast
    for value in np.linspace(0.0, 1.0, 51):
        cell = _rgb(CONFUSION_COLOURS(value))
        assert contrast_ratio(to_rgb(text_colour_on(cell)), cell) >= 4.5


def test_text_colour_is_the_higher_contrast_of_black_and_white() -> None:
    assert text_colour_on((0.03, 0.19, 0.42)) == "white"
    assert text_colour_on((0.87, 0.92, 0.97)) == "black"
    assert contrast_ratio((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)) == 21.0

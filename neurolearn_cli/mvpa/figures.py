"""Report figures, each returned as a base64-encoded PNG to inline in the HTML."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import confusion_matrix, roc_curve  # noqa: E402

from neurolearn_cli.palette import text_colour_on  # noqa: E402

#: Blues without its near-white end, so a cell with no sample stands out from the page.
CONFUSION_COLOURS = ListedColormap(matplotlib.colormaps["Blues"](np.linspace(0.12, 0.9, 256))).with_extremes(
    bad="#eeeeee"
)


def encode_png(figure: Figure) -> str:
    """Base64 PNG of ``figure``, which is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def roc_figure(y: np.ndarray, decision: np.ndarray, positive: str) -> str:
    """ROC curve of the pooled out-of-fold scores."""
    fpr, tpr, _ = roc_curve(y, decision)
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot(fpr, tpr, color="C0")
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (positive: {positive})")
    return encode_png(figure)


def confusion_cells(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts (rows: true class) and each row's fractions; a class with no sample has NaN fractions."""
    counts = confusion_matrix(y, predicted, labels=np.arange(n_classes))
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.full(counts.shape, np.nan), where=totals > 0)
    return counts, fractions


def confusion_plot(y: np.ndarray, predicted: np.ndarray, classes: list[str]) -> Figure:
    """The confusion matrix drawn: cells coloured by the fraction of their true class, counts annotated.

    Colouring by row fraction keeps a small class as readable as a large one;
    the colour map starts above white so an empty cell still shows, and each
    annotation is black or white, whichever contrasts more with its cell.
    """
    counts, fractions = confusion_cells(y, predicted, len(classes))
    figure = Figure(figsize=(2.4 + 0.9 * len(classes), 1.4 + 0.9 * len(classes)))
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    image = axis.imshow(fractions, cmap=CONFUSION_COLOURS, vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(counts):
        share = "" if np.isnan(fractions[i, j]) else f"\n{fractions[i, j]:.0%}"
        red, green, blue, _ = image.to_rgba(fractions[i, j])
        axis.text(j, i, f"{count}{share}", ha="center", va="center", fontsize=11,
                  color=text_colour_on((red, green, blue)))
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right", parse_math=False)
    axis.set_yticks(range(len(classes)), classes, parse_math=False)
    axis.set_xticks(np.arange(len(classes) + 1) - 0.5, minor=True)
    axis.set_yticks(np.arange(len(classes) + 1) - 0.5, minor=True)
    axis.grid(which="minor", color="white", linewidth=2)
    axis.tick_params(which="minor", length=0)
    axis.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    figure.colorbar(image, ax=axis, fraction=0.05, pad=0.04).set_label("fraction of the true class")
    return figure


def confusion_figure(y: np.ndarray, predicted: np.ndarray, classes: list[str]) -> str:
    """Confusion matrix of the pooled out-of-fold predictions (rows: true class); see :func:`confusion_plot`."""
    return encode_png(confusion_plot(y, predicted, classes))


def scatter_figure(y: np.ndarray, predicted: np.ndarray, target: str) -> str:
    """Predicted against true values, with the identity line."""
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.scatter(y, predicted, s=8, alpha=0.6)
    limits = [min(y.min(), predicted.min()), max(y.max(), predicted.max())]
    axis.plot(limits, limits, color="grey", linestyle="--", linewidth=1)
    axis.set(xlabel=f"true {target}", ylabel=f"predicted {target}", title="out-of-fold predictions")
    return encode_png(figure)


def null_figure(null: np.ndarray, observed: float, metric: str) -> str:
    """Histogram of the permutation null with the observed score."""
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.hist(null, bins=min(30, max(5, null.size // 3)), color="lightgrey", edgecolor="grey")
    axis.axvline(observed, color="C3", linewidth=2, label=f"observed {observed:.3f}")
    axis.set(xlabel=metric, ylabel="permutations", title="permutation null")
    axis.legend()
    return encode_png(figure)


def weights_figure(largest: pd.DataFrame) -> str:
    """Horizontal bars of the weights given (largest first), with their spread over folds."""
    shown = largest[::-1]
    figure, axis = plt.subplots(figsize=(5, 0.8 + 0.25 * len(shown)))
    axis.barh(range(len(shown)), shown["weight"], xerr=shown["std"], color="C0")
    axis.set_yticks(range(len(shown)), [str(f)[:40] for f in shown["feature"]])
    axis.set(xlabel=str(shown["kind"].iloc[0]).replace("_", " "), title=f"top {len(shown)} features")
    return encode_png(figure)


def projection_figure(volume: np.ndarray, title: str) -> str:
    """Signed maximum-magnitude projections of a 3D map along each axis (voxel axes, no resampling)."""
    figure, axes = plt.subplots(1, 3, figsize=(9, 3))
    limit = float(np.abs(volume).max()) or 1.0
    for axis_index, axis in enumerate(axes):
        index = np.abs(volume).argmax(axis=axis_index)
        projection = np.take_along_axis(volume, np.expand_dims(index, axis_index), axis_index).squeeze(axis_index)
        axis.imshow(np.rot90(projection), cmap="RdBu_r", vmin=-limit, vmax=limit)
        axis.set_axis_off()
    figure.suptitle(title)
    return encode_png(figure)

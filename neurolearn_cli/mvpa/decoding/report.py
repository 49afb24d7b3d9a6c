"""The self-contained HTML report of one participant's decoding (jinja2, autoescaped, figures inline)."""

from __future__ import annotations

from typing import Any

import jinja2
import nibabel as nib
import numpy as np
import pandas as pd

from neurolearn_cli.mvpa import figures


def _figures(results: dict[str, Any], predictions: pd.DataFrame, weights: nib.Nifti1Image | None,
             null: np.ndarray) -> list[tuple[str, str]]:
    """(caption, base64 PNG) pairs: ROC (two classes), confusion matrix, permutation null, weight map."""
    classes = results["classes"]
    y = np.array([classes.index(c) for c in predictions["true"]])
    predicted = np.array([classes.index(c) for c in predictions["predicted"]])
    shown = []
    continuous = [c for c in ("probability", "decision") if c in predictions.columns]
    if continuous:
        shown.append(("ROC curve of the out-of-fold scores, folds pooled",
                      figures.roc_figure(y, predictions[continuous[0]].to_numpy(), classes[1])))
    shown.append(("Confusion matrix of the samples (rows: true class)", figures.confusion_figure(y, predicted, classes)))
    if null.size:
        shown.append(("Permutation null (labels shuffled between blocks)",
                      figures.null_figure(null, results["mean"], results["metric"])))
    if weights is not None:
        shown.append(("Decoder weights, largest magnitude along each voxel axis",
                      figures.projection_figure(np.asanyarray(weights.dataobj), "weights")))
    return shown


def render_decoding_report(results: dict[str, Any], predictions: pd.DataFrame, weights: nib.Nifti1Image | None,
                           null: np.ndarray, spec_yaml: str, provenance: dict[str, Any]) -> str:
    """The report as one HTML string; every value from the data is escaped by jinja2."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("neurolearn_cli.mvpa", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.get_template("decoding.html.j2").render(
        results=results, figures=_figures(results, predictions, weights, null), spec_yaml=spec_yaml,
        provenance=provenance)

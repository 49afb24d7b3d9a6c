"""The self-contained HTML report of one analysis (jinja2, autoescaped, figures inline), with its methods."""

from __future__ import annotations

from typing import Any

import jinja2
import numpy as np
import pandas as pd
import yaml

from neurolearn_cli.boilerplate.analysis import analysis_section
from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Boilerplate
from neurolearn_cli.boilerplate.facts import Analysis
from neurolearn_cli.mvpa import figures
from neurolearn_cli.mvpa.spec import spec_from_dict
from neurolearn_cli.mvpa.weights import largest_weights


def _figures(results: dict[str, Any], predictions: pd.DataFrame, weights: pd.DataFrame,
             null: np.ndarray, target: str) -> list[tuple[str, str]]:
    """(caption, base64 PNG) pairs for the analysis' task."""
    shown: list[tuple[str, str]] = []
    if results["task"] == "classification":
        classes = results["classes"]
        y = np.searchsorted(classes, predictions["true"].astype(str))
        predicted = np.searchsorted(classes, predictions["predicted"].astype(str))
        continuous = [c for c in ("probability", "decision") if c in predictions.columns]
        if continuous:
            shown.append(("ROC curve of the out-of-fold scores",
                          figures.roc_figure(y, predictions[continuous[0]].to_numpy(), classes[1])))
        shown.append(("Confusion matrix (rows: true class)", figures.confusion_figure(y, predicted, classes)))
    else:
        shown.append(("Predicted against true (out of fold)", figures.scatter_figure(
            predictions["true"].to_numpy(float), predictions["predicted"].to_numpy(float), target)))
    if null.size:
        shown.append(("Permutation null of the outer score", figures.null_figure(null, results["mean"], results["metric"])))
    if len(weights):
        shown.append(("Largest feature weights (mean ± SD over outer folds); features no fold kept are left out",
                      figures.weights_figure(weights)))
    return shown


def methods(results: dict[str, Any], spec_yaml: str) -> Boilerplate:
    """The analysis' methods paragraphs and references, from its spec (as written) and results."""
    cite = Citations()
    section = analysis_section(Analysis(spec_from_dict(yaml.safe_load(spec_yaml)), results), cite)
    return Boilerplate((section,), cite.references())


def render_report(results: dict[str, Any], predictions: pd.DataFrame, weights: pd.DataFrame, null: np.ndarray,
                  spec_yaml: str, provenance: dict[str, Any], target: str) -> str:
    """The report as one HTML string; every value from the data is escaped by jinja2."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("neurolearn_cli.mvpa", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    top = largest_weights(weights) if len(weights) else weights
    return environment.get_template("report.html.j2").render(
        results=results, figures=_figures(results, predictions, top, null, target),
        weights=top.to_dict("records"), spec_yaml=spec_yaml, provenance=provenance, target=target,
        methods=methods(results, spec_yaml))

"""Run one analysis end to end: read, validate, cross-validate, test, write.

:func:`run_analysis` is the library entry point; the command line only
builds the spec and calls it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli.engine.device import resolve_device
from neurolearn_cli.errors import SpecError
from neurolearn_cli.messages import format_p
from neurolearn_cli.mvpa import metrics
from neurolearn_cli.mvpa.dataset import AnalysisData, assemble
from neurolearn_cli.mvpa.features import load_features
from neurolearn_cli.mvpa.outputs import write_outputs
from neurolearn_cli.mvpa.pipeline import build_pipeline, design_matrix
from neurolearn_cli.mvpa.provenance import versions
from neurolearn_cli.mvpa.spec import AnalysisSpec
from neurolearn_cli.mvpa.validation import (
    CVResult,
    Problem,
    bootstrap_ci,
    check_folds,
    nested_cv,
    null_summary,
    permutation_null,
    permutation_p,
)

LOGGER = logging.getLogger("neurolearn.mvpa")


@dataclass(frozen=True)
class AnalysisResult:
    """What a run produced: its folder, the results payload, predictions and weights tables."""

    folder: Path
    results: dict[str, Any]
    predictions: pd.DataFrame
    weights: pd.DataFrame
    null: np.ndarray


def _predictions(data: AnalysisData, cv: CVResult) -> pd.DataFrame:
    classes = data.classes  # the class labels of a classification, None for a regression

    def label(values: np.ndarray) -> list[Any]:
        return list(values) if classes is None else [classes[int(v)] for v in values]

    frame = pd.DataFrame({"participant_id": data.participant_ids, "fold": cv.fold_of,
                          "true": label(data.y), "predicted": label(cv.predicted)})
    if cv.decision is not None:
        frame[cv.folds[0].decision_kind] = cv.decision
    return frame


def _weights(data: AnalysisData, cv: CVResult) -> pd.DataFrame:
    per_fold = [f.weights for f in cv.folds if f.weights is not None]
    if not per_fold:
        return pd.DataFrame(columns=["feature", "weight", "std", "kind"])
    stacked = np.vstack(per_fold)
    return pd.DataFrame({"feature": data.feature_names, "weight": stacked.mean(axis=0),
                         "std": stacked.std(axis=0), "kind": cv.folds[0].weight_kind})


def _results(spec: AnalysisSpec, data: AnalysisData, problem: Problem, cv: CVResult,
             null: np.ndarray, ci: list[float] | None) -> dict[str, Any]:
    pooled_scores = metrics.score(problem.metric, data.y, cv.predicted, cv.decision)
    return {
        "name": spec.name,
        "task": data.task,
        "metric": problem.metric,
        "statistic": "pooled" if spec.validation.outer == "loo" else "mean_of_outer_folds",
        "outer_scores": cv.fold_scores,
        "mean": cv.statistic,
        "std": float(np.nanstd(cv.fold_scores)) if cv.fold_scores else None,
        "pooled": pooled_scores,
        "ci95": ci,
        "permutation_p": permutation_p(cv.statistic, null),
        "null": null_summary(null),
        "chance": metrics.CHANCE.get(problem.metric, 1.0 / len(data.classes) if data.classes else None),
        "summary": metrics.summary_metrics(data.task, data.y, cv.predicted),
        "best_params": [f.best_params for f in cv.folds],
        "n_samples": len(data.y),
        "n_features": data.features.shape[1],
        "n_folds": len(cv.folds),
        "classes": data.classes,
        "class_counts": None if data.classes is None else np.bincount(data.y).tolist(),
        "sites": data.site_names,
        "confounds": data.confound_names,
        "model": spec.model.name,
        "seed": spec.seed,
        "versions": versions(),
    }


def run_analysis(spec: AnalysisSpec, bids_dir: Path, output_dir: Path, *,
                 device: str = "auto", n_jobs: int = 1, destination: Path | None = None) -> AnalysisResult:
    """Run ``spec`` on ``bids_dir``'s participants, writing ``output_dir/mvpa/<name>/``.

    Parameters
    ----------
    spec : AnalysisSpec
        The validated analysis.
    bids_dir : Path
        Holds ``participants.tsv`` (the target, confounds, groups).
    output_dir : Path
        The derivatives folder (also the default feature source).
    device : str
        ``auto``, ``cpu`` or ``cuda[:N]``, for the torch models.
    n_jobs : int
        Processes for the outer folds and the permutations.
    destination : Path, optional
        Where ``output_dir`` will be once in place, when it is a staging
        folder renamed afterwards (a project's pool): the log names it.

    Raises
    ------
    InputError
        Bad data or files, in one line naming the file.
    SpecError
        A spec field that does not fit the data (no file named: see :meth:`SpecError.located`).
    """
    started = time.time()
    torch_device = resolve_device(device)
    table = load_features(spec.features, Path(output_dir))
    data = assemble(spec, table, Path(bids_dir))
    n_classes = 0 if data.classes is None else len(data.classes)
    metric = metrics.choose_metric(spec.validation.metric, data.task, n_classes)
    problem_with_metric = metrics.check_metric(metric, data.task, n_classes)
    if problem_with_metric:
        raise SpecError(None, "validation.metric", problem_with_metric)
    pipeline, grid = build_pipeline(spec, data, str(torch_device))
    problem = Problem(design_matrix(spec, data), data.y, data.groups, data.task, metric,
                      data.features.shape[1], pipeline, grid, spec.validation, spec.seed)
    check_folds(problem)
    LOGGER.info("mvpa %s: %d participants x %d features, %s, %s", spec.name, len(data.y),
                data.features.shape[1], data.task, metric)
    cv_started = time.time()
    cv = nested_cv(problem, n_jobs=n_jobs)
    cv_done = time.time()
    null = permutation_null(problem, n_jobs=n_jobs)
    permutations_done = time.time()
    ci = bootstrap_ci(problem, cv, spec.validation.bootstrap)
    results = _results(spec, data, problem, cv, null, ci)
    predictions, weights = _predictions(data, cv), _weights(data, cv)
    timing = {"started": started, "cv_s": cv_done - cv_started, "permutations_s": permutations_done - cv_done}
    folder = write_outputs(spec, Path(output_dir), results, predictions, weights, null, table.inputs,
                           Path(bids_dir) / "participants.tsv", timing, str(torch_device))
    interval = "" if ci is None else f" (95% CI {ci[0]:.3f} to {ci[1]:.3f})"
    LOGGER.info("mvpa %s: %s = %.3f%s, permutation p = %s, %d participants; outputs in %s", spec.name, metric,
                cv.statistic, interval, format_p(results["permutation_p"]), len(data.y),
                folder if destination is None else destination / folder.relative_to(output_dir))
    return AnalysisResult(folder, results, predictions, weights, null)

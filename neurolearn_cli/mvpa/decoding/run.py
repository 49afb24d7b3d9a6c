"""Run a decoding spec for each participant: estimate, cross-validate, permute, write.

:func:`run_decoding` is the library entry point; the command line only reads
the spec and calls it.
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
from neurolearn_cli.errors import InputError
from neurolearn_cli.mvpa import metrics
from neurolearn_cli.mvpa.decoding.crossval import (
    SampleTimes,
    block_shuffles,
    build_decoder,
    decoding_problem,
    permutation_null,
    plan_folds,
)
from neurolearn_cli.mvpa.decoding.events import class_labels
from neurolearn_cli.mvpa.decoding.inputs import find_runs, participants_with_runs
from neurolearn_cli.mvpa.decoding.outputs import write_decoding, write_spec
from neurolearn_cli.mvpa.decoding.samples import SampleSet, estimate_samples
from neurolearn_cli.mvpa.decoding.spec import DecodingSpec
from neurolearn_cli.mvpa.provenance import versions
from neurolearn_cli.mvpa.validation import CVResult, nested_cv, null_summary, permutation_p

LOGGER = logging.getLogger("neurolearn.mvpa")


@dataclass(frozen=True)
class DecodingResult:
    """One participant's decoding: its folder, results payload, predictions and the permutation null."""

    participant: str
    folder: Path
    results: dict[str, Any]
    predictions: pd.DataFrame
    null: np.ndarray


def _finite(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def summarize(spec: DecodingSpec, label: str, samples: SampleSet, decoded: pd.DataFrame, y: np.ndarray,
              classes: list[str], metric: str, scheme: str, cv: CVResult, null: np.ndarray) -> dict[str, Any]:
    """The ``results.json`` payload (no paths, no times: same inputs, same bytes)."""
    return {
        "name": spec.name,
        "mode": "within",
        "participant": f"sub-{label}",
        "task": spec.task,
        "space": spec.space,
        "metric": metric,
        "statistic": "mean_of_outer_folds",
        "cv": scheme,
        "outer_scores": [_finite(s) for s in cv.fold_scores],
        "fold_accuracy": [float(np.mean(f.predicted == y[f.test])) for f in cv.folds],
        "mean": _finite(cv.statistic),
        "permutation_p": permutation_p(cv.statistic, null),
        "null": null_summary(null),
        "chance": metrics.CHANCE.get(metric, 1.0 / len(classes)),
        "summary": metrics.summary_metrics("classification", y, cv.predicted),
        "classes": classes,
        "class_counts": np.bincount(y, minlength=len(classes)).tolist(),
        "unit": spec.samples.unit,
        "n_samples": len(y),
        "n_blocks": int(decoded["block"].nunique()),
        "n_runs": int(decoded["run"].nunique()),
        "n_voxels": int(samples.estimates.shape[1]),
        "confounds": samples.confounds,
        "best_params": [f.best_params for f in cv.folds],
        "model": spec.model.name,
        "seed": spec.seed,
        "versions": versions(),
    }


def _predictions(decoded: pd.DataFrame, y: np.ndarray, classes: list[str], cv: CVResult) -> pd.DataFrame:
    frame = decoded[["run", "block", "onset", "duration", "condition"]].reset_index(drop=True)
    frame["fold"] = cv.fold_of
    frame["true"] = [classes[int(v)] for v in y]
    frame["predicted"] = [classes[int(v)] for v in cv.predicted]
    if cv.decision is not None:
        frame[cv.folds[0].decision_kind] = cv.decision
    return frame


def _weights(cv: CVResult) -> np.ndarray | None:
    per_fold = [f.weights for f in cv.folds if f.weights is not None and f.weight_kind == "coefficient"]
    return np.mean(per_fold, axis=0) if per_fold else None


def decode_participant(spec: DecodingSpec, label: str, bids_dir: Path, derivatives: Path, output_dir: Path, *,
                       device: str, n_jobs: int) -> DecodingResult:
    """Decode one participant's runs and write ``output_dir/mvpa/<name>/sub-<label>/``."""
    started = time.time()
    torch_device = resolve_device(device)
    runs = find_runs(derivatives, bids_dir, label, spec)
    samples = estimate_samples(runs, spec, torch_device)
    decoded_rows, y, classes = class_labels(samples.table["condition"], spec.target)
    decoded = samples.table[decoded_rows]
    X = samples.estimates[decoded_rows]
    blocks = decoded["block"].to_numpy()
    times = SampleTimes(decoded["run"].to_numpy(), blocks, decoded["onset"].to_numpy(float),
                        (decoded["onset"] + decoded["duration"]).to_numpy(float))
    pipeline, grid = build_decoder(spec, str(torch_device))
    plan = plan_folds(spec, y, times, classes)
    problem = decoding_problem(spec, X, y, blocks, plan, len(classes), pipeline, grid)
    LOGGER.info("mvpa %s sub-%s: %d samples x %d voxels, %s, %s", spec.name, label, len(y), X.shape[1],
                plan.scheme, problem.metric)
    cv_started = time.time()
    cv = nested_cv(problem, n_jobs=n_jobs)
    cv_done = time.time()
    shuffles = block_shuffles(y, blocks, plan, spec.validation.permutations, spec.seed)
    null = permutation_null(problem, shuffles, n_jobs=n_jobs)
    timing = {"started": started, "estimate_s": cv_started - started, "cv_s": cv_done - cv_started,
              "permutations_s": time.time() - cv_done}
    results = summarize(spec, label, samples, decoded, y, classes, problem.metric, plan.scheme, cv, null)
    predictions = _predictions(decoded, y, classes, cv)
    folder = write_decoding(spec, label, output_dir, results, predictions, _weights(cv), samples, null,
                            runs, timing, str(torch_device))
    LOGGER.info("mvpa %s sub-%s: %s = %s (p = %s), written to %s", spec.name, label, problem.metric,
                results["mean"], results["permutation_p"], folder)
    return DecodingResult(label, folder, results, predictions, null)


def run_decoding(spec: DecodingSpec, bids_dir: Path, output_dir: Path, *, participants: list[str] | None = None,
                 device: str = "auto", n_jobs: int = 1) -> list[DecodingResult]:
    """Run ``spec`` for each participant (default: all with fmri outputs in the spec's space).

    Derivatives are read from ``spec.derivatives`` (default ``output_dir``),
    events from ``bids_dir``.

    Raises
    ------
    InputError
        Unknown participants (before any work), bad spec, files or design.
    """
    derivatives = Path(spec.derivatives or output_dir)
    available = participants_with_runs(derivatives, spec)
    wanted = [p.removeprefix("sub-") for p in participants] if participants else available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        raise InputError(derivatives, f"no fmri outputs in space {spec.space} for sub-{unknown[0]}")
    if not wanted:
        raise InputError(derivatives, f"no participant has fmri outputs in space {spec.space} (run neurolearn fmri first)")
    write_spec(spec, Path(output_dir))
    return [decode_participant(spec, label, Path(bids_dir), derivatives, Path(output_dir), device=device, n_jobs=n_jobs)
            for label in wanted]

"""Nested cross-validation, the permutation test of its outer score, and bootstrap intervals.

The outer loop splits participants into folds (stratified for
classification, never splitting a group when grouped); on each training part
an inner search (grid or random) picks hyperparameters by inner
cross-validation, the pipeline is refitted with them, and it predicts the
held-out fold. The outer fold scores are the estimate; the inner scores are
never reported as a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    LeaveOneOut,
    ParameterGrid,
    RandomizedSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
)
from sklearn.pipeline import Pipeline

from neurolearn_cli.errors import SpecError
from neurolearn_cli.mvpa import metrics
from neurolearn_cli.mvpa.ridge_path import RidgePathSearch, supports_path
from neurolearn_cli.mvpa.spec import ValidationSpec
from neurolearn_cli.mvpa.weights import linear_weights, permutation_importance


@dataclass(frozen=True)
class Problem:
    """What the cross-validation runs on: the design matrix, target, groups and settings.

    ``splits``: fixed outer (train, test) index pairs that replace the
    splitter the validation spec names (within-participant decoding builds
    its own, with gaps between training and test).
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    task: str
    metric: str
    n_features: int
    pipeline: Pipeline
    grid: dict[str, list[Any]]
    validation: ValidationSpec
    seed: int
    splits: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None


@dataclass(frozen=True)
class FoldResult:
    """One outer fold: test rows, predictions, continuous scores, chosen hyperparameters, weights.

    ``decision_kind`` says whether ``decision`` holds positive-class
    probabilities or decision values.
    """

    test: np.ndarray
    predicted: np.ndarray
    decision: np.ndarray | None
    decision_kind: str | None
    best_params: dict[str, Any]
    weights: np.ndarray | None
    weight_kind: str | None


@dataclass(frozen=True)
class CVResult:
    """Out-of-fold predictions of every participant and the per-fold results."""

    folds: list[FoldResult]
    fold_of: np.ndarray
    predicted: np.ndarray
    decision: np.ndarray | None
    fold_scores: list[float]
    statistic: float


def _splitter(k: int | str, task: str, grouped: bool, seed: int):
    if k == "logo":
        return LeaveOneGroupOut()
    if k == "loo":
        return LeaveOneOut()
    if task == "classification":
        return StratifiedGroupKFold(k, shuffle=True, random_state=seed) if grouped else StratifiedKFold(k, shuffle=True, random_state=seed)
    return GroupKFold(k, shuffle=True, random_state=seed) if grouped else KFold(k, shuffle=True, random_state=seed)


def check_folds(problem: Problem) -> None:
    """Refuse settings the data cannot support (one line naming the spec field).

    Raises
    ------
    SpecError
        Fewer participants per class (or groups) than folds, a class of one
        participant under leave-one-out, or leave-one-group-out without groups.
    """
    v = problem.validation
    n = len(problem.y)
    n_groups = None if problem.groups is None else np.unique(problem.groups).size
    if isinstance(v.outer, int):
        if n_groups is not None and n_groups < v.outer:
            advice = f"use --cv {n_groups} or fewer" if n_groups >= 2 else "cross-validation needs 2 groups"
            raise SpecError(None, "validation.outer", f"{v.outer} folds but only {n_groups} groups in "
                                                      f"'{v.group_by}': {advice}")
        if problem.task == "classification":
            smallest = int(np.bincount(problem.y).min())
            inner = v.inner if problem.grid else None  # without a grid to search, there are no inner folds
            if fitting_folds(smallest, v.outer, inner) != (v.outer, inner):
                field = "validation.outer" if smallest < v.outer else "validation.inner"
                raise SpecError(None, field, _too_few(n, smallest, v.outer, inner))
        elif n < 2 * v.outer:
            advice = f"use --cv {n // 2} or fewer" if n >= 4 else "cross-validation needs 4"
            raise SpecError(None, "validation.outer", f"{v.outer} folds need at least {2 * v.outer} participants, "
                                                      f"got {n}: {advice}")
    elif v.outer == "loo" and problem.task == "classification":
        smallest = int(np.bincount(problem.y).min())
        if smallest < 2:  # leaving its participant out would train on the other classes only
            raise SpecError(None, "validation.outer", f"leave-one-out needs two participants per class, "
                             f"but the smallest class has {smallest}")
    if v.outer == "logo":
        if n_groups is None:
            raise SpecError(None, "validation.group_by", "outer: logo needs groups (the problem has none)")
        if n_groups < 2:
            raise SpecError(None, "validation.group_by", f"'{v.group_by}' has a single group: cannot leave one out")


def fitting_folds(smallest: int, outer: int, inner: int | None) -> tuple[int, int | None] | None:
    """The most outer folds, up to ``outer``, and inner folds, up to ``inner``, that a class of ``smallest`` fills.

    Each outer fold needs a participant of every class; each inner fold one of
    every class in the outer training part (``(k - 1) / k`` of them). ``inner``
    None: no inner search. None when not even 2 outer (and 2 inner) folds fit.
    """
    for k in range(min(outer, smallest), 1, -1):
        if inner is None:
            return k, None
        training = math.floor(smallest * (k - 1) / k)
        if training >= 2:
            return k, min(inner, training)
    return None


def _too_few(n: int, smallest: int, outer: int, inner: int | None) -> str:
    """Why ``outer`` (and ``inner``) folds do not fit the sample, and the folds that would."""
    asked = f"{outer} outer folds" + ("" if inner is None else f" with {inner} inner folds each")
    sample = f"{n} participants with {smallest} in the smallest class"
    fit = fitting_folds(smallest, outer, inner)
    if fit is None:
        kind = "cross-validation needs 2" if inner is None else "nested cross-validation needs 3"
        return f"{sample} are too few for {asked}: {kind} participants per class"
    k, i = fit
    options = f"--cv {k}" + ("" if i is None else f" --inner-cv {i}")
    fields = f"outer: {k}" + ("" if i is None else f", inner: {i}")
    return f"{sample} cannot fill {asked}: use at most {options} ({fields} in a spec)"


def _search(problem: Problem, groups: np.ndarray | None):
    """The inner search, and the groups to fit it with.

    Inner folds are grouped when the training part has at least two groups
    (at most one fold per group), else plain. A grid over the ridge penalty
    alone takes the eigendecomposition path (:mod:`ridge_path`).
    """
    v = problem.validation
    k = v.inner if groups is None else min(v.inner, np.unique(groups).size)
    grouped = groups is not None and k >= 2
    inner = _splitter(k if grouped else v.inner, problem.task, grouped, problem.seed)
    scorer = metrics.inner_scorer(problem.metric)
    if v.search == "grid" and supports_path(problem.pipeline, problem.grid, problem.task, np.unique(problem.y).size):
        search = RidgePathSearch(problem.pipeline, problem.grid["model__alpha"], inner, problem.metric, problem.task)
    elif v.search == "random" and len(ParameterGrid(problem.grid)) > v.n_iter:
        search = RandomizedSearchCV(clone(problem.pipeline), problem.grid, n_iter=v.n_iter, scoring=scorer,
                                    cv=inner, random_state=problem.seed, error_score="raise")
    else:
        search = GridSearchCV(clone(problem.pipeline), problem.grid, scoring=scorer, cv=inner, error_score="raise")
    return search, groups if grouped else None


def _decision_kind(model, task: str) -> str | None:
    """``probability`` or ``decision`` for two-class models, None otherwise."""
    if task != "classification" or len(model.classes_) != 2:
        return None
    return "probability" if hasattr(model, "predict_proba") else "decision"


def _continuous(model, X: np.ndarray, task: str) -> np.ndarray | None:
    """Positive-class probability (or decision value) for two classes; None otherwise."""
    kind = _decision_kind(model, task)
    if kind is None:
        return None
    return model.predict_proba(X)[:, 1] if kind == "probability" else model.decision_function(X)


def _fold(problem: Problem, y: np.ndarray, train: np.ndarray, test: np.ndarray, explain: bool) -> FoldResult:
    groups = None if problem.groups is None else problem.groups[train]
    if problem.grid:
        search, inner_groups = _search(problem, groups)
        search.fit(problem.X[train], y[train], groups=inner_groups)
        model, best = search.best_estimator_, dict(sorted(search.best_params_.items()))
    else:
        model, best = clone(problem.pipeline).fit(problem.X[train], y[train]), {}
    X_test = problem.X[test]
    weights, kind = None, None
    if explain:
        weights = linear_weights(model, problem.n_features)
        kind = None if weights is None else "coefficient"
        if weights is None and len(test) > 1:
            rng = np.random.default_rng([problem.seed, int(test[0])])
            score = lambda X: metrics.score(problem.metric, y[test], model.predict(X), _continuous(model, X, problem.task))  # noqa: E731
            weights, kind = permutation_importance(score, X_test, problem.n_features, rng), "permutation_importance"
    return FoldResult(test, model.predict(X_test), _continuous(model, X_test, problem.task),
                      _decision_kind(model, problem.task), best, weights, kind)


def nested_cv(problem: Problem, y: np.ndarray | None = None, *, explain: bool = True, n_jobs: int = 1) -> CVResult:
    """Run the nested cross-validation (on ``y``, default the problem's target).

    Folds run in parallel over ``n_jobs`` processes; results do not depend on it.
    """
    y = problem.y if y is None else y
    if problem.splits is not None:
        splits = list(problem.splits)
    else:
        outer = _splitter(problem.validation.outer, problem.task, problem.groups is not None, problem.seed)
        splits = list(outer.split(problem.X, y, problem.groups))
    folds = Parallel(n_jobs=n_jobs)(delayed(_fold)(problem, y, train, test, explain) for train, test in splits)
    n = len(y)
    fold_of, predicted = np.zeros(n, dtype=int), np.zeros(n, dtype=y.dtype)
    decision = np.zeros(n) if folds[0].decision is not None else None
    for index, fold in enumerate(folds):
        fold_of[fold.test], predicted[fold.test] = index, fold.predicted
        if decision is not None:
            decision[fold.test] = fold.decision
    if problem.validation.outer == "loo":
        fold_scores = []
        statistic = metrics.score(problem.metric, y, predicted, decision)
    else:
        fold_scores = [metrics.score(problem.metric, y[f.test], f.predicted, f.decision) for f in folds]
        statistic = float(np.nanmean(fold_scores))
    return CVResult(folds, fold_of, predicted, decision, fold_scores, statistic)


def _permuted(y: np.ndarray, groups: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """``y`` shuffled (within each group when grouped)."""
    if groups is None:
        return rng.permutation(y)
    shuffled = y.copy()
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        shuffled[rows] = y[rng.permutation(rows)]
    return shuffled


def _null_statistic(problem: Problem, index: int) -> float:
    rng = np.random.default_rng([problem.seed, index])
    return nested_cv(problem, _permuted(problem.y, problem.groups, rng), explain=False).statistic


def permutation_null(problem: Problem, n_jobs: int = 1) -> np.ndarray:
    """The outer statistic of the whole nested CV on each of ``validation.permutations`` shuffled targets.

    Permutation ``i`` shuffles with a generator seeded by ``(seed, i)``, so
    the null does not depend on ``n_jobs``.
    """
    count = problem.validation.permutations
    return np.array(Parallel(n_jobs=n_jobs)(delayed(_null_statistic)(problem, i) for i in range(count)), dtype=float)


def permutation_p(observed: float, null: np.ndarray) -> float | None:
    """``(1 + #{null >= observed}) / (1 + n)``, None without permutations."""
    return None if null.size == 0 else float((1 + np.sum(null >= observed)) / (1 + null.size))


def null_summary(null: np.ndarray) -> dict[str, Any] | None:
    """Size, mean, standard deviation and 5/50/95th percentiles of the null, None without permutations."""
    if null.size == 0:
        return None
    low, median, high = np.percentile(null, [5, 50, 95])
    return {"n": int(null.size), "mean": float(null.mean()), "std": float(null.std()),
            "p5": float(low), "p50": float(median), "p95": float(high)}


def bootstrap_ci(problem: Problem, cv: CVResult, n_boot: int) -> list[float] | None:
    """Percentile 95% interval of the metric over participants resampled with replacement."""
    if n_boot == 0:
        return None
    rng = np.random.default_rng([problem.seed, 2**31])
    n = len(problem.y)
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        decision = None if cv.decision is None else cv.decision[rows]
        values.append(metrics.score(problem.metric, problem.y[rows], cv.predicted[rows], decision))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return [float(low), float(high)]

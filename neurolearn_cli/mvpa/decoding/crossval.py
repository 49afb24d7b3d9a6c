"""Cross-validate a decoder over contiguous folds of blocks, and test it with labels shuffled between blocks.

Samples estimated from one run are not independent: neighbouring blocks'
regressors overlap (the HRF lasts ~20 s) and share slow noise, so their
estimates correlate. With the class order fixed by the design, training on
the neighbours of a test block leaks the labels (a pure-noise run of a
periodic design then "decodes" far above chance). So the folds are
contiguous stretches of whole blocks (or whole runs), training samples
closer than ``validation.buffer`` seconds to the test stretch are left out,
each test fold holds every class and is scored alone, and the folds' scores
are averaged. The permutation test shuffles the labels between the blocks of
each fold, keeping those that leave every fold trainable and testable;
when these are no more than the permutations asked for, all of them are
scored (an exact test).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from neurolearn_cli.errors import SpecError
from neurolearn_cli.mvpa import metrics
from neurolearn_cli.mvpa.decoding.spec import DecodingSpec
from neurolearn_cli.mvpa.models import build_model
from neurolearn_cli.mvpa.spec import ValidationSpec
from neurolearn_cli.mvpa.validation import Problem, nested_cv


def build_decoder(spec: DecodingSpec, device: str) -> tuple[Pipeline, dict[str, list[Any]]]:
    """The per-fold pipeline (standardize, select, classify) and its search grid."""
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if spec.selection is not None:
        if spec.selection.method == "anova":
            steps.append(("select", SelectPercentile(f_classif, percentile=spec.selection.percentile)))
        else:
            components = spec.selection.n_components
            steps.append(("select", PCA(n_components=int(components) if components >= 1 else components,
                                        svd_solver="full", random_state=spec.seed)))
    model, grid = build_model(spec.model.name, "classification", spec.model.params, spec.model.grid, spec.seed, device)
    steps.append(("model", model))
    return Pipeline(steps), {f"model__{k}": v for k, v in grid.items()}


@dataclass(frozen=True)
class SampleTimes:
    """Per decoded sample: its run, block, onset and end (seconds)."""

    run: np.ndarray
    block: np.ndarray
    onset: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class FoldPlan:
    """The outer folds: (train, test) index pairs, each sample's fold, and a readable name."""

    splits: tuple[tuple[np.ndarray, np.ndarray], ...]
    fold_of: np.ndarray
    scheme: str


def _chunks(times: SampleTimes, k: int) -> np.ndarray:
    """Fold number of each sample: ``k`` contiguous stretches of blocks, in time order."""
    first: dict[int, tuple[int, float]] = {}  # block -> (run, onset) of its first sample
    for run, block, onset in zip(times.run, times.block, times.onset, strict=True):
        first[block] = min(first.get(block, (run, onset)), (run, onset))
    ordered = sorted(first, key=lambda b: first[b])
    fold_of_block = {b: i for i, part in enumerate(np.array_split(np.array(ordered), k)) for b in part}
    return np.array([fold_of_block[b] for b in times.block])


def _training(times: SampleTimes, test: np.ndarray, buffer: float) -> np.ndarray:
    """Samples outside ``test`` and, in the test's runs, more than ``buffer`` s from every test sample."""
    keep = ~test
    for run in np.unique(times.run[test]):
        in_run = times.run == run
        start, stop = times.onset[test & in_run].min(), times.end[test & in_run].max()
        near = in_run & (times.end > start - buffer) & (times.onset < stop + buffer)
        keep &= ~near
    return np.flatnonzero(keep)


def _splits(times: SampleTimes, fold_of: np.ndarray, buffer: float) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    return tuple((_training(times, fold_of == f, buffer), np.flatnonzero(fold_of == f)) for f in np.unique(fold_of))


def _all_classes(y: np.ndarray, splits: tuple[tuple[np.ndarray, np.ndarray], ...], n_classes: int) -> bool:
    return all(np.unique(y[part]).size == n_classes for split in splits for part in split)


def plan_folds(spec: DecodingSpec, y: np.ndarray, times: SampleTimes, classes: list[str]) -> FoldPlan:
    """Leave one run out, or ``validation.folds`` contiguous stretches of blocks with a buffer.

    ``folds: auto`` takes the most folds (at most 5) whose training and test
    parts all hold every class.

    Raises
    ------
    SpecError
        When no such folds exist (naming the ``validation`` field).
    """
    n_runs = np.unique(times.run).size
    by_run = spec.validation.cv == "run" or (spec.validation.cv == "auto" and n_runs > 1)
    if by_run:
        if n_runs < 2:
            raise SpecError(None, "validation.cv", "leave-one-run-out needs at least two runs")
        splits = _splits(times, times.run, 0.0)
        if not _all_classes(y, splits, len(classes)):
            raise SpecError(None, "validation.cv", "some run lacks a class: leave-one-run-out cannot score it; use cv: block")
        return FoldPlan(splits, times.run.copy(), "leave-one-run-out")
    n_blocks = np.unique(times.block).size
    candidates = range(min(5, n_blocks), 1, -1) if spec.validation.folds == "auto" else [spec.validation.folds]
    for k in candidates:
        fold_of = _chunks(times, k)
        splits = _splits(times, fold_of, spec.validation.buffer)
        if k <= n_blocks and _all_classes(y, splits, len(classes)):
            return FoldPlan(splits, fold_of, f"{k} contiguous folds of blocks, {spec.validation.buffer:g} s buffer")
    wanted = "any number of" if spec.validation.folds == "auto" else f"{spec.validation.folds}"
    raise SpecError(None, "validation.folds", f"{wanted} contiguous folds of the {n_blocks} blocks leave some fold "
                     f"(training or test, after the {spec.validation.buffer:g} s buffer) without a class")


def decoding_problem(spec: DecodingSpec, X: np.ndarray, y: np.ndarray, blocks: np.ndarray, plan: FoldPlan,
                     n_classes: int, pipeline: Pipeline, grid: dict[str, list[Any]]) -> Problem:
    """The cross-validation problem on the plan's folds (inner folds, if any, grouped by block)."""
    metric = metrics.choose_metric(spec.validation.metric, "classification", n_classes)
    problem_with_metric = metrics.check_metric(metric, "classification", n_classes)
    if problem_with_metric:
        raise SpecError(None, "validation.metric", problem_with_metric)
    if grid:
        for train, _ in plan.splits:
            fewest = min(np.unique(blocks[train][y[train] == code]).size for code in range(n_classes))
            if fewest < spec.validation.inner:
                raise SpecError(None, "validation.inner", f"{spec.validation.inner} inner folds for the model grid, but a "
                                 f"training part holds {fewest} block(s) of a class")
    validation = ValidationSpec(outer=max(2, len(plan.splits)), inner=spec.validation.inner, group_by="block",
                                metric=metric, permutations=spec.validation.permutations, bootstrap=0)
    return Problem(X, y, blocks, "classification", metric, X.shape[1], pipeline, grid, validation, spec.seed,
                   plan.splits)


def _distinct_orders(labels: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
    """Every distinct ordering of a multiset of labels, each once."""
    if not labels:
        yield ()
        return
    for value in sorted(set(labels)):
        rest = list(labels)
        rest.remove(value)
        for tail in _distinct_orders(tuple(rest)):
            yield (value, *tail)


def _multinomial(labels: list[int]) -> int:
    count = math.factorial(len(labels))
    for repeats in Counter(labels).values():
        count //= math.factorial(repeats)
    return count


def _block_labels(y: np.ndarray, blocks: np.ndarray, fold_of: np.ndarray) -> list[tuple[np.ndarray, list[int]]]:
    """Per fold: its blocks and their labels (a block holds one class)."""
    folds = []
    for fold in np.unique(fold_of):
        fold_blocks = np.unique(blocks[fold_of == fold])
        labels = []
        for block in fold_blocks:
            values = np.unique(y[blocks == block])
            if values.size != 1:
                raise SpecError(None, "samples", f"block {block} holds several classes: labels cannot be shuffled between blocks")
            labels.append(int(values[0]))
        folds.append((fold_blocks, labels))
    return folds


def block_shuffles(y: np.ndarray, blocks: np.ndarray, plan: FoldPlan, count: int, seed: int) -> list[np.ndarray]:
    """Label vectors with the blocks' labels shuffled within each fold.

    Only shuffles that leave every class in every training and test part
    count (the others cannot be cross-validated). When those number at most
    ``count`` (the true labelling excluded), all of them; otherwise
    ``count`` random ones, the ``i``-th attempt drawn from a generator
    seeded by ``(seed, i)``.
    """
    folds = _block_labels(y, blocks, plan.fold_of)
    n_classes = np.unique(y).size

    def relabel(orders: tuple[tuple[int, ...], ...]) -> np.ndarray | None:
        shuffled = y.copy()
        for (fold_blocks, _), order in zip(folds, orders, strict=True):
            for block, label in zip(fold_blocks, order, strict=True):
                shuffled[blocks == block] = label
        return shuffled if _all_classes(shuffled, plan.splits, n_classes) else None

    if math.prod(_multinomial(labels) for _, labels in folds) - 1 <= count:
        truth = tuple(tuple(labels) for _, labels in folds)
        every = product(*(_distinct_orders(tuple(labels)) for _, labels in folds))
        shuffles = (relabel(orders) for orders in every if orders != truth)
        return [s for s in shuffles if s is not None]
    found: list[np.ndarray] = []
    for attempt in range(100 * count):
        if len(found) == count:
            break
        rng = np.random.default_rng([seed, attempt])
        shuffled = relabel(tuple(tuple(rng.permutation(labels)) for _, labels in folds))
        if shuffled is not None:
            found.append(shuffled)
    return found


def permutation_null(problem: Problem, shuffles: list[np.ndarray], n_jobs: int = 1) -> np.ndarray:
    """The cross-validated score on each shuffled label vector."""
    jobs = (delayed(nested_cv)(problem, y, explain=False) for y in shuffles)
    return np.array([cv.statistic for cv in Parallel(n_jobs=n_jobs)(jobs)], dtype=float)

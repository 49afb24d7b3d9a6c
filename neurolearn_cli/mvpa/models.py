"""The model registry: each name gives an estimator for the task and its default grid.

Grids are in the estimator's own parameter names; the pipeline prefixes them.
Torch models train on the run's device (torch is imported only when one is
built, so scikit-learn analyses and their worker processes never load it);
every model with randomness gets the run's seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, Ridge, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.svm import SVR, LinearSVC, LinearSVR

from neurolearn_cli.errors import SpecError

_C = [float(c) for c in np.logspace(-3, 2, 6)]
_ALPHA = [float(a) for a in np.logspace(-2, 4, 7)]


def _torch_model(name: str, **params: Any) -> BaseEstimator:
    from neurolearn_cli.mvpa import torch_models

    return getattr(torch_models, name)(**params)


@dataclass(frozen=True)
class ModelEntry:
    """How to build one named model for each task it supports."""

    build: dict[str, Callable[[int, str], BaseEstimator]]
    grid: dict[str, dict[str, list[Any]]]


REGISTRY: dict[str, ModelEntry] = {
    "svm": ModelEntry(
        {"classification": lambda seed, dev: LinearSVC(random_state=seed, max_iter=10000),
         "regression": lambda seed, dev: LinearSVR(random_state=seed, max_iter=10000)},
        {"classification": {"C": _C}, "regression": {"C": _C}},
    ),
    "logistic": ModelEntry(
        {"classification": lambda seed, dev: LogisticRegression(solver="liblinear", random_state=seed)},
        {"classification": {"C": _C, "l1_ratio": [0.0, 1.0]}},
    ),
    "ridge": ModelEntry(
        {"classification": lambda seed, dev: RidgeClassifier(), "regression": lambda seed, dev: Ridge()},
        {"classification": {"alpha": _ALPHA}, "regression": {"alpha": _ALPHA}},
    ),
    "lasso": ModelEntry(
        {"regression": lambda seed, dev: Lasso(max_iter=10000, random_state=seed)},
        {"regression": {"alpha": [float(a) for a in np.logspace(-3, 1, 5)]}},
    ),
    "elasticnet": ModelEntry(
        {"regression": lambda seed, dev: ElasticNet(max_iter=10000, random_state=seed)},
        {"regression": {"alpha": [float(a) for a in np.logspace(-3, 1, 5)], "l1_ratio": [0.1, 0.5, 0.9]}},
    ),
    "svr": ModelEntry(
        {"regression": lambda seed, dev: SVR(kernel="rbf")},
        {"regression": {"C": [0.1, 1.0, 10.0], "gamma": ["scale", 0.01, 0.1], "epsilon": [0.1, 1.0]}},
    ),
    "rf": ModelEntry(
        {"classification": lambda seed, dev: RandomForestClassifier(n_estimators=200, random_state=seed),
         "regression": lambda seed, dev: RandomForestRegressor(n_estimators=200, random_state=seed)},
        {"classification": {"max_features": ["sqrt", 0.3], "min_samples_leaf": [1, 5]},
         "regression": {"max_features": ["sqrt", 0.3], "min_samples_leaf": [1, 5]}},
    ),
    "knn": ModelEntry(
        {"classification": lambda seed, dev: KNeighborsClassifier(), "regression": lambda seed, dev: KNeighborsRegressor()},
        {"classification": {"n_neighbors": [3, 5, 9, 15]}, "regression": {"n_neighbors": [3, 5, 9, 15]}},
    ),
    "lda": ModelEntry(
        {"classification": lambda seed, dev: LinearDiscriminantAnalysis(solver="lsqr")},
        {"classification": {"shrinkage": ["auto", 0.1, 0.5, 0.9]}},
    ),
    "torch-linear": ModelEntry(
        {"classification": lambda seed, dev: _torch_model("TorchLogistic", random_state=seed, device=dev),
         "regression": lambda seed, dev: _torch_model("TorchRidge", device=dev)},
        {"classification": {"alpha": _ALPHA[:5]}, "regression": {"alpha": _ALPHA}},
    ),
    "mlp": ModelEntry(
        {"classification": lambda seed, dev: _torch_model("TorchMLPClassifier", random_state=seed, device=dev),
         "regression": lambda seed, dev: _torch_model("TorchMLPRegressor", device=dev, random_state=seed)},
        {"classification": {"alpha": [0.1, 1.0, 10.0], "hidden_units": [16, 64]},
         "regression": {"alpha": [0.1, 1.0, 10.0], "hidden_units": [16, 64]}},
    ),
}


def build_model(name: str, task: str, params: dict[str, Any], grid: dict[str, list[Any]] | None,
                seed: int, device: str) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    """The estimator ``name`` for ``task`` with ``params`` set, and its search grid.

    ``grid`` replaces the default grid when given; parameters fixed by
    ``params`` are taken out of the grid.

    Raises
    ------
    SpecError
        When the model does not do ``task`` or a parameter is unknown
        (naming ``model.name``, ``model.params`` or ``model.grid``).
    """
    entry = REGISTRY[name]
    if task not in entry.build:
        raise SpecError(None, "model.name", f"'{name}' does not do {task}; choose one of "
                         + ", ".join(n for n, e in REGISTRY.items() if task in e.build))
    estimator = entry.build[task](seed, device)
    grid = entry.grid[task] if grid is None else grid
    for field, names in (("model.params", params), ("model.grid", grid)):
        unknown = sorted(set(names) - set(estimator.get_params()))
        if unknown:
            raise SpecError(None, field, f"'{name}' has no parameter {', '.join(unknown)}")
    return estimator.set_params(**params), {k: v for k, v in grid.items() if k not in params}

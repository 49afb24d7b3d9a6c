"""A fast inner search over the ridge penalty: one eigendecomposition per inner fold.

For ridge, the predictions of every ``alpha`` on a validation fold follow
from one eigendecomposition of the training fold's centred Gram matrix
(kernel form ``K = Xc Xc'`` when there are fewer samples than features,
``Xc' Xc`` otherwise)::

    w(alpha) = Xc' U diag(1 / (lambda + alpha)) U' yc

so a grid of alphas costs about one ridge fit instead of one per alpha. The
steps before the model are still fitted on each inner training fold, so the
search is the same as ``GridSearchCV`` over ``model__alpha`` (same folds,
same scores, same choice), only faster.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import Ridge, RidgeClassifier
from sklearn.pipeline import Pipeline

from neurolearn_cli.mvpa import metrics


def supports_path(pipeline: Pipeline, grid: dict[str, list], task: str, n_classes: int) -> bool:
    """Whether the search is over ``model__alpha`` only, of a ridge model (binary if classifying)."""
    model = pipeline.steps[-1][1]
    plain = isinstance(model, (Ridge, RidgeClassifier)) and model.fit_intercept
    return plain and set(grid) == {"model__alpha"} and (task == "regression" or n_classes == 2)


def ridge_path_predictions(train: np.ndarray, target: np.ndarray, test: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Ridge predictions on ``test`` for each alpha (shape ``(n_alphas, n_test)``), with an intercept."""
    mean_x, mean_y = train.mean(axis=0), target.mean()
    xc, yc, tc = train - mean_x, target - mean_y, test - mean_x
    if xc.shape[0] <= xc.shape[1]:
        eigenvalues, vectors = np.linalg.eigh(xc @ xc.T)
        left, right = tc @ xc.T @ vectors, vectors.T @ yc
    else:
        eigenvalues, vectors = np.linalg.eigh(xc.T @ xc)
        left, right = tc @ vectors, vectors.T @ (xc.T @ yc)
    eigenvalues = np.maximum(eigenvalues, 0.0)
    return (left[None, :, :] * (right / (eigenvalues[None, :] + alphas[:, None]))[:, None, :]).sum(axis=2) + mean_y


class RidgePathSearch:
    """Grid search over ``model__alpha`` of a ridge pipeline, by the eigendecomposition path.

    Mirrors the part of ``GridSearchCV`` the nested CV uses: ``fit(X, y,
    groups)`` then ``best_params_`` and ``best_estimator_`` (refitted on all of ``X``).

    Parameters
    ----------
    pipeline : Pipeline
        Preprocessing steps ending in a ridge model.
    alphas : list of float
        The penalties to try.
    cv : splitter
        The inner cross-validation.
    metric : str
        What to maximise (a key of :data:`metrics.METRICS`).
    task : str
        ``regression``, or ``classification`` (two classes, coded -1/+1 as
        ``RidgeClassifier`` does).
    """

    def __init__(self, pipeline: Pipeline, alphas: list[float], cv, metric: str, task: str) -> None:
        self.pipeline = pipeline
        self.alphas = alphas
        self.cv = cv
        self.metric = metric
        self.task = task

    def _split_scores(self, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Score of each alpha on one inner split (preprocessing fitted on its training part)."""
        inputs, held_out = X[train], X[test]
        if len(self.pipeline.steps) > 1:
            prefix = clone(Pipeline(self.pipeline.steps[:-1]))
            inputs, held_out = prefix.fit_transform(inputs, y[train]), prefix.transform(held_out)
        alphas = np.asarray(self.alphas, dtype=float)
        if self.task == "regression":
            paths = ridge_path_predictions(inputs, y[train].astype(float), held_out, alphas)
            return np.array([metrics.score(self.metric, y[test], p, None) for p in paths])
        classes = np.unique(y[train])
        paths = ridge_path_predictions(inputs, np.where(y[train] == classes[1], 1.0, -1.0), held_out, alphas)
        return np.array([metrics.score(self.metric, y[test], np.where(p > 0, classes[1], classes[0]), p) for p in paths])

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> RidgePathSearch:
        """Score every alpha on the inner folds, keep the best mean, refit on all of ``X``."""
        scores = np.array([self._split_scores(X, y, train, test) for train, test in self.cv.split(X, y, groups)])
        best = int(np.argmax(np.nanmean(scores, axis=0)))
        self.cv_scores_ = scores
        self.best_params_ = {"model__alpha": self.alphas[best]}
        self.best_estimator_ = clone(self.pipeline).set_params(**self.best_params_).fit(X, y)
        return self

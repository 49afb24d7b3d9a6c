"""Feature weights of a fitted pipeline, in the space of its input features.

Linear models give coefficients, mapped back through the feature selection
(zeros for features ANOVA dropped; PCA's components) and the non-zero filter
to one weight per input feature. The weights are those of the standardized
features (the scaler is not undone), so they compare across features. Other
models get the permutation importance of each feature on held-out data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectorMixin
from sklearn.pipeline import Pipeline


def _coefficients(model) -> np.ndarray | None:
    coef = getattr(model, "coef_", None)
    if coef is None:
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype=float))
    return coef[0] if coef.shape[0] == 1 else np.sqrt((coef**2).mean(axis=0))


def _back(step, weights: np.ndarray) -> np.ndarray:
    """Map weights on a step's output back to its input features."""
    if isinstance(step, Pipeline):
        for _, inner in reversed(step.steps):
            weights = _back(inner, weights)
        return weights
    if isinstance(step, ColumnTransformer):
        return _back(step.named_transformers_["features"], weights)
    if isinstance(step, SelectorMixin):
        full = np.zeros(step.get_support().size)
        full[step.get_support()] = weights
        return full
    if isinstance(step, PCA):
        return step.components_.T @ weights
    return weights


def linear_weights(pipeline: Pipeline, n_features: int) -> np.ndarray | None:
    """One weight per input feature for a linear final model, else None.

    Multi-class coefficients are summarised by their root mean square over classes.
    """
    weights = _coefficients(pipeline.steps[-1][1])
    if weights is None:
        return None
    for _, step in reversed(pipeline.steps[:-1]):
        weights = _back(step, weights)
    return weights[:n_features]


def permutation_importance(
    score: Callable[[np.ndarray], float], X: np.ndarray, n_features: int, rng: np.random.Generator, n_repeats: int = 3
) -> np.ndarray:
    """Mean drop of ``score(X)`` when each feature column is shuffled (side columns are left alone)."""
    base = score(X)
    drops = np.zeros(n_features)
    for j in range(n_features):
        shuffled = X.copy()
        for _ in range(n_repeats):
            shuffled[:, j] = rng.permutation(X[:, j])
            drops[j] += base - score(shuffled)
    return drops / n_repeats


def largest_weights(weights: pd.DataFrame, top: int = 20) -> pd.DataFrame:
    """The ``top`` rows of a weights table by magnitude, leaving out exact zeros (features no fold kept)."""
    kept = weights[weights["weight"] != 0]
    return kept.reindex(kept["weight"].abs().sort_values(ascending=False).index).head(top)

"""Per-fold transformers on the feature columns: confound regression and a non-zero filter."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data


class ConfoundRegressor(TransformerMixin, BaseEstimator):
    """Remove the linear effect of confounds (e.g. age, sex) from every feature.

    ``X`` holds the features followed by ``n_confounds`` confound columns.
    ``fit`` regresses each feature on the confounds (with an intercept) in the
    training fold; ``transform`` subtracts the fitted confound effect,
    ``(c - mean_c) @ coef``, and returns the features only.

    Parameters
    ----------
    n_confounds : int
        Number of trailing confound columns.
    """

    def __init__(self, n_confounds: int = 1) -> None:
        self.n_confounds = n_confounds

    def fit(self, X, y=None) -> ConfoundRegressor:
        X = validate_data(self, X)
        if not 0 < self.n_confounds < X.shape[1]:
            raise ValueError(f"X has n_features = {X.shape[1]}: needs features and n_confounds = {self.n_confounds} columns")
        features, confounds = X[:, : -self.n_confounds], X[:, -self.n_confounds :]
        self.confound_mean_ = confounds.mean(axis=0)
        centred = confounds - self.confound_mean_
        self.coef_ = np.linalg.lstsq(centred, features - features.mean(axis=0), rcond=None)[0]
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        features, confounds = X[:, : -self.n_confounds], X[:, -self.n_confounds :]
        return features - (confounds - self.confound_mean_) @ self.coef_


class NonzeroFilter(SelectorMixin, BaseEstimator):
    """Keep the features that are non-zero in more than ``min_fraction`` of the training rows.

    Parameters
    ----------
    min_fraction : float
        Fraction of rows (0-1) a feature must be non-zero in.
    """

    def __init__(self, min_fraction: float = 0.1) -> None:
        self.min_fraction = min_fraction

    def fit(self, X, y=None) -> NonzeroFilter:
        X = validate_data(self, X)
        self.nonzero_fraction_ = np.mean(X != 0, axis=0)
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        return self.nonzero_fraction_ > self.min_fraction

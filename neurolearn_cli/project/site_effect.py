"""How much a feature table tells the site: cross-validated site-classification AUC, raw and after ComBat.

A site effect is measured as the ROC AUC (one site against the rest,
averaged over sites) of a logistic regression predicting each participant's
site from the features, out of fold (stratified by site). 0.5 means the
features carry no site information. "After ComBat" runs the same
cross-validation with :class:`~neurolearn_cli.mvpa.harmonization.ComBat`
fitted on each training fold only, preserving the given covariates, as the
pooled analyses do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from neurolearn_cli.mvpa.harmonization import ComBat

MAX_FOLDS = 5


@dataclass(frozen=True)
class SiteEffect:
    """Site-classification AUC before and after ComBat (None when there are too few participants per site)."""

    raw: float | None
    harmonized: float | None
    folds: int


def _auc(pipeline: Pipeline, X: np.ndarray, site: np.ndarray, folds: int, seed: int) -> float:
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probability = cross_val_predict(pipeline, X, site, cv=cv, method="predict_proba")
    if probability.shape[1] == 2:
        return float(roc_auc_score(site, probability[:, 1]))
    return float(roc_auc_score(site, probability, multi_class="ovr", average="macro"))


def _features_only(X: np.ndarray, n_covariates: int) -> np.ndarray:
    """ComBat's output less the covariates it passes on after the features."""
    return X[:, : X.shape[1] - n_covariates]


def site_effect(features: np.ndarray, site: np.ndarray, covariates: np.ndarray, *, seed: int = 0) -> SiteEffect:
    """The site-classification AUC of ``features`` (rows: participants; ``site``: integer codes).

    ``covariates`` (one column per covariate, possibly none) are what ComBat
    preserves, e.g. age and group.
    """
    counts = np.bincount(site) if site.size else np.zeros(0, dtype=int)
    folds = int(min(MAX_FOLDS, counts[counts > 0].min())) if site.size else 0
    if np.count_nonzero(counts) < 2 or folds < 2:
        return SiteEffect(None, None, folds)
    model = LogisticRegression(max_iter=2000)
    raw = Pipeline([("scale", StandardScaler()), ("model", model)])
    keep = FunctionTransformer(_features_only, kw_args={"n_covariates": covariates.shape[1]})
    harmonized = Pipeline([("combat", ComBat(n_covariates=covariates.shape[1])), ("features", keep),
                           ("scale", StandardScaler()), ("model", model)])
    side = np.hstack([features, covariates, site[:, None].astype(float)])
    return SiteEffect(_auc(raw, features, site, folds, seed), _auc(harmonized, side, site, folds, seed), folds)

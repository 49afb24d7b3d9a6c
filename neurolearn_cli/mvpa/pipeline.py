"""Build the per-fold pipeline and its design matrix from the spec.

Everything learned from data (imputation, the non-zero filter, ComBat,
confound regression, scaling, feature selection, the model) is a step of one
scikit-learn Pipeline, so the cross-validation refits all of it on each
training fold and nothing is learned from test data.

The pipeline's input is the features followed by "side" columns that the
early steps consume: the confounds (when confounds are given) and the integer
site code (when ComBat is on).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectPercentile, f_classif, f_regression
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from neurolearn_cli.mvpa.confounds import ConfoundRegressor, NonzeroFilter
from neurolearn_cli.mvpa.dataset import AnalysisData
from neurolearn_cli.mvpa.harmonization import ComBat
from neurolearn_cli.mvpa.models import build_model
from neurolearn_cli.mvpa.spec import AnalysisSpec


def design_matrix(spec: AnalysisSpec, data: AnalysisData) -> np.ndarray:
    """Features, then confounds, then the site code (when ComBat is on)."""
    blocks = [data.features]
    if spec.preprocessing.confounds:
        blocks.append(data.confounds)
    if spec.preprocessing.harmonize == "combat":
        blocks.append(data.site[:, None].astype(float))
    return np.hstack(blocks)


def _feature_steps(spec: AnalysisSpec) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []
    if spec.features.missing == "mean":
        steps.append(("impute", SimpleImputer(strategy="mean")))
    if spec.preprocessing.nonzero_fraction is not None:
        steps.append(("nonzero", NonzeroFilter(spec.preprocessing.nonzero_fraction)))
    return steps


def build_pipeline(spec: AnalysisSpec, data: AnalysisData, device: str) -> tuple[Pipeline, dict[str, list[Any]]]:
    """The pipeline for ``spec`` and the search space (model grid, prefixed ``model__``)."""
    prep = spec.preprocessing
    n_features, n_confounds = data.features.shape[1], data.confounds.shape[1] if prep.confounds else 0
    n_side = n_confounds + (prep.harmonize == "combat")
    steps: list[tuple[str, Any]] = []
    early = _feature_steps(spec)
    if early and n_side:
        columns = ColumnTransformer(
            [("features", Pipeline(early), np.arange(n_features)),
             ("side", "passthrough", np.arange(n_features, n_features + n_side))])
        steps.append(("columns", columns))
    else:
        steps += early
    if prep.harmonize == "combat":
        steps.append(("combat", ComBat(n_covariates=n_confounds)))
    if n_confounds:
        steps.append(("confounds", ConfoundRegressor(n_confounds=n_confounds)))
    if prep.scale:
        steps.append(("scale", StandardScaler()))
    if prep.selection is not None:
        if prep.selection.method == "anova":
            score = f_classif if data.task == "classification" else f_regression
            steps.append(("select", SelectPercentile(score, percentile=prep.selection.percentile)))
        else:
            components = prep.selection.n_components
            steps.append(("select", PCA(n_components=int(components) if components >= 1 else components,
                                        svd_solver="full", random_state=spec.seed)))
    model, grid = build_model(spec.model.name, data.task, spec.model.params, spec.model.grid, spec.seed, device)
    steps.append(("model", model))
    return Pipeline(steps), {f"model__{k}": v for k, v in grid.items()}

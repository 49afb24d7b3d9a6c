"""Custom estimators: scikit-learn conventions, ComBat, confound regression and the ridge path against known truth."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurolearn_cli.mvpa.confounds import ConfoundRegressor, NonzeroFilter
from neurolearn_cli.mvpa.harmonization import ComBat
from neurolearn_cli.mvpa.metrics import inner_scorer
from neurolearn_cli.mvpa.ridge_path import RidgePathSearch
from neurolearn_cli.mvpa.torch_models import (
    TorchLogistic,
    TorchMLPClassifier,
    TorchMLPRegressor,
    TorchRidge,
)


@parametrize_with_checks([
    ComBat(), ConfoundRegressor(), NonzeroFilter(min_fraction=0.0), TorchRidge(),
    TorchLogistic(max_iter=10, random_state=0),
])
def test_sklearn_conventions(estimator, check) -> None:
    check(estimator)


def _sites(n_per_site: int = 200, p: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ComBat's model: features = 2 * covariate + site shift + site scale * noise, 3 sites."""
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(3), n_per_site)
    covariate = rng.normal(size=site.size)
    noise = rng.normal(size=(site.size, p))
    shift, scale = np.array([0.0, 3.0, -2.0]), np.array([1.0, 2.0, 0.5])
    observed = 2.0 * covariate[:, None] + shift[site, None] + scale[site, None] * noise
    return np.column_stack([observed, covariate, site]), noise, site


def test_combat_removes_site_effects_and_keeps_covariate() -> None:
    X, noise, site = _sites()
    out = ComBat(n_covariates=1).fit(X).transform(X)
    features, covariate = out[:, :-1], out[:, -1]
    residual = features - 2.0 * covariate[:, None]
    means = np.array([residual[site == s].mean() for s in range(3)])
    sds = np.array([residual[site == s].std() for s in range(3)])
    before = X[:, :-2] - 2.0 * covariate[:, None]
    assert np.ptp([before[site == s].mean() for s in range(3)]) > 4.5
    assert np.ptp(means) < 0.1
    assert np.ptp(sds) < 0.1
    assert np.polyfit(covariate, features[:, 0], 1)[0] == pytest.approx(2.0, abs=0.15)
    assert np.corrcoef(residual[:, 0], noise[:, 0])[0, 1] > 0.99


def test_combat_leaves_unseen_site_alone(caplog: pytest.LogCaptureFixture) -> None:
    X, _, site = _sites()
    model = ComBat(n_covariates=1).fit(X[site < 2])
    with caplog.at_level(logging.WARNING, logger="neurolearn.mvpa"):
        out = model.transform(X[site == 2])
    np.testing.assert_array_equal(out, X[site == 2][:, :-1])
    assert "were not in the training fold" in caplog.text


def test_confound_regressor_removes_linear_effect() -> None:
    rng = np.random.default_rng(1)
    age = rng.uniform(20, 80, 300)
    features = 0.1 * age[:, None] + rng.normal(size=(300, 4))
    out = ConfoundRegressor(n_confounds=1).fit(np.column_stack([features, age])).transform(np.column_stack([features, age]))
    assert out.shape == (300, 4)
    assert np.max(np.abs([np.corrcoef(age, out[:, j])[0, 1] for j in range(4)])) < 1e-10


def test_torch_ridge_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    for n, p in ((40, 9), (12, 30)):
        X, y = rng.normal(size=(n, p)), rng.normal(size=n)
        ours, theirs = TorchRidge(alpha=2.5).fit(X, y), Ridge(alpha=2.5).fit(X, y)
        np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-8)
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-8)


def test_torch_logistic_matches_sklearn_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=80) > 0).astype(int)
    ours = TorchLogistic(alpha=1.0, random_state=0).fit(X, y)
    theirs = LogisticRegression(C=1.0, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-4)
    mlp = [TorchMLPClassifier(hidden_units=8, max_iter=30, random_state=5).fit(X, y).predict_proba(X) for _ in range(2)]
    np.testing.assert_array_equal(mlp[0], mlp[1])
    target = X[:, 0] ** 2
    regressor = TorchMLPRegressor(hidden_units=16, alpha=0.01, max_iter=200, random_state=0).fit(X, target)
    assert regressor.score(X, target) > 0.9


@pytest.mark.parametrize(("task", "metric", "shape"), [("regression", "pearson_r", (50, 120)), ("regression", "r2", (90, 20)),
                                                       ("classification", "roc_auc", (50, 120))])
def test_ridge_path_search_equals_grid_search(task: str, metric: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=shape)
    y = X[:, :3].sum(axis=1) + 2 * rng.normal(size=shape[0])
    model = Ridge() if task == "regression" else RidgeClassifier()
    if task == "classification":
        y = (y > 0).astype(int)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", model)])
    alphas = [float(a) for a in np.logspace(-2, 4, 9)]
    cv = KFold(4, shuffle=True, random_state=0)
    grid = GridSearchCV(pipeline, {"model__alpha": alphas}, scoring=inner_scorer(metric), cv=cv).fit(X, y)
    path = RidgePathSearch(pipeline, alphas, cv, metric, task).fit(X, y)
    np.testing.assert_allclose(path.cv_scores_.mean(axis=0), grid.cv_results_["mean_test_score"], atol=1e-10)
    assert path.best_params_ == grid.best_params_
    np.testing.assert_allclose(path.best_estimator_.predict(X), grid.best_estimator_.predict(X))

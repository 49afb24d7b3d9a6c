"""ComBat site harmonization as a scikit-learn transformer (fitted on training folds only).

Empirical-Bayes location/scale adjustment of Johnson, Li & Rabinovic (2007,
Biostatistics 8:118), as used for neuroimaging by Fortin et al. (2018,
NeuroImage 167:104) and neuroCombat. For feature ``g`` of sample ``j`` at
site ``i``::

    y_ijg = alpha_g + x_ij' beta_g + gamma_ig + delta_ig * eps_ijg

``alpha``, ``beta`` (covariates to preserve) and the pooled variance come from
least squares on the training data; the site shifts ``gamma`` and scales
``delta`` are shrunk towards their across-feature priors (normal for gamma,
inverse-gamma for delta) by iterating the posterior means; the adjusted data
are ``(z - gamma*) / sqrt(delta*)`` put back on the ``alpha + x'beta`` scale.

Column layout of ``X``: features, then ``n_covariates`` covariate columns,
then one column of integer site codes. ``transform`` returns the adjusted
features followed by the covariates (the site column is consumed).

A site seen in training with fewer than two samples, or not seen at all,
cannot be adjusted: its samples are passed through unharmonized, with a
logged warning (e.g. every test sample under leave-one-site-out).
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

LOGGER = logging.getLogger("neurolearn.mvpa")
_TINY = 1e-12


def _split(X: np.ndarray, n_covariates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = X[:, : -(n_covariates + 1)]
    covariates = X[:, -(n_covariates + 1) : -1]
    return features, covariates, X[:, -1].astype(np.int64)


def _inverse_gamma_prior(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Method-of-moments shape ``a`` and scale ``b`` of each site's variance prior."""
    mean, var = delta.mean(axis=1), np.maximum(delta.var(axis=1, ddof=1), _TINY)
    return (2 * var + mean**2) / var, (mean * var + mean**3) / var


def _posterior(z: list[np.ndarray], gamma_hat: np.ndarray, delta_hat: np.ndarray,
               tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Iterate the empirical-Bayes posterior means of gamma and delta, per site.

    Returns the shrunk estimates and the most iterations any site needed.
    """
    gamma_bar, tau2 = gamma_hat.mean(axis=1), np.maximum(gamma_hat.var(axis=1, ddof=1), _TINY)
    a_prior, b_prior = _inverse_gamma_prior(delta_hat)
    gamma_star, delta_star = gamma_hat.copy(), delta_hat.copy()
    most = 0
    for i, site in enumerate(z):
        n = site.shape[0]
        gamma, delta = gamma_hat[i], delta_hat[i]
        iterations = 0
        while iterations < max_iter:
            iterations += 1
            gamma_new = (n * tau2[i] * gamma_hat[i] + delta * gamma_bar[i]) / (n * tau2[i] + delta)
            sum2 = ((site - gamma_new) ** 2).sum(axis=0)
            delta_new = (0.5 * sum2 + b_prior[i]) / (n / 2.0 + a_prior[i] - 1.0)
            change = max(np.max(np.abs(gamma_new - gamma) / np.maximum(np.abs(gamma), _TINY)),
                         np.max(np.abs(delta_new - delta) / np.maximum(delta, _TINY)))
            gamma, delta = gamma_new, np.maximum(delta_new, _TINY)
            if change < tol:
                break
        gamma_star[i], delta_star[i] = gamma, delta
        most = max(most, iterations)
    return gamma_star, delta_star, most


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical-Bayes ComBat harmonization of site effects, preserving covariates.

    Parameters
    ----------
    n_covariates : int
        Number of covariate columns (before the last, site, column) whose
        effects are preserved.
    tol : float
        Relative change at which the empirical-Bayes iteration stops.
    max_iter : int
        Iteration cap of the empirical-Bayes loop.
    """

    def __init__(self, n_covariates: int = 0, tol: float = 1e-4, max_iter: int = 1000) -> None:
        self.n_covariates = n_covariates
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y=None) -> ComBat:
        X = validate_data(self, X)
        if X.shape[0] < 2:
            raise ValueError(f"ComBat needs several samples, got n_samples = {X.shape[0]}")
        if X.shape[1] < self.n_covariates + 2:
            raise ValueError(f"X has n_features = {X.shape[1]}: needs features, {self.n_covariates} covariate columns and a site column")
        features, covariates, site = _split(X, self.n_covariates)
        sites, counts = np.unique(site, return_counts=True)
        onehot = (site[:, None] == sites[None, :]).astype(float)
        design = np.hstack([onehot, covariates])
        beta = np.linalg.lstsq(design, features, rcond=None)[0]
        self.grand_mean_ = (counts / counts.sum()) @ beta[: len(sites)]
        self.beta_covariates_ = beta[len(sites) :]
        self.var_pooled_ = np.maximum(((features - design @ beta) ** 2).mean(axis=0), _TINY)
        z = self._standardize(features, covariates)
        fitted = sites[counts >= 2]
        if len(fitted) < len(sites):
            LOGGER.warning("ComBat: sites %s have one training sample and are not harmonized",
                           sites[counts < 2].tolist())
        by_site = [z[site == s] for s in fitted]
        gamma_hat = np.array([block.mean(axis=0) for block in by_site]).reshape(len(fitted), -1)
        delta_hat = np.array([np.maximum(block.var(axis=0, ddof=1), _TINY) for block in by_site]).reshape(len(fitted), -1)
        self.n_iter_ = 0
        if len(fitted) and features.shape[1] > 1:
            gamma_hat, delta_hat, self.n_iter_ = _posterior(by_site, gamma_hat, delta_hat, self.tol, self.max_iter)
        self.sites_, self.gamma_star_, self.delta_star_ = fitted, gamma_hat, delta_hat
        return self

    def _standardize(self, features: np.ndarray, covariates: np.ndarray) -> np.ndarray:
        return (features - self.grand_mean_ - covariates @ self.beta_covariates_) / np.sqrt(self.var_pooled_)

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        features, covariates, site = _split(X, self.n_covariates)
        z = self._standardize(features, covariates)
        adjusted = features.copy()
        for i, s in enumerate(self.sites_):
            rows = site == s
            adjusted[rows] = ((z[rows] - self.gamma_star_[i]) / np.sqrt(self.delta_star_[i])) * np.sqrt(
                self.var_pooled_) + self.grand_mean_ + covariates[rows] @ self.beta_covariates_
        unseen = sorted(set(site.tolist()) - set(self.sites_.tolist()))
        if unseen:
            LOGGER.warning("ComBat: sites %s were not in the training fold; their samples are not harmonized", unseen)
        return np.hstack([adjusted, covariates])

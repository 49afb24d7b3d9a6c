"""Torch models wrapped as scikit-learn estimators, trained on a chosen device.

- :class:`TorchRidge`: linear regression with an L2 penalty, solved in closed
  form on the device.
- :class:`TorchLogistic`: multinomial logistic regression (L2), full-batch L-BFGS.
- :class:`TorchMLPRegressor` / :class:`TorchMLPClassifier`: one hidden ReLU
  layer, weight decay ``alpha``, full-batch L-BFGS.

Training runs on ``device``; the fitted parameters are kept as numpy arrays
and prediction is a numpy forward pass, so a fitted model is picklable and
predicts the same on any machine. Initial weights come from a generator
seeded with ``random_state``: the same seed gives the same model.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


def _tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float64, device=torch.device(device))


def _init_layers(n_in: int, hidden: int, n_out: int, seed: int | None, device: str) -> list[torch.Tensor]:
    """Weights (Glorot-uniform) and zero biases of a linear model (``hidden=0``) or a one-hidden-layer MLP."""
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    sizes = [n_in, hidden, n_out] if hidden else [n_in, n_out]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weight = (torch.rand(fan_in, fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        params += [weight.to(device), torch.zeros(fan_out, dtype=torch.float64, device=device)]
    return [p.requires_grad_(True) for p in params]


def _forward(params: list, x):
    """Linear map, or ReLU hidden layer then linear map; works on tensors and numpy arrays."""
    out = x @ params[0] + params[1]
    if len(params) == 4:
        out = out * (out > 0)
        out = out @ params[2] + params[3]
    return out


def _train(params: list[torch.Tensor], loss_fn, alpha: float, max_iter: int) -> list[np.ndarray]:
    """Minimise ``loss_fn(params) + alpha/2 * ||weights||^2`` with full-batch L-BFGS."""
    optimizer = torch.optim.LBFGS(params, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        penalty = sum((w * w).sum() for w in params[0::2])
        loss = loss_fn(params) + 0.5 * alpha * penalty
        loss.backward()
        return loss

    optimizer.step(closure)
    return [p.detach().cpu().numpy() for p in params]


class TorchRidge(RegressorMixin, BaseEstimator):
    """Ridge regression solved on ``device``: ``(X'X + alpha I) w = X'y`` on centred data.

    Parameters
    ----------
    alpha : float
        L2 penalty.
    device : str
        Torch device to solve on (``cpu``, ``cuda``).
    """

    def __init__(self, alpha: float = 1.0, device: str = "cpu") -> None:
        self.alpha = alpha
        self.device = device

    def fit(self, X, y) -> TorchRidge:
        X, y = validate_data(self, X, y, y_numeric=True)
        x, t = _tensor(X, self.device), _tensor(y, self.device)
        x_mean, t_mean = x.mean(0), t.mean()
        xc = x - x_mean
        if xc.shape[0] < xc.shape[1]:
            gram = xc @ xc.T + self.alpha * torch.eye(xc.shape[0], dtype=xc.dtype, device=xc.device)
            coef = xc.T @ torch.linalg.solve(gram, t - t_mean)
        else:
            gram = xc.T @ xc + self.alpha * torch.eye(xc.shape[1], dtype=xc.dtype, device=xc.device)
            coef = torch.linalg.solve(gram, xc.T @ (t - t_mean))
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = float(t_mean - x_mean @ coef)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_


class _TorchClassifierBase(ClassifierMixin, BaseEstimator):
    """Softmax classifier on a linear map or an MLP (``hidden_units > 0``)."""

    def _fit(self, X, y, hidden: int):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        x = _tensor(X, self.device)
        target = torch.as_tensor(codes, device=x.device)
        params = _init_layers(X.shape[1], hidden, len(self.classes_), self.random_state, self.device)
        loss = lambda p: torch.nn.functional.cross_entropy(_forward(p, x), target)  # noqa: E731
        self.params_ = _train(params, loss, self.alpha / X.shape[0], self.max_iter)
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class TorchLogistic(_TorchClassifierBase):
    """Multinomial logistic regression with an L2 penalty (``alpha`` = 1/C), fitted with L-BFGS.

    Parameters
    ----------
    alpha : float
        L2 penalty on the weights.
    max_iter : int
        L-BFGS iterations.
    random_state : int or None
        Seed of the initial weights.
    device : str
        Torch device to train on.
    """

    def __init__(self, alpha: float = 1.0, max_iter: int = 200, random_state: int | None = None, device: str = "cpu") -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(self, X, y) -> TorchLogistic:
        self._fit(X, y, hidden=0)
        weights = self.params_[0].T
        self.coef_ = weights[1:2] - weights[0:1] if len(self.classes_) == 2 else weights
        return self


class TorchMLPClassifier(_TorchClassifierBase):
    """One-hidden-layer ReLU network with a softmax output, weight decay ``alpha``.

    Parameters
    ----------
    hidden_units : int
        Width of the hidden layer.
    alpha : float
        L2 penalty on the weights.
    max_iter : int
        L-BFGS iterations.
    random_state : int or None
        Seed of the initial weights.
    device : str
        Torch device to train on.
    """

    def __init__(self, hidden_units: int = 64, alpha: float = 1.0, max_iter: int = 200,
                 random_state: int | None = None, device: str = "cpu") -> None:
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(self, X, y) -> TorchMLPClassifier:
        return self._fit(X, y, hidden=self.hidden_units)


class TorchMLPRegressor(RegressorMixin, BaseEstimator):
    """One-hidden-layer ReLU network for regression (squared loss on the standardized target).

    Parameters
    ----------
    hidden_units : int
        Width of the hidden layer.
    alpha : float
        L2 penalty on the weights.
    max_iter : int
        L-BFGS iterations.
    random_state : int or None
        Seed of the initial weights.
    device : str
        Torch device to train on.
    """

    def __init__(self, hidden_units: int = 64, alpha: float = 1.0, max_iter: int = 200,
                 random_state: int | None = None, device: str = "cpu") -> None:
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(self, X, y) -> TorchMLPRegressor:
        X, y = validate_data(self, X, y, y_numeric=True)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std()) or 1.0
        x = _tensor(X, self.device)
        target = _tensor((y - self.y_mean_) / self.y_scale_, self.device)
        params = _init_layers(X.shape[1], self.hidden_units, 1, self.random_state, self.device)
        loss = lambda p: ((_forward(p, x)[:, 0] - target) ** 2).mean()  # noqa: E731
        self.params_ = _train(params, loss, self.alpha / X.shape[0], self.max_iter)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))[:, 0]
        return scores * self.y_scale_ + self.y_mean_

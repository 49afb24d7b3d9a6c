"""Torch models wrapped as scikit-learn estimators, trained on a chosen device.

- :class:`TorchRidge`: linear regression with an L2 penalty, solved in closed
  form on the device.
- :class:`TorchLogistic`: logistic regression (L2; multinomial beyond two classes), L-BFGS.
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
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data


def _tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(np.array(array, dtype=np.float64), dtype=torch.float64, device=torch.device(device))


def _init_layers(n_in: int, hidden: int, n_out: int, seed: int | None) -> list[np.ndarray]:
    """Weights (Glorot-uniform) and zero biases of a linear model (``hidden=0``) or a one-hidden-layer MLP."""
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
    sizes = [n_in, hidden, n_out] if hidden else [n_in, n_out]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        weight = (torch.rand(fan_in, fan_out, generator=generator, dtype=torch.float64) * 2 - 1) * bound
        params += [weight.numpy(), np.zeros(fan_out)]
    return params


def _forward(params: list, x):
    """Linear map, or ReLU hidden layer then linear map; works on tensors and numpy arrays."""
    out = x @ params[0] + params[1]
    if len(params) == 4:
        out = out * (out > 0)
        out = out @ params[2] + params[3]
    return out


def _train(initial: list[np.ndarray], loss_fn, alpha: float, max_iter: int, device: str) -> tuple[list[np.ndarray], int]:
    """Minimise ``loss_fn(params) + alpha/2 * ||weights||^2`` with L-BFGS.

    The loss and its gradient are computed by torch on ``device``; scipy's
    L-BFGS-B takes the steps (deterministic, and no torch optimizer machinery).
    Returns the fitted parameters and the iterations run.
    """
    shapes = [p.shape for p in initial]
    splits = np.cumsum([p.size for p in initial])[:-1]

    def unpack(vector: np.ndarray) -> list[torch.Tensor]:
        return [_tensor(part.reshape(shape), device).requires_grad_(True)
                for part, shape in zip(np.split(vector, splits), shapes, strict=True)]

    def objective(vector: np.ndarray) -> tuple[float, np.ndarray]:
        params = unpack(vector)
        loss = loss_fn(params) + 0.5 * alpha * sum((w * w).sum() for w in params[0::2])
        grads = torch.autograd.grad(loss, params)
        return float(loss.detach()), torch.cat([g.reshape(-1) for g in grads]).cpu().numpy()

    start = np.concatenate([p.ravel() for p in initial])
    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return [part.reshape(shape) for part, shape in zip(np.split(result.x, splits), shapes, strict=True)], int(result.nit)


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
    """Classifier on a linear map or an MLP (``hidden_units > 0``).

    Two classes get one logit (binomial loss, as scikit-learn's logistic
    regression); more classes get a softmax over one logit each.
    """

    def _fit(self, X, y, hidden: int):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        x = _tensor(X, self.device)
        binary = len(self.classes_) <= 2
        if binary:
            target = _tensor(codes.astype(float), self.device)
            loss = lambda p: torch.nn.functional.binary_cross_entropy_with_logits(_forward(p, x)[:, 0], target)  # noqa: E731
        else:
            target = torch.as_tensor(codes, device=x.device)
            loss = lambda p: torch.nn.functional.cross_entropy(_forward(p, x), target)  # noqa: E731
        params = _init_layers(X.shape[1], hidden, 1 if binary else len(self.classes_), self.random_state)
        self.params_, self.n_iter_ = _train(params, loss, self.alpha / X.shape[0], self.max_iter, self.device)
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))
        if scores.shape[1] == 1:
            positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            return np.column_stack([1.0 - positive, positive])[:, : len(self.classes_)]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class TorchLogistic(_TorchClassifierBase):
    """Logistic regression with an L2 penalty (``alpha`` = 1/C), fitted with L-BFGS.

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

    def __init__(self, alpha: float = 1.0, max_iter: int = 100, random_state: int | None = None, device: str = "cpu") -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(self, X, y) -> TorchLogistic:
        self._fit(X, y, hidden=0)
        self.coef_ = self.params_[0].T
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

    def __init__(self, hidden_units: int = 64, alpha: float = 1.0, max_iter: int = 100,
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

    def __init__(self, hidden_units: int = 64, alpha: float = 1.0, max_iter: int = 100,
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
        params = _init_layers(X.shape[1], self.hidden_units, 1, self.random_state)
        loss = lambda p: ((_forward(p, x)[:, 0] - target) ** 2).mean()  # noqa: E731
        self.params_, self.n_iter_ = _train(params, loss, self.alpha / X.shape[0], self.max_iter, self.device)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        scores = _forward(self.params_, validate_data(self, X, reset=False))[:, 0]
        return scores * self.y_scale_ + self.y_mean_

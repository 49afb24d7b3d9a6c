"""Scores of out-of-fold predictions, and the scorers the inner search uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    make_scorer,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

MetricName = Literal["pearson_r", "r2", "neg_mae", "roc_auc", "balanced_accuracy", "accuracy"]
NEEDS_SCORES = {"roc_auc"}


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Pearson correlation of predicted and true values; 0 when either is constant."""
    a, b = np.asarray(y_true, float) - np.mean(y_true), np.asarray(y_pred, float) - np.mean(y_pred)
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "pearson_r": pearson_r,
    "r2": r2_score,
    "neg_mae": lambda t, p: -mean_absolute_error(t, p),
    "roc_auc": roc_auc_score,
    "balanced_accuracy": balanced_accuracy_score,
    "accuracy": accuracy_score,
}
CHANCE = {"pearson_r": 0.0, "roc_auc": 0.5}


def choose_metric(requested: MetricName | Literal["auto"], task: str, n_classes: int) -> MetricName:
    """``auto`` is Pearson r for regression, ROC AUC for two classes, balanced accuracy otherwise."""
    if requested != "auto":
        return requested
    if task == "regression":
        return "pearson_r"
    return "roc_auc" if n_classes == 2 else "balanced_accuracy"


def check_metric(metric: str, task: str, n_classes: int) -> str | None:
    """Why ``metric`` cannot score ``task`` (None when it can)."""
    regression = {"pearson_r", "r2", "neg_mae"}
    if (metric in regression) != (task == "regression"):
        return f"'{metric}' does not score {task}"
    if metric == "roc_auc" and n_classes != 2:
        return "'roc_auc' needs exactly two classes"
    return None


def score(metric: str, y_true: np.ndarray, predicted: np.ndarray, decision: np.ndarray | None) -> float:
    """``metric`` of one set of predictions (``decision`` feeds ROC AUC).

    Raises
    ------
    ValueError
        ROC AUC without ``decision`` (a model that saw a single class in training has none).
    """
    if metric not in NEEDS_SCORES:
        return float(METRICS[metric](y_true, predicted))
    if np.unique(y_true).size < 2:
        return float("nan")
    if decision is None:
        raise ValueError(f"'{metric}' needs decision values or probabilities, and the model gave none")
    return float(METRICS[metric](y_true, decision))


def inner_scorer(metric: str) -> Callable | str:
    """The scorer the inner hyperparameter search maximises."""
    if metric == "pearson_r":
        return make_scorer(pearson_r)
    return "neg_mean_absolute_error" if metric == "neg_mae" else metric


def summary_metrics(task: str, y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Metrics reported beside the main one: MAE and R² for regression, accuracies for classification."""
    if task == "regression":
        return {"pearson_r": pearson_r(y_true, predicted), "mae": float(mean_absolute_error(y_true, predicted)),
                "r2": float(r2_score(y_true, predicted))}
    return {"accuracy": float(accuracy_score(y_true, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, predicted))}

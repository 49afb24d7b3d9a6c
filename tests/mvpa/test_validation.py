"""Contract checks of the cross-validation helpers (inputs the spec and the readers never produce)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from neurolearn_cli.errors import SpecError
from neurolearn_cli.mvpa import metrics
from neurolearn_cli.mvpa.spec import ValidationSpec
from neurolearn_cli.mvpa.validation import Problem, check_folds, fitting_folds, null_summary


def test_leave_one_group_out_without_groups_is_refused() -> None:
    y = np.array([0, 1] * 4)
    problem = Problem(np.zeros((8, 2)), y, None, "classification", "roc_auc", 2, Pipeline([("model", LogisticRegression())]),
                      {}, ValidationSpec(outer="logo", group_by="site"), 0)
    with pytest.raises(SpecError, match="^field 'validation.group_by': outer: logo needs groups"):
        check_folds(problem)


def test_roc_auc_without_decision_values_is_a_clear_error() -> None:
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="^'roc_auc' needs decision values or probabilities"):
        metrics.score("roc_auc", y, y, None)
    assert np.isnan(metrics.score("roc_auc", np.zeros(4, dtype=int), y, None))  # one class: undefined, as before
    assert metrics.score("roc_auc", y, y, np.array([0.1, 0.9, 0.2, 0.8])) == 1.0


def test_null_summary() -> None:
    assert null_summary(np.array([])) is None
    summary = null_summary(np.arange(101, dtype=float))
    assert summary == {"n": 101, "mean": 50.0, "std": pytest.approx(np.arange(101).std()), "p5": 5.0, "p50": 50.0,
                       "p95": 95.0}


@pytest.mark.parametrize(("smallest", "outer", "inner", "fit"), [
    (3, 5, 5, (3, 2)),      # 8 participants, 3 in the smaller class: the example
    (4, 5, 5, (4, 3)),
    (20, 5, 5, (5, 5)),     # enough: the request itself
    (6, 5, 5, (5, 4)),      # 4 of 6 per outer training part: 4 inner folds
    (2, 5, 5, None),        # no nested cross-validation fits 2 per class
    (2, 5, None, (2, None)),  # without a grid to search, 2 outer folds do
])
def test_fitting_folds(smallest, outer, inner, fit) -> None:
    assert fitting_folds(smallest, outer, inner) == fit


def test_a_regression_sample_too_small_for_its_folds_says_which_fit() -> None:
    y = np.linspace(0, 1, 7)
    problem = Problem(np.zeros((7, 2)), y, None, "regression", "r2", 2, Pipeline([("model", LogisticRegression())]),
                      {}, ValidationSpec(outer=5), 0)
    with pytest.raises(SpecError, match="^field 'validation.outer': 5 folds need at least 10 participants, got 7: "
                                        "use --cv 3 or fewer$"):
        check_folds(problem)

"""Correlations among a run's confound time series, for the report's confounds figure.

As fMRIPrep's "confounds correlation" plot: Pearson correlations between the
columns of ``desc-confounds_timeseries.tsv`` (after the non-steady-state
volumes), restricted to the ``max_dim`` columns most correlated (in magnitude)
with a reference column, the global signal. Confounds that track the global
signal closely (motion, CSF, WM) point at widespread artifacts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REFERENCE = "global_signal"
MAX_DIM = 20
#: Left out, as fMRIPrep: many aCompCor/tCompCor components, the DVARS duplicate,
#: and one-hot outlier regressors (a correlation with a spike says little).
EXCLUDED_PREFIXES = (
    "a_comp_cor_",
    "t_comp_cor_",
    "std_dvars",
    "non_steady_state_outlier",
    "motion_outlier",
)


def correlation_columns(columns: pd.Index) -> list[str]:
    """The confound columns that enter the correlation figure, in table order."""
    return [str(c) for c in columns if not str(c).startswith(EXCLUDED_PREFIXES)]


def confound_correlations(
    table: pd.DataFrame, reference: str = REFERENCE, max_dim: int = MAX_DIM, skip: int = 0
) -> pd.DataFrame:
    """Pearson correlations of the confounds most correlated with ``reference``.

    Parameters
    ----------
    table : DataFrame
        The confounds table (T rows; NaN where undefined, e.g. first derivatives).
    reference : str
        The column the others are ranked against (kept first).
    max_dim : int
        Number of columns kept, ``reference`` included.
    skip : int
        Leading (non-steady-state) rows left out.

    Returns
    -------
    DataFrame
        Square, symmetric, ordered by decreasing ``|r|`` with ``reference``
        (ties by table order). Constant columns are dropped; pairs use the rows
        where both are defined.

    Raises
    ------
    ValueError
        ``reference`` is missing or constant.
    """
    data = table.iloc[skip:][correlation_columns(table.columns)].astype(np.float64)
    data = data.loc[:, data.std(skipna=True) > 0]
    if reference not in data.columns:
        raise ValueError(f"no varying {reference!r} column among the confounds")
    matrix = data.corr()
    strength = matrix[reference].abs().fillna(0.0)
    order = strength.sort_values(ascending=False, kind="stable").index[:max_dim]
    return matrix.loc[order, order]


def top_correlates(
    matrix: pd.DataFrame, reference: str = REFERENCE, n: int = 3
) -> list[tuple[str, float]]:
    """The ``n`` confounds most correlated with ``reference`` (name, signed r), strongest first.

    ``reference``'s own expansions (``global_signal_power2``, ...) are left out:
    they say nothing about other signals.
    """
    own = [c for c in matrix.columns if c == reference or str(c).startswith(f"{reference}_")]
    column = matrix[reference].drop(own)
    return [(str(name), float(column[name])) for name in column.index[:n]]


def nonsteady_count(table: pd.DataFrame) -> int:
    """Leading non-steady-state volumes the fmri stage flagged (one ``non_steady_state_outlierNN`` column each)."""
    return sum(str(c).startswith("non_steady_state_outlier") for c in table.columns)

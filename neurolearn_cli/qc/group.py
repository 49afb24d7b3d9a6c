"""Group tables of IQMs (one row per image) and their outliers.

An image is flagged on an IQM when its robust z-score (Iglewicz and Hoaglin's
modified z, from the median and the MAD) exceeds 3.5 in magnitude, or when it
lies outside Tukey's fences (1.5 IQR beyond the quartiles).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli.qc.figures import tukey_fences

ID_COLUMNS = ("bids_name", "participant_id")
Z_THRESHOLD = 3.5
_SUBJECT = re.compile(r"(?:^|_)sub-([A-Za-z0-9]+)")


def group_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per image: ``bids_name``, ``participant_id`` (``sub-<label>``), then the IQMs by name.

    Each record holds ``bids_name`` (e.g. ``sub-01_task-rest_bold``) and the
    image's IQMs; ``participant_id`` comes from the name's ``sub-`` entity when absent.
    Rows are sorted by ``bids_name``.
    """
    rows = []
    for record in records:
        row = dict(record)
        if "bids_name" not in row:
            raise ValueError("every IQM record needs a 'bids_name'")
        if "participant_id" not in row:
            match = _SUBJECT.search(str(row["bids_name"]))
            row["participant_id"] = f"sub-{match.group(1)}" if match else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=list(ID_COLUMNS))
    measures = sorted(column for column in table.columns if column not in ID_COLUMNS)
    return table[[*ID_COLUMNS, *measures]].sort_values("bids_name", ignore_index=True)


def iqm_columns(table: pd.DataFrame) -> list[str]:
    """The numeric IQM columns of a group table."""
    return [
        c for c in table.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(table[c])
    ]


def robust_z(values: pd.Series) -> pd.Series:
    r"""Modified z-score :math:`0.6745 (x - \tilde x) / \mathrm{median}|x - \tilde x|`; NaN where the MAD is 0."""
    numbers = values.astype(float)
    centre = numbers.median()
    spread = (numbers - centre).abs().median()
    if not np.isfinite(spread) or spread == 0:
        return pd.Series(np.nan, index=values.index)
    return 0.6745 * (numbers - centre) / spread


def flag_outliers(table: pd.DataFrame, z_threshold: float = Z_THRESHOLD) -> pd.DataFrame:
    """Long table of flagged values: one row per (image, IQM) with a robust-z or Tukey flag.

    Columns: ``bids_name``, ``participant_id``, ``iqm``, ``value``, ``robust_z``,
    ``low_fence``, ``high_fence``, ``robust`` (``|z| > z_threshold``), ``tukey``
    (outside the fences). IQMs with fewer than 3 finite values are skipped.
    """
    rows = []
    for name in iqm_columns(table):
        values = table[name].astype(float)
        finite = values[np.isfinite(values)]
        if finite.size < 3:
            continue
        z = robust_z(finite)
        low, high = tukey_fences(finite.to_numpy())
        for (index, value), z_value in zip(finite.items(), z.tolist(), strict=True):  # z is aligned with finite
            robust = bool(abs(z_value) > z_threshold) if np.isfinite(z_value) else False
            tukey = bool(value < low or value > high)
            if robust or tukey:
                rows.append(
                    {
                        "bids_name": table.at[index, "bids_name"],
                        "participant_id": table.at[index, "participant_id"],
                        "iqm": name,
                        "value": float(value),
                        "robust_z": float(z_value),
                        "low_fence": low,
                        "high_fence": high,
                        "robust": robust,
                        "tukey": tukey,
                    }
                )
    columns = [
        "bids_name",
        "participant_id",
        "iqm",
        "value",
        "robust_z",
        "low_fence",
        "high_fence",
        "robust",
        "tukey",
    ]
    return pd.DataFrame(rows, columns=columns)

r"""Group tables of IQMs (one row per image) and their outliers.

Two rules flag an image on an IQM, each with a scale that cannot collapse
when most images share a value (a count such as ``fd_num``, or ``fd_perc`` of
runs that differ by one volume, has a MAD of 0 or nearly so, and a plain
robust z then flags the smallest differences at |z| in the tens):

- **robust z**: :math:`|x - \tilde x| / s > 3.5` (Iglewicz and Hoaglin's
  threshold), with :math:`s` the largest of the normalised MAD
  (:math:`\mathrm{MAD}/0.6745`: their modified z), :math:`\mathrm{IQR}/1.349`
  (both estimate a Gaussian's sd; the MAD collapses first, when over half the
  images cluster) and the measure's resolution :math:`r`.
- **Tukey**: outside :math:`[Q_1 - 1.5\,\mathrm{IQR}, Q_3 + 1.5\,\mathrm{IQR}]`,
  the IQR taken as at least :math:`r`.

The resolution :math:`r` is one count for counts, one volume of the
shortest run for ``fd_perc`` and 1 % of the median's magnitude otherwise
(:mod:`~neurolearn_cli.qc.iqm_catalog`), so values one count apart are never
outliers. Intensity summaries (``summary_*``) are plotted but not flagged:
they follow each scanner's intensity scale, so their "outliers" are sites,
not images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli.qc.iqm_catalog import describe
from neurolearn_cli.qc.measures import MISSING_KEY, PROVENANCE_KEY

ID_COLUMNS = ("bids_name", "participant_id")
Z_THRESHOLD = 3.5
TUKEY_K = 1.5
#: Fewest images with a value for a measure to be flagged at all: quartiles and MADs of fewer say little.
MIN_IMAGES_TO_FLAG = 5
#: The resolution of a continuous measure, relative to its median's magnitude.
RELATIVE_RESOLUTION = 0.01
#: The catalog group whose measures are plotted but not flagged (scanner intensity scales differ by site).
UNFLAGGED_GROUP = "Intensity summaries"
_MAD_TO_SD = 1.0 / 0.6744897501960817
_IQR_TO_SD = 1.0 / 1.3489795003921634
_SUBJECT = re.compile(r"(?:^|_)sub-([A-Za-z0-9]+)")
OUTLIER_COLUMNS = [
    "bids_name",
    "participant_id",
    "iqm",
    "value",
    "robust_z",
    "scale",
    "scale_rule",
    "low_fence",
    "high_fence",
    "robust",
    "tukey",
]


def group_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per image: ``bids_name``, ``participant_id`` (``sub-<label>``), then the IQMs by name.

    Each record holds ``bids_name`` (e.g. ``sub-01_task-rest_bold``) and the
    image's IQMs (an IQM JSON); ``participant_id`` comes from the name's
    ``sub-`` entity when absent. Missing measures (``null``) are NaN, written
    ``n/a``; the reasons (:data:`~neurolearn_cli.qc.measures.MISSING_KEY`) are
    left out (see :func:`missing_reasons`), as is the provenance. Rows are sorted by ``bids_name``.
    """
    rows = []
    for record in records:
        row = {key: value for key, value in record.items() if key not in (MISSING_KEY, PROVENANCE_KEY)}
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


def missing_reasons(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """``(bids_name, iqm) -> reason`` for every measure an IQM JSON records as missing."""
    return {
        (str(record["bids_name"]), str(name)): str(reason)
        for record in records
        for name, reason in dict(record.get(MISSING_KEY) or {}).items()
    }


def iqm_columns(table: pd.DataFrame) -> list[str]:
    """The numeric IQM columns of a group table."""
    return [
        c for c in table.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(table[c])
    ]


def flagged_columns(table: pd.DataFrame) -> list[str]:
    """The IQM columns the outlier rules apply to: all but the intensity summaries."""
    return [name for name in iqm_columns(table) if describe(name).group != UNFLAGGED_GROUP]


def tukey_fences(values: np.ndarray, k: float = TUKEY_K, min_iqr: float = 0.0) -> tuple[float, float]:
    """Tukey's fences ``Q1 - k IQR`` and ``Q3 + k IQR``, the IQR taken as at least ``min_iqr``."""
    q1, q3 = np.percentile(values, [25.0, 75.0])
    iqr = max(float(q3 - q1), min_iqr)
    return float(q1 - k * iqr), float(q3 + k * iqr)


def resolution(table: pd.DataFrame, name: str) -> tuple[float, str]:
    """The smallest difference between two images that ``name`` can show, and what it is.

    One count for counts; for a percentage of a run's volumes, one volume of
    the shortest run (from ``size_t`` and ``dummy_trs``); otherwise
    :data:`RELATIVE_RESOLUTION` of the median's magnitude.
    """
    info = describe(name)
    if info.step is not None:
        return info.step, "one count"
    if info.per_volume and "size_t" in table.columns:
        dummies = table["dummy_trs"] if "dummy_trs" in table.columns else 0
        volumes = (table["size_t"] - dummies).astype(float)
        volumes = volumes[np.isfinite(volumes) & (volumes > 0)]
        if volumes.size:
            return 100.0 / float(volumes.min()), "one volume"
    centre = float(table[name].astype(float).median())
    return RELATIVE_RESOLUTION * abs(centre), f"{RELATIVE_RESOLUTION:.0%} of the median"


@dataclass(frozen=True)
class RobustScale:
    """The robust z's centre and scale for one IQM, and which rule set the scale."""

    centre: float
    scale: float
    rule: str


def robust_scale(values: np.ndarray, floor: float, floor_rule: str) -> RobustScale:
    """Median and a scale that cannot collapse: the largest of the normalised MAD, IQR / 1.349 and ``floor``.

    ``floor`` is the measure's resolution (:func:`resolution`), named by
    ``floor_rule``; ties go to the MAD, then the IQR.
    """
    centre = float(np.median(values))
    q1, q3 = np.percentile(values, [25.0, 75.0])
    candidates = [
        (float(np.median(np.abs(values - centre))) * _MAD_TO_SD, "MAD"),
        (float(q3 - q1) * _IQR_TO_SD, "IQR / 1.349"),
        (floor, floor_rule),
    ]
    scale, rule = max(candidates, key=lambda candidate: candidate[0])  # the first of equal maxima
    return RobustScale(centre, scale, rule)


def flag_outliers(table: pd.DataFrame, z_threshold: float = Z_THRESHOLD) -> pd.DataFrame:
    """Long table of flagged values: one row per (image, IQM) flagged by the robust z or Tukey.

    Columns: ``bids_name``, ``participant_id``, ``iqm``, ``value``,
    ``robust_z`` (NaN when the scale is 0: all values equal and a median of 0),
    ``scale`` and ``scale_rule`` (which scale the z used), ``low_fence``,
    ``high_fence``, ``robust`` (``|z| > z_threshold``), ``tukey`` (outside the
    fences). IQMs with fewer than :data:`MIN_IMAGES_TO_FLAG` finite values, and intensity summaries, are skipped.
    """
    rows = []
    for name in flagged_columns(table):
        values = table[name].astype(float)
        finite = values[np.isfinite(values)]
        if finite.size < MIN_IMAGES_TO_FLAG:
            continue
        floor, floor_rule = resolution(table, name)
        spread = robust_scale(finite.to_numpy(), floor, floor_rule)
        low, high = tukey_fences(finite.to_numpy(), min_iqr=floor)
        for index, value in finite.items():
            z = (value - spread.centre) / spread.scale if spread.scale > 0 else float("nan")
            robust = bool(abs(z) > z_threshold) if np.isfinite(z) else False
            tukey = bool(value < low or value > high)
            if robust or tukey:
                rows.append(
                    {
                        "bids_name": table.at[index, "bids_name"],
                        "participant_id": table.at[index, "participant_id"],
                        "iqm": name,
                        "value": float(value),
                        "robust_z": float(z),
                        "scale": spread.scale,
                        "scale_rule": spread.rule,
                        "low_fence": low,
                        "high_fence": high,
                        "robust": robust,
                        "tukey": tukey,
                    }
                )
    return pd.DataFrame(rows, columns=OUTLIER_COLUMNS)

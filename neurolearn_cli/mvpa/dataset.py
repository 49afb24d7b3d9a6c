"""Join features with participants.tsv into the arrays an analysis runs on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurolearn_cli.errors import InputError, SpecError
from neurolearn_cli.mvpa.features import FeatureTable, participant_of, read_table
from neurolearn_cli.mvpa.spec import AnalysisSpec

LOGGER = logging.getLogger("neurolearn.mvpa")
MAX_CLASSES_FOR_NUMERIC = 5
#: The participants.tsv column that names each participant's site (BIDS' recommended name).
SITE_COLUMN = "site"


@dataclass(frozen=True)
class AnalysisData:
    """Everything the cross-validation needs, one row per participant.

    ``features`` may hold NaN only when the spec imputes inside the folds.
    ``confounds`` are numeric (categorical ones one-hot coded); ``site`` holds
    integer site codes (indices into ``site_names``, see :func:`participant_sites`); ``groups`` are what the
    folds never split (None when not grouped). ``classes`` are the sorted
    class labels of a classification (``y`` holds indices into them), None
    for a regression.
    """

    participant_ids: list[str]
    features: np.ndarray
    feature_names: list[str]
    y: np.ndarray
    task: str
    classes: list[str] | None
    confounds: np.ndarray
    confound_names: list[str]
    site: np.ndarray
    site_names: list[str]
    groups: np.ndarray | None


def detect_task(target: pd.Series) -> str:
    """``classification`` for non-numeric targets or few integer values, else ``regression``."""
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    values = target.dropna().to_numpy(dtype=float)
    few = np.unique(values).size <= MAX_CLASSES_FOR_NUMERIC
    return "classification" if few and np.all(values == np.round(values)) else "regression"


def read_participants(bids_dir: Path) -> pd.DataFrame:
    """participants.tsv indexed by ``participant_id`` (``sub-<label>``)."""
    path = bids_dir / "participants.tsv"
    frame = read_table(path)
    if "participant_id" not in frame.columns:
        raise InputError(path, "has no participant_id column")
    frame.index = pd.Index([participant_of(str(v), path) for v in frame.pop("participant_id")], name="participant_id")
    if frame.index.has_duplicates:
        raise InputError(path, "participant_id values are not unique")
    return frame


def _column(participants: pd.DataFrame, name: str, field: str, path: Path) -> pd.Series:
    if name not in participants.columns:
        raise InputError(path, f"{field}: no column '{name}' in participants.tsv")
    return participants[name]


def participant_sites(spec: AnalysisSpec, table: FeatureTable, participants: pd.DataFrame, ids: list[str],
                      path: Path) -> pd.Series:
    """Each participant's site: participants.tsv's ``site`` column where present, else its feature source.

    Site names given in the spec (``features.sites``) name the sources and win;
    otherwise the data's own ``site`` column does, so a single derivatives
    folder holding several scanners' participants is not one site named after
    the folder.

    Raises
    ------
    InputError
        The ``site`` column has no value for some analysed participant.
    """
    if spec.features.sites is not None or SITE_COLUMN not in participants.columns:
        return table.site.loc[ids].astype(str)
    sites = participants.loc[ids, SITE_COLUMN]
    missing = sites.index[sites.isna()].tolist()
    if missing:
        raise InputError(path, f"{SITE_COLUMN}: no value for {', '.join(missing[:5])}"
                               f"{' and others' if len(missing) > 5 else ''} (fill it in, or name sites by "
                               "features.sources and features.sites)")
    return sites.astype(str)


def encode_confounds(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as they are, each categorical one as 0/1 columns (its first level dropped)."""
    coded = [frame[[c]].astype(float) if pd.api.types.is_numeric_dtype(frame[c])
             else pd.get_dummies(frame[c].astype(str), prefix=c, drop_first=True, dtype=float)
             for c in frame.columns]
    return pd.concat(coded, axis=1) if coded else pd.DataFrame(index=frame.index)


def _check_missing(values: pd.DataFrame, table: FeatureTable, policy: str) -> pd.DataFrame:
    if policy == "zero":
        return values.fillna(0.0)
    array = values.to_numpy()
    bad = ~np.isfinite(array) if policy == "error" else np.isinf(array)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        participant = values.index[row]
        raise InputError(
            table.files[participant],
            f"{participant}: feature '{values.columns[col]}' is {array[row, col]} "
            f"({int(bad.sum())} bad values; set features.missing to zero or mean)",
        )
    return values


def assemble(spec: AnalysisSpec, table: FeatureTable, bids_dir: Path) -> AnalysisData:
    """Join ``table`` with participants.tsv and check the result can be analysed.

    Participants without a target (or a confound) value are dropped with a
    log line; the target, confound and grouping columns are never features.

    Raises
    ------
    InputError
        A missing column (naming the spec field), non-finite features, or no
        participant with both features and a target.
    """
    path = bids_dir / "participants.tsv"
    participants = read_participants(bids_dir)
    column = spec.target.column
    target = _column(participants, column, "target.column", path)
    confounds = pd.DataFrame({c: _column(participants, c, "preprocessing.confounds", path)
                              for c in spec.preprocessing.confounds}, index=participants.index)
    group_by = spec.validation.group_by
    group_values = None
    if group_by and group_by != "site":
        group_values = _column(participants, group_by, "validation.group_by", path)

    used = pd.concat([target, confounds], axis=1).dropna()
    ids = [p for p in table.values.index if p in used.index]
    dropped = len(table.values) - len(ids)
    if dropped:
        LOGGER.info("%d participants with features have no %s (or confound) value and are left out", dropped, column)
    if not ids:
        raise InputError(path, f"no participant has both features and a '{column}' value")
    leaked = {column, *spec.preprocessing.confounds, group_by or ""} & set(table.values.columns)
    values = table.values.loc[ids].drop(columns=sorted(leaked))
    values = _check_missing(values, table, spec.features.missing)
    if values.shape[1] == 0:
        raise SpecError(None, "features", "no feature column is left")

    task = detect_task(target.loc[ids]) if spec.target.task == "auto" else spec.target.task
    y_raw = target.loc[ids]
    classes = None
    if task == "classification":
        labels = y_raw.astype(str)
        classes = sorted(labels.unique())
        y = np.searchsorted(classes, labels.to_numpy())
    else:
        if not pd.api.types.is_numeric_dtype(y_raw):
            raise InputError(path, f"target.column: '{column}' is not numeric, cannot regress it")
        y = y_raw.to_numpy(dtype=float)
    sites = participant_sites(spec, table, participants, ids, path)
    site_names = sorted(sites.unique())
    site = np.searchsorted(site_names, sites.to_numpy())
    if group_by == "site":
        groups = site
    elif group_values is not None:
        groups = np.unique(group_values.loc[ids].astype(str).to_numpy(), return_inverse=True)[1]
    else:
        groups = None
    coded = encode_confounds(confounds.loc[ids])
    return AnalysisData(
        participant_ids=ids,
        features=values.to_numpy(dtype=float),
        feature_names=[str(c) for c in values.columns],
        y=y,
        task=task,
        classes=classes,
        confounds=coded.to_numpy(dtype=float),
        confound_names=list(coded.columns),
        site=site,
        site_names=[str(s) for s in site_names],
        groups=groups,
    )

"""From a run's ``events.tsv`` to the samples decoded: trials or blocks, their block and their class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from neurolearn_cli.errors import InputError, SpecError
from neurolearn_cli.mvpa.decoding.spec import DecodingTarget, SampleSpec


def _checked(events: pd.DataFrame, column: str, source: Path) -> pd.DataFrame:
    """Events sorted by onset, with numeric onset/duration and no missing condition."""
    for name in ("onset", "duration", column):
        if name not in events.columns:
            raise InputError(source, f"no column '{name}'")
    onset = pd.to_numeric(events["onset"], errors="coerce")
    duration = pd.to_numeric(events["duration"], errors="coerce")
    if onset.isna().any() or duration.isna().any() or (duration < 0).any():
        raise InputError(source, "onset and duration must be numbers (duration >= 0)")
    if events[column].isna().any():
        raise InputError(source, f"missing values in column '{column}'")
    frame = pd.DataFrame({"onset": onset, "duration": duration, "condition": events[column].astype(str)})
    if frame.empty:
        raise InputError(source, "no events")
    return frame.sort_values("onset", kind="stable").reset_index(drop=True)


def block_index(events: pd.DataFrame, gap: float) -> np.ndarray:
    """Block number of each event (sorted by onset): a new block starts when the condition changes
    or when the event starts more than ``gap`` seconds after the previous one ended."""
    previous_end = (events["onset"] + events["duration"]).shift()
    new = (events["condition"] != events["condition"].shift()) | (events["onset"] - previous_end > gap)
    return np.cumsum(new.to_numpy()) - 1


def samples_from_events(events: pd.DataFrame, column: str, spec: SampleSpec, source: Path) -> pd.DataFrame:
    """One row per sample with ``onset``, ``duration``, ``condition`` and ``block`` (0, 1, ... in the run).

    A block sample spans its first event's onset to its last event's end.

    Raises
    ------
    InputError
        Missing columns or values, or a ``block_column`` block holding several conditions.
    """
    frame = _checked(events, column, source)
    if spec.block_column is None:
        frame["block"] = block_index(frame, spec.block_gap)
    else:
        if spec.block_column not in events.columns:
            raise InputError(source, f"no column '{spec.block_column}' (samples.block_column)")
        ordered = events.loc[events.index[np.argsort(pd.to_numeric(events["onset"]).to_numpy(), kind="stable")]]
        frame["block"] = pd.factorize(ordered[spec.block_column].astype(str).to_numpy())[0]
        if (frame.groupby("block")["condition"].nunique() > 1).any():
            raise InputError(source, f"a block of '{spec.block_column}' holds several conditions")
    if spec.unit == "trial":
        return frame[["onset", "duration", "condition", "block"]]
    frame["end"] = frame["onset"] + frame["duration"]
    blocks = frame.groupby("block", sort=True).agg(onset=("onset", "min"), end=("end", "max"),
                                                   condition=("condition", "first"))
    blocks["duration"] = blocks["end"] - blocks["onset"]
    return blocks.reset_index()[["onset", "duration", "condition", "block"]]


def class_labels(conditions: pd.Series, target: DecodingTarget) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Which samples are decoded, their class codes, and the class names.

    With ``target.positive`` the classes are ``other`` (0) and the positive
    conditions (1); otherwise one class per decoded condition, sorted.

    Raises
    ------
    InputError
        A listed condition absent from the events, or fewer than two classes.
    """
    present = set(conditions)
    for field, names in (("target.include", target.include), ("target.positive", target.positive)):
        missing = sorted(set(names or []) - present)
        if missing:
            raise SpecError(None, field, f"condition {', '.join(missing)} not in the events' '{target.column}'")
    decoded = conditions.isin(target.include).to_numpy() if target.include else np.ones(len(conditions), bool)
    kept = conditions[decoded]
    if target.positive:
        classes = ["other", "+".join(target.positive)]
        codes = kept.isin(target.positive).to_numpy().astype(int)
    else:
        classes = sorted(set(kept))
        codes = np.searchsorted(classes, kept.to_numpy())
    if np.unique(codes).size < 2:
        raise SpecError(None, "target", f"fewer than two classes to decode in '{target.column}'")
    return decoded, codes, classes

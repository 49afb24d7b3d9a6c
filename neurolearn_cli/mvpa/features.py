"""Read participant-by-feature tables from derivatives or plain tables.

Every reader returns a :class:`FeatureTable`: one row per participant, one
numeric column per feature, the site each row came from, and the file each row
was read from (so that a bad value can be reported with its file). Several
sources (sites) are pooled; a participant may appear in only one of them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from neurolearn_cli.errors import InputError, SpecError
from neurolearn_cli.mvpa.spec import FeatureSpec

LOGGER = logging.getLogger("neurolearn.mvpa")
_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")


@dataclass(frozen=True)
class FeatureTable:
    """Features of the pooled participants.

    Attributes
    ----------
    values : DataFrame
        Index ``participant_id`` (``sub-<label>``), one float column per feature.
    site : Series
        The site (source) of each participant, same index.
    files : Series
        The file each participant's row was read from, same index.
    """

    values: pd.DataFrame
    site: pd.Series
    files: pd.Series

    @property
    def inputs(self) -> list[Path]:
        """Every distinct input file, sorted."""
        return sorted({Path(p) for p in self.files})


def participant_of(name: str, where: str | Path) -> str:
    """``sub-<label>`` from a BIDS file name or id (a bare label gets the prefix)."""
    match = _SUBJECT.search(name)
    if match:
        return f"sub-{match.group(1)}"
    if re.fullmatch(r"[A-Za-z0-9]+", name):
        return f"sub-{name}"
    raise InputError(where, f"cannot tell the participant from '{name}'")


def read_table(path: Path) -> pd.DataFrame:
    """Read a TSV (or ``.csv``) file; ``n/a`` and empty cells are missing."""
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        return pd.read_csv(path, sep=sep, na_values=["n/a", "N/A"], keep_default_na=True)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot parse the table ({str(exc).splitlines()[0]})") from None


def _numeric(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    numeric = frame.select_dtypes(include=[np.number, "bool"]).astype(float)
    dropped = sorted(set(frame.columns) - set(numeric.columns))
    if dropped:
        LOGGER.info("%s: non-numeric columns ignored: %s", path, ", ".join(map(str, dropped)))
    if numeric.shape[1] == 0:
        raise InputError(path, "has no numeric feature column")
    return numeric


def _tabular(path: Path) -> pd.DataFrame:
    frame = read_table(path)
    if "participant_id" not in frame.columns:
        raise InputError(path, "has no participant_id column")
    ids = [participant_of(str(v), path) for v in frame["participant_id"]]
    if len(set(ids)) != len(ids):
        raise InputError(path, "participant_id values are not unique")
    values = _numeric(frame.drop(columns="participant_id"), path)
    values.index = pd.Index(ids, name="participant_id")
    return values


def _one_row(path: Path) -> pd.Series:
    frame = read_table(path)
    frame = frame.drop(columns="participant_id", errors="ignore")
    if len(frame) != 1:
        raise InputError(path, f"expected one row, found {len(frame)}")
    return _numeric(frame, path).iloc[0]


def _upper_triangle(path: Path) -> pd.Series:
    frame = read_table(path)
    if frame.shape[1] == frame.shape[0] + 1 and not pd.api.types.is_numeric_dtype(frame.iloc[:, 0]):
        frame = frame.set_index(frame.columns[0])
    matrix = frame.to_numpy(dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(path, f"expected a square matrix, found {matrix.shape[0]}x{matrix.shape[1]}")
    labels = [str(c) for c in frame.columns]
    rows, cols = np.triu_indices(len(labels), k=1)
    names = [f"{labels[i]}__{labels[j]}" for i, j in zip(rows, cols, strict=True)]
    return pd.Series(matrix[rows, cols], index=names)


def _fisher_mean(runs: list[pd.Series]) -> pd.Series:
    """Average correlations over runs in Fisher z space."""
    z = np.arctanh(np.clip(pd.concat(runs, axis=1).to_numpy(), -0.999999, 0.999999))
    return pd.Series(np.tanh(z.mean(axis=1)), index=runs[0].index)


def _per_participant(
    files: list[Path], reader: Callable[[Path], pd.Series], combine: Callable[[list[pd.Series]], pd.Series]
) -> tuple[pd.DataFrame, dict[str, Path]]:
    grouped: dict[str, list[Path]] = {}
    for path in files:
        grouped.setdefault(participant_of(path.name, path), []).append(path)
    rows, origin = {}, {}
    for participant, paths in sorted(grouped.items()):
        series = [reader(p) for p in paths]
        for other, path in zip(series[1:], paths[1:], strict=True):
            if list(other.index) != list(series[0].index):
                raise InputError(path, f"its features differ from {paths[0].name}'s")
        rows[participant], origin[participant] = combine(series), paths[0]
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "participant_id"
    return frame, origin


def _find(root: Path, pattern: str, what: str) -> list[Path]:
    files = sorted(root.glob(pattern))
    if not files:
        raise InputError(root, f"no {what} found (looked for {pattern})")
    return files


def _atlas_of(path: Path) -> str:
    """The ``seg-`` label of a morphometry table's name (the glob's ``*`` also matches an empty one)."""
    match = re.search(r"_seg-([^_]+)_", path.name)
    if match is None:
        raise InputError(path, "no atlas label in the file name (expected _seg-<atlas>_)")
    return match.group(1)


#: The prefix of the ``thickness`` stat's columns, which name the same parcels as the GM volumes.
THICKNESS_PREFIX = "thickness_"


def _morph_tables(root: Path, spec: FeatureSpec, stat: str) -> tuple[pd.DataFrame, dict[str, Path]]:
    """One participant per row of the ``stat-<stat>`` morphometry tables of one atlas."""
    seg = spec.atlas or "*"
    what = "cortical thickness tables (the surfaces stage's)" if stat == "thickness" else "morphometry tables"
    files = _find(root, f"sub-*/**/anat/sub-*_seg-{seg}_stat-{stat}_morph.tsv", what)
    atlases = {_atlas_of(p) for p in files}
    if len(atlases) > 1:
        raise InputError(root, f"morphometry for several atlases ({', '.join(sorted(atlases))}): set features.atlas")
    return _per_participant(files, _one_row, lambda runs: runs[0])


def _thickness(root: Path, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Per-parcel mean thickness as ``thickness_<parcel>``; parcels no participant's surface reaches are left out.

    A parcel that the surfaces never reach (deep grey matter) is missing for
    everyone: it carries no information, and would trip the missing-value rule.
    """
    values, sources = _morph_tables(root, spec, "thickness")
    unreached = [str(c) for c in values.columns[values.isna().all()]]
    if unreached:
        LOGGER.info("%s: no vertex in parcels %s for any participant: thickness left out there", root,
                    ", ".join(unreached))
    return values.drop(columns=unreached).add_prefix(THICKNESS_PREFIX), sources


def _morph(root: Path, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, Path]]:
    """The morphometry of ``spec.stat`` side by side (GM volumes first, TIV-normalized on request)."""
    frames: list[pd.DataFrame] = []
    sources: dict[str, Path] = {}
    for stat in spec.stat:
        if stat == "thickness":
            values, found = _thickness(root, spec)
        else:
            values, found = _morph_tables(root, spec, stat)
            if spec.normalize == "tiv":
                values = _relative_to_tiv(values, found)
        frames.append(values)
        sources = {**found, **sources}
    joined = pd.concat(frames, axis=1, join="outer").sort_index()
    return joined, {participant: sources[participant] for participant in joined.index}


def _relative_to_tiv(values: pd.DataFrame, sources: dict[str, Path]) -> pd.DataFrame:
    """Every volume divided by the participant's ``TIV`` (a fraction of the intracranial volume); TIV dropped."""
    if "TIV" not in values.columns:
        raise InputError(next(iter(sources.values())), "normalize: tiv needs a TIV column")
    tiv = values["TIV"]
    unusable = tiv.index[~(tiv > 0)]
    if len(unusable):
        raise InputError(sources[unusable[0]], "TIV is missing or not positive: cannot normalize by it")
    return values.drop(columns="TIV").div(tiv, axis=0)


def _connectivity(root: Path, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, Path]]:
    task, seg = spec.task or "*", spec.atlas or "*"
    pattern = f"sub-*/**/func/sub-*_task-{task}_*seg-{seg}_stat-pearsoncorrelation_relmat.tsv"
    files = _find(root, pattern, "connectivity matrices")
    return _per_participant(files, _upper_triangle, _fisher_mean)


def _iqm_json(path: Path) -> pd.Series:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the IQM JSON ({exc})") from None
    return pd.Series({k: float(v) for k, v in sorted(payload.items()) if isinstance(v, (int, float))})


def _iqm(root: Path, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, Path]]:
    group = root / f"group_{spec.modality}.tsv"
    if group.exists():
        frame = read_table(group)
        if "bids_name" not in frame.columns:
            raise InputError(group, "has no bids_name column")
        ids = [participant_of(str(name), group) for name in frame["bids_name"]]
        values = _numeric(frame.drop(columns="bids_name"), group).groupby(pd.Index(ids, name="participant_id")).mean()
        return values, dict.fromkeys(values.index, group)
    folder = "anat" if spec.modality == "T1w" else "func"
    candidates = sorted(root.glob(f"sub-*/**/{folder}/sub-*_{spec.modality}.json"))
    files = [p for p in candidates if not p.with_suffix(".nii.gz").exists() and not p.with_suffix(".nii").exists()]
    if not files:
        raise InputError(root, f"no group_{spec.modality}.tsv and no per-image IQM JSON files")
    return _per_participant(files, _iqm_json, lambda runs: pd.concat(runs, axis=1).mean(axis=1))


def _table(path: Path, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, Path]]:
    values = _tabular(path)
    return values, dict.fromkeys(values.index, path)


READERS: dict[str, Callable[[Path, FeatureSpec], tuple[pd.DataFrame, dict[str, Path]]]] = {
    "morph": _morph,
    "connectivity": _connectivity,
    "iqm": _iqm,
    "table": _table,
}


def _site_name(source: Path) -> str:
    return source.stem if source.is_file() else source.resolve().name


def load_features(spec: FeatureSpec, default_source: Path) -> FeatureTable:
    """Read and pool the features of every source (site) named by ``spec``.

    Derivative kinds read ``default_source`` (the run's output folder) when
    the spec names no source; a relative source is taken from it (a pool's
    analyses name their tables relative to the pool, so the spec written with
    the results is the same wherever the pool is). Columns named in ``exclude`` are dropped; with
    ``include``, only those are kept.

    Raises
    ------
    InputError
        A missing or unreadable file, a participant found in two sources, or
        sources whose feature columns differ.
    """
    sources = [source if source.is_absolute() else default_source / source for source in spec.sources]
    sources = sources or [default_source]
    sites = spec.sites or [_site_name(s) for s in sources]
    if len(set(sites)) != len(sites):
        raise SpecError(None, "features.sites", "two sources have the same site name; set features.sites")
    frames: list[pd.DataFrame] = []
    site: dict[str, str] = {}  # participant -> site name
    files: dict[str, str] = {}  # participant -> the file its features came from
    for source, name in zip(sources, sites, strict=True):
        if not source.exists():
            raise InputError(source, "feature source not found")
        values, origin = READERS[spec.kind](source, spec)
        if frames and list(values.columns) != list(frames[0].columns):
            raise InputError(source, f"its feature columns differ from those of {sources[0]}")
        for participant in values.index:
            if participant in site:
                raise InputError(origin[participant], f"{participant} is also in site '{site[participant]}'")
            site[participant], files[participant] = name, str(origin[participant])
        frames.append(values)
    values = pd.concat(frames).astype(float)
    values = _choose_columns(values, spec)
    index = values.index
    return FeatureTable(values, pd.Series(site).reindex(index), pd.Series(files).reindex(index))


def _choose_columns(values: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    unknown = sorted(set(spec.include or []) - set(values.columns))
    if unknown:
        raise SpecError(None, "features.include", f"no such feature: {', '.join(unknown)}")
    kept = spec.include if spec.include is not None else list(values.columns)
    return values[[c for c in kept if c not in set(spec.exclude)]]

"""``project pool``: verify the site bundles, pool their tables, run the project's analyses, write the report.

Nothing is written until every bundle passed its checks
(:mod:`neurolearn_cli.project.checks`); the pool is then built in a hidden
folder beside POOL_DIR and renamed into place, so a failure leaves no
half-written pool. POOL_DIR reads like a small BIDS-Derivatives dataset::

    dataset_description.json   project.yaml (a copy)   sites.tsv   site_effects.tsv
    participants.tsv           participant_id, site and the shared columns (what mvpa reads)
    qc.tsv                     participant_id, site, status and IQMs
    features/<set>.tsv         the pooled feature tables (participants whose run was done), and the
                               project's computed tables
    mvpa/<analysis>/           each analysis' results, as ``neurolearn mvpa`` writes them
    report.html                the project report

Every file is recorded in ``logs/manifest/``, and none holds a time or a
path of the machine: pooling the same bundles twice gives the same bytes.
Every pooled table lists the participants in one order that follows their
data, not their pseudonyms (:func:`content_order`), so the same scans
exported again under a new site key give the same folds and results.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli import __version__, atomic
from neurolearn_cli.derivatives import DerivativesWriter, fingerprint, sha256_bytes
from neurolearn_cli.errors import SpecError, UsageError
from neurolearn_cli.logs import get_logger
from neurolearn_cli.mvpa.dataset import SITE_COLUMN, encode_confounds
from neurolearn_cli.mvpa.harmonization import ComBat
from neurolearn_cli.project.bundle import QC
from neurolearn_cli.project.checks import SiteBundle, open_bundles
from neurolearn_cli.project.computed import computed_table
from neurolearn_cli.project.model import (
    FEATURES_FOLDER,
    Project,
    QCRule,
    load_project,
    project_sha256,
)
from neurolearn_cli.project.site_effect import site_effect

POOL_MANIFEST = "project-pool"


@dataclass(frozen=True)
class PooledData:
    """The bundles' tables joined, each indexed by ``participant_id`` with a ``site`` column (features: none)."""

    participants: pd.DataFrame
    qc: pd.DataFrame
    features: dict[str, pd.DataFrame]
    sites: pd.DataFrame


def qc_exclusions(qc: pd.DataFrame, rules: list[QCRule], source: Path) -> pd.Series:
    """Per participant whose run was done and whose T1w breaks a rule of ``qc_exclude``, the first rule it breaks.

    Raises
    ------
    SpecError
        A rule names an IQM the QC tables do not hold (naming the project file's field).
    """
    reasons = pd.Series(index=qc.index, dtype=object)
    done = qc["status"] == "done"
    for index, rule in enumerate(rules):
        if rule.iqm not in qc.columns:
            raise SpecError(source, f"qc_exclude.{index}.iqm", f"'{rule.iqm}' is not a column of the bundles' QC "
                            "tables")
        values = pd.to_numeric(qc[rule.iqm], errors="coerce")
        broken = done & reasons.isna() & (((values > rule.above) if rule.above is not None else False)
                                          | ((values < rule.below) if rule.below is not None else False))
        reasons[broken] = str(rule)
    return reasons.dropna()


def content_order(bundles: list[SiteBundle]) -> pd.Index:
    """Every participant of the bundles, ordered by a hash of its site and its rows, its ID breaking ties only.

    A pseudonym is keyed by a random key made anew for each site output
    folder, so an order by ID would change when the same scans are exported
    again, and with it the rows the cross-validation folds, permutations and
    figures draw from. The hash reads the participant's rows of the bundle's
    participants, QC and feature tables (never its ID), so the order follows
    the data alone, and it still interleaves the sites as the pseudonyms did.
    """
    keys: dict[str, tuple[str, str]] = {}
    for bundle in bundles:
        tables = [bundle.participants, bundle.qc, *bundle.features.values()]
        row_hashes = [pd.util.hash_pandas_object(table, index=False) for table in tables]
        for participant in bundle.participants.index.union(bundle.qc.index, sort=False):
            rows = ";".join(str(hashes.get(participant, "")) for hashes in row_hashes)
            content = hashlib.sha256(f"{bundle.manifest.site};{rows}".encode()).hexdigest()
            keys[participant] = (content, participant)
    return pd.Index(sorted(keys, key=keys.__getitem__), name="participant_id")


def pool_tables(project: Project, bundles: list[SiteBundle], source: Path) -> PooledData:
    """Join the bundles' tables; the sites table says what each site contributed and what was left out.

    Every table lists its participants in :func:`content_order`. Participants
    excluded by the project's QC rules keep their QC row (its ``excluded_by``
    column names the rule) and lose their feature rows.
    """
    order = content_order(bundles)

    def in_order(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[order[order.isin(frame.index)]]

    def stacked(tables: list[pd.DataFrame], sites: list[str]) -> pd.DataFrame:
        frames = [t.assign(**{SITE_COLUMN: s}) for t, s in zip(tables, sites, strict=True)]
        frame = pd.concat(frames)
        return in_order(frame[[SITE_COLUMN, *[c for c in frame.columns if c != SITE_COLUMN]]])

    sites = [b.manifest.site for b in bundles]
    participants = stacked([b.participants[project.share_columns] for b in bundles], sites)
    qc = stacked([b.qc for b in bundles], sites)
    excluded = qc_exclusions(qc, project.qc_exclude, source)
    qc = qc.assign(excluded_by=excluded.reindex(qc.index))
    features = {name: in_order(pd.concat([b.features[name] for b in bundles]))
                .drop(index=excluded.index, errors="ignore") for name in project.feature_sets}
    for name, computed in project.computed.items():
        try:
            features[name] = in_order(computed_table(computed, features))
        except ValueError as error:
            raise SpecError(source, f"computed.{name}", str(error)) from None
    by_rule = qc.loc[excluded.index, SITE_COLUMN].value_counts()
    rows = [{"site": b.manifest.site, "participants": b.manifest.participants,
             "excluded": int((b.qc["status"] != "done").sum()),
             "excluded_by_rule": int(by_rule.get(b.manifest.site, 0)), "neurolearn": b.manifest.neurolearn,
             "date": b.manifest.date, "pseudonymized": b.manifest.pseudonymized,
             "bundle_sha256": b.manifest_sha256} for b in bundles]
    return PooledData(participants, qc, features, pd.DataFrame(rows).sort_values("site", kind="stable"))


def _with_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its index as a leading ``participant_id`` column (copied first: one block, not hundreds)."""
    return frame.copy().reset_index(names="participant_id")


def varying_columns(features: pd.DataFrame, sites: pd.Series) -> pd.DataFrame:
    """The complete columns that vary within every site (ComBat cannot scale a column constant at a site)."""
    complete = features.dropna(axis=1, how="any")
    spread = complete.groupby(sites.loc[complete.index]).std(ddof=0).min(axis=0) if len(complete) else None
    return complete if spread is None else complete.loc[:, spread > 0]


def _covariates(participants: pd.DataFrame, project: Project, ids: pd.Index) -> pd.DataFrame:
    """The shared columns ComBat preserves in the report's views, one-hot coded; rows with a gap dropped."""
    shared = participants.loc[ids, project.share_columns].dropna()
    return encode_confounds(shared)


def harmonized_view(features: pd.DataFrame, participants: pd.DataFrame, project: Project) -> pd.DataFrame:
    """``features`` after ComBat fitted on all of them (for the report's figures only).

    The analyses never see this: their ComBat is fitted inside each training fold.
    Empty when fewer than two participants have every value (nothing to show).
    """
    covariates = _covariates(participants, project, features.index)
    rows = covariates.index
    if len(rows) < 2 or features.shape[1] == 0:
        return features.iloc[0:0]
    site_names = participants.loc[rows, SITE_COLUMN].to_numpy()
    codes = np.unique(site_names, return_inverse=True)[1]
    X = np.hstack([features.loc[rows].to_numpy(float), covariates.to_numpy(float), codes[:, None].astype(float)])
    adjusted = ComBat(n_covariates=covariates.shape[1]).fit(X).transform(X)[:, : features.shape[1]]
    return pd.DataFrame(adjusted, index=rows, columns=features.columns)


def site_effects(data: PooledData, project: Project, seed: int = 0) -> pd.DataFrame:
    """Per feature set, the site-classification AUC before and after ComBat (inside the folds)."""
    rows = []
    for name, features in data.features.items():
        complete = varying_columns(features, data.participants[SITE_COLUMN])
        covariates = _covariates(data.participants, project, complete.index)
        ids = covariates.index
        codes = np.unique(data.participants.loc[ids, SITE_COLUMN].to_numpy(), return_inverse=True)[1]
        effect = site_effect(complete.loc[ids].to_numpy(float), codes, covariates.to_numpy(float), seed=seed)
        rows.append({"feature_set": name, "participants": len(ids), "features": complete.shape[1],
                     "site_auc_raw": effect.raw, "site_auc_combat": effect.harmonized, "folds": effect.folds})
    return pd.DataFrame(rows)


def _description(project: Project, pooled: PooledData) -> dict[str, Any]:
    return {
        "Name": f"neurolearn project {project.name}",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "neurolearn", "Version": __version__,
                         "Description": "Pooled site bundles of a collaborative project"}],
        "SourceDatasets": [{"URL": f"bundle:{row.site}", "Version": row.bundle_sha256}
                           for row in pooled.sites.itertuples()],
    }


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory; choose another --out")
    previous = (out / "logs" / "manifest" / f"{POOL_MANIFEST}.json").is_file()
    if out.is_dir() and any(out.iterdir()) and not previous:
        raise UsageError(f"{out}: directory is not empty and is not a previous pool; choose another --out")


def write_pool(folder: Path, project: Project, source: Path, bundles: list[SiteBundle], *,
               device: str, n_jobs: int, destination: Path | None = None) -> None:
    """Write the pooled tables, run every analysis and write the report into ``folder``.

    ``source`` is the project file (copied into the pool, and named in errors);
    ``destination`` is where ``folder`` is renamed to afterwards (the log names it).
    """
    project_bytes = Path(source).read_bytes()
    from neurolearn_cli.mvpa.analysis import run_analysis
    from neurolearn_cli.project.report import render_project_report

    pooled = pool_tables(project, bundles, source)
    effects = site_effects(pooled, project)
    settings = {"project": sha256_bytes(project_bytes), "bundles": pooled.sites["bundle_sha256"].tolist()}
    writer = DerivativesWriter(folder, POOL_MANIFEST, fingerprint([], settings), resume=False)
    writer.write_json(folder / "dataset_description.json", _description(project, pooled))
    writer.write_bytes(folder / "project.yaml", project_bytes)
    writer.write_table(folder / "sites.tsv", pooled.sites)
    writer.write_table(folder / "site_effects.tsv", effects)
    writer.write_table(folder / "participants.tsv", _with_index(pooled.participants))
    writer.write_table(folder / QC, _with_index(pooled.qc))
    for name, table in pooled.features.items():
        writer.write_table(folder / FEATURES_FOLDER / f"{name}.tsv", _with_index(table))
    results = {}
    for analysis in project.analyses:
        get_logger().info("project %s: analysis %s", project.name, analysis.name)
        try:
            results[analysis.name] = run_analysis(project.analysis_spec(analysis), folder, folder, device=device,
                                                  n_jobs=n_jobs, destination=destination).results
        except SpecError as error:  # a field that does not fit the pooled data: name the project file's field
            raise SpecError(source, f"analyses.{analysis.name}.{error.field}", error.field_problem) from None
    views = {name: harmonized_view(varying_columns(table, pooled.participants[SITE_COLUMN]), pooled.participants,
                                   project) for name, table in pooled.features.items()}
    writer.write_text(folder / "report.html", render_project_report(project, project_bytes, pooled, views,
                                                                   effects, results))


def pool_project(project_path: Path, bundle_paths: list[Path], out: Path, *, device: str = "auto",
                 n_jobs: int = 1) -> Path:
    """Verify ``bundle_paths`` against the project and pool them into ``out``; return ``out``.

    Raises
    ------
    InputError
        A bad bundle (one line naming it and the problem); nothing is written.
    UsageError
        A neurolearn outside the project's range, no bundle, or ``out`` taken.
    """
    project = load_project(project_path)
    project.require_version()
    if not bundle_paths:
        raise UsageError("name at least one site bundle")
    bundles = open_bundles(bundle_paths, project, project_sha256(project_path))
    out = Path(out).absolute()
    _check_target(out)
    with atomic.staged_folder(out) as staging:
        write_pool(staging, project, Path(project_path), bundles, device=device, n_jobs=n_jobs, destination=out)
    return out


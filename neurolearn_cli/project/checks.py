"""Open and verify site bundles before anything is pooled.

Each check names the bundle and the problem in one line (an
:class:`~neurolearn_cli.errors.InputError`, exit 2): an edited or missing
file (checksums), a bundle of another project or of a neurolearn outside
the project's range, missing tables or columns, feature columns that differ
between sites, two bundles of one site or of another workflow, and a
participant ID found in two bundles.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from neurolearn_cli.derivatives import sha256_bytes
from neurolearn_cli.errors import InputError
from neurolearn_cli.project.bundle import (
    MANIFEST,
    PARTICIPANTS,
    QC,
    BundleManifest,
    parse_manifest,
    read_bundle,
)
from neurolearn_cli.project.model import FEATURES_FOLDER, Project


@dataclass(frozen=True)
class SiteBundle:
    """A verified bundle's manifest (and its digest, which names the bundle) and tables (each indexed by ``participant_id``)."""

    path: Path
    manifest: BundleManifest
    manifest_sha256: str
    participants: pd.DataFrame
    qc: pd.DataFrame
    features: dict[str, pd.DataFrame]


def _table(path: Path, files: dict[str, bytes], name: str) -> pd.DataFrame:
    if name not in files:
        raise InputError(path, f"no {name} in the bundle")
    try:
        frame = pd.read_csv(io.BytesIO(files[name]), sep="\t", na_values=["n/a"], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(path, f"{name}: cannot parse the table ({str(exc).splitlines()[0]})") from None
    if "participant_id" not in frame.columns:
        raise InputError(path, f"{name}: no participant_id column")
    if frame["participant_id"].duplicated().any():
        raise InputError(path, f"{name}: participant {frame['participant_id'][frame['participant_id'].duplicated()].iloc[0]} "
                               "appears twice")
    return frame.set_index("participant_id")


def _check_files(path: Path, files: dict[str, bytes], manifest: BundleManifest) -> None:
    present = set(files) - {MANIFEST}
    for name in sorted(set(manifest.files) - present):
        raise InputError(path, f"{name} is listed in the manifest but missing")
    for name in sorted(present - set(manifest.files)):
        raise InputError(path, f"{name} is not in the manifest (added after export?)")
    for name, digest in sorted(manifest.files.items()):
        if sha256_bytes(files[name]) != digest:
            raise InputError(path, f"{name}: checksum differs from the manifest (edited after export?)")


def open_bundle(path: Path, project: Project, project_digest: str) -> SiteBundle:
    """Read ``path`` and check it on its own: checksums, project, version, tables and columns."""
    files = read_bundle(path)
    manifest = parse_manifest(path, files)
    _check_files(path, files, manifest)
    if manifest.project_sha256 != project_digest:
        raise InputError(path, f"made for another project ('{manifest.project}', sha256 {manifest.project_sha256[:12]}), "
                               f"not this '{project.name}' (sha256 {project_digest[:12]})")
    if not project.accepts(manifest.neurolearn):
        raise InputError(path, f"made with neurolearn {manifest.neurolearn}, outside the project's range {project.neurolearn}")
    participants = _table(path, files, PARTICIPANTS)
    missing = [c for c in project.share_columns if c not in participants.columns]
    if missing:
        raise InputError(path, f"{PARTICIPANTS}: missing column '{missing[0]}' (the project shares it)")
    qc = _table(path, files, QC)
    if "status" not in qc.columns:
        raise InputError(path, f"{QC}: no status column")
    features = {}
    for name in project.feature_sets:
        table = _table(path, files, f"{FEATURES_FOLDER}/{name}.tsv")
        text = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
        if text:
            raise InputError(path, f"{FEATURES_FOLDER}/{name}.tsv: column '{text[0]}' is not numeric")
        unknown = sorted(set(table.index) - set(participants.index))
        if unknown:
            raise InputError(path, f"{FEATURES_FOLDER}/{name}.tsv: {unknown[0]} is not in {PARTICIPANTS}")
        features[name] = table
    return SiteBundle(Path(path), manifest, sha256_bytes(files[MANIFEST]), participants, qc, features)


def _columns_differ(first: pd.DataFrame, other: pd.DataFrame) -> str:
    missing = [c for c in first.columns if c not in other.columns]
    extra = [c for c in other.columns if c not in first.columns]
    if missing:
        return f"missing column '{missing[0]}'" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
    if extra:
        return f"extra column '{extra[0]}'" + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
    return "columns in another order"


def check_together(bundles: list[SiteBundle]) -> None:
    """Check the bundles against each other: sites, workflow, feature columns, participant IDs."""
    first = bundles[0]
    seen_sites: dict[str, Path] = {}
    seen_ids: dict[str, Path] = {}
    for bundle in bundles:
        site = bundle.manifest.site
        if site in seen_sites:
            raise InputError(bundle.path, f"site '{site}' is also the site of bundle {seen_sites[site]}")
        seen_sites[site] = bundle.path
        if bundle.manifest.workflow_fingerprint != first.manifest.workflow_fingerprint:
            raise InputError(bundle.path, f"ran another local workflow than bundle {first.path} (its options, "
                                          "atlas or neurolearn version's defaults differ)")
        for name, table in bundle.features.items():
            reference = first.features[name]
            if list(table.columns) != list(reference.columns):
                raise InputError(bundle.path, f"{FEATURES_FOLDER}/{name}.tsv: {_columns_differ(reference, table)} "
                                              f"compared with bundle {first.path}")
        for participant in bundle.participants.index:
            if participant in seen_ids:
                raise InputError(bundle.path, f"participant {participant} is also in bundle {seen_ids[participant]}")
            seen_ids[participant] = bundle.path


def open_bundles(paths: list[Path], project: Project, project_digest: str) -> list[SiteBundle]:
    """Every bundle opened and verified, alone and together (nothing is written)."""
    bundles = [open_bundle(path, project, project_digest) for path in paths]
    check_together(bundles)
    return bundles

"""``project export``: turn a site's outputs into a bundle that holds nothing identifying.

Only numbers leave the site: the project's feature sets (a ``morph`` set
holds the parcels' thickness too where the project's workflow makes
surfaces: :meth:`~neurolearn_cli.project.model.Project.site_features`), the shared
participants.tsv columns, and the QC table (status and T1w IQMs). Free text
(failure reasons, sidecar metadata) and images stay. Participants whose run
did not finish are listed with their status in ``qc.tsv`` and in the
manifest, and have no feature row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from neurolearn_cli import __version__, atomic
from neurolearn_cli.derivatives import sha256_bytes
from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.mvpa.dataset import read_participants
from neurolearn_cli.mvpa.features import load_features
from neurolearn_cli.mvpa.spec import FeatureSpec
from neurolearn_cli.project.bundle import (
    MANIFEST,
    PARTICIPANTS,
    QC,
    SITE_PATTERN,
    BundleManifest,
    write_bundle,
)
from neurolearn_cli.project.model import FEATURES_FOLDER, Project, project_sha256
from neurolearn_cli.project.pin import RECORD_FOLDER, read_record
from neurolearn_cli.project.pseudonym import pseudonym, site_key

NOT_RUN = "not run"


def participant_status(output_dir: Path, participants: pd.Index) -> pd.Series:
    """Each participant's run status from ``logs/status``; ``not run`` where there is none."""
    status = pd.Series(NOT_RUN, index=participants, name="status")
    for path in sorted((Path(output_dir) / "logs" / "status").glob("sub-*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(path, "participant status is not valid JSON") from None
        if record.get("participant_id") in status.index:
            status[record["participant_id"]] = str(record.get("status", NOT_RUN))
    return status


#: A text column with more distinct values than this (or than half the participants) is free text, not a code.
MAX_TEXT_LEVELS = 10


def _shared_columns(participants: pd.DataFrame, project: Project, path: Path) -> pd.DataFrame:
    """The project's shared columns; a text column that reads as free text (not a coded variable) is refused."""
    missing = [c for c in project.share_columns if c not in participants.columns]
    if missing:
        raise InputError(path, f"no column '{missing[0]}' (project '{project.name}' shares it)")
    for column in project.share_columns:
        values = participants[column].dropna()
        levels = values.nunique()
        if not pd.api.types.is_numeric_dtype(values) and levels > max(MAX_TEXT_LEVELS, len(values) // 2):
            raise InputError(path, f"column '{column}' reads as free text ({levels} different values): share a "
                                   "coded column instead (no free text leaves the site)")
    return participants[project.share_columns]


def _qc_table(project: Project, output_dir: Path, status: pd.Series) -> pd.DataFrame:
    table = status.to_frame()
    if "qc" in project.workflow.stages and (status == "done").any():
        iqms = load_features(FeatureSpec(kind="iqm", modality="T1w"), output_dir).values
        table = table.join(iqms[[c for c in iqms.columns if c != "participant_id"]], how="left")
    return table


def _with_ids(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """``frame`` (indexed by participant) with a leading ``participant_id`` column of ``names``, sorted by it."""
    out = frame.reset_index(drop=True)
    out.insert(0, "participant_id", [names[p] for p in frame.index])
    return out.sort_values("participant_id", kind="stable")


def _selected(participants: pd.DataFrame, labels: list[str] | None) -> pd.DataFrame:
    if not labels:
        return participants
    wanted = [label if label.startswith("sub-") else f"sub-{label}" for label in labels]
    unknown = [p for p in wanted if p not in participants.index]
    if unknown:
        raise UsageError(f"--participant-label: {unknown[0]} is not in participants.tsv")
    return participants.loc[wanted]


def export_bundle(project: Project, project_path: Path, bids_dir: Path, output_dir: Path, site: str, out: Path,
                  *, keep_ids: bool = False, labels: list[str] | None = None) -> BundleManifest:
    """Write ``project``'s bundle of ``site`` at ``out`` from ``bids_dir``'s participants and ``output_dir``'s outputs.

    ``labels`` limits the bundle to those participants (e.g. those who
    consented to the project); by default every participant of
    participants.tsv is in it, each with its run status.

    Raises
    ------
    InputError
        OUTPUT_DIR not run with this project, a shared column missing from
        participants.tsv, or unreadable features.
    UsageError
        A neurolearn version outside the project's range, or ``out`` taken.
    """
    if not re.fullmatch(SITE_PATTERN, site):
        raise UsageError(f"--site '{site}': a site name is letters, digits, - and _")
    project.require_version()
    record = read_record(output_dir, project, project_path)
    participants = _selected(read_participants(bids_dir), labels)
    shared = _shared_columns(participants, project, Path(bids_dir) / "participants.tsv")
    status = participant_status(output_dir, participants.index)
    done = status.index[status == "done"]
    if keep_ids:
        names = {p: p for p in participants.index}
    else:
        key = site_key(Path(output_dir) / RECORD_FOLDER, project.name)
        names = {p: pseudonym(key, p) for p in participants.index}
    files: dict[str, bytes] = {}
    finished = set(done)
    for name in project.feature_sets:
        values = load_features(project.site_features(name), output_dir).values if finished else pd.DataFrame()
        values = values.loc[[p for p in values.index if p in finished]]
        files[f"{FEATURES_FOLDER}/{name}.tsv"] = atomic.tsv_text(_with_ids(values, names), "%.8g").encode()
    files[PARTICIPANTS] = atomic.tsv_text(_with_ids(shared, names)).encode()
    files[QC] = atomic.tsv_text(_with_ids(_qc_table(project, output_dir, status), names)).encode()
    not_done = {state: sorted(names[p] for p in status.index[status == state])
                for state in sorted(set(status) - {"done"})}
    manifest = BundleManifest(project=project.name, project_sha256=project_sha256(project_path), site=site,
                              neurolearn=__version__, workflow_fingerprint=record["workflow_fingerprint"],
                              date=record["date"], pseudonymized=not keep_ids, participants=len(done),
                              not_done=not_done, files={n: sha256_bytes(d) for n, d in sorted(files.items())})
    files[MANIFEST] = atomic.dumps_json(manifest.model_dump(mode="json")).encode()
    if not keep_ids:
        mapping = pd.DataFrame({"participant_id": list(names), "pseudonym": list(names.values())})
        atomic.write_tsv(Path(output_dir) / RECORD_FOLDER / f"{project.name}_pseudonyms.tsv", mapping)
    write_bundle(files, out)
    return manifest

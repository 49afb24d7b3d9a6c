"""A site bundle: the small files a site shares with the pool, and their manifest.

A bundle is a folder, or the same files in one ``.tar.gz`` (for e-mail),
holding::

    manifest.json          project digest, site, neurolearn version, workflow fingerprint, every file's SHA-256
    participants.tsv       participant_id and the project's shared columns
    qc.tsv                 participant_id, status (done | failed | skipped | not run) and the T1w IQMs
    features/<set>.tsv     one table per feature set, participant_id first

Both forms are written byte-reproducibly (sorted members, no timestamps, no
owner), so exporting the same outputs with the same key gives the same bytes.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurolearn_cli import atomic
from neurolearn_cli.errors import InputError, UsageError

MANIFEST = "manifest.json"
PARTICIPANTS = "participants.tsv"
QC = "qc.tsv"
BUNDLE_FORMAT = "neurolearn-site-bundle/1"
SITE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class BundleManifest(BaseModel):
    """What a bundle says about itself; ``files`` maps every other file of the bundle to its SHA-256."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = BUNDLE_FORMAT
    project: str
    project_sha256: str
    site: str = Field(pattern=SITE_PATTERN)
    neurolearn: str
    workflow_fingerprint: str
    date: str
    pseudonymized: bool
    participants: int
    not_done: dict[str, list[str]]
    files: dict[str, str]


def is_archive(path: Path) -> bool:
    """Whether ``path`` names the one-file form of a bundle."""
    return Path(path).name.endswith((".tar.gz", ".tgz"))


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    return atomic.gzip_bytes(buffer.getvalue())


def write_bundle(files: dict[str, bytes], out: Path) -> Path:
    """Write ``files`` (bundle path -> bytes) at ``out``: one archive, or a folder filled then renamed into place.

    Raises
    ------
    UsageError
        ``out`` exists and is not a previous bundle.
    """
    out = Path(out)
    if out.exists() and not (is_archive(out) and out.is_file() or (out / MANIFEST).is_file()):
        raise UsageError(f"{out}: exists and is not a site bundle; choose another --out")
    if is_archive(out):
        return atomic.write_bytes(out, _archive(files))
    with atomic.staged_folder(out) as staging:
        for name, data in files.items():
            atomic.write_bytes(staging / name, data)
    return out


def read_bundle(path: Path) -> dict[str, bytes]:
    """Every file of a bundle (folder or archive), by its path inside the bundle.

    Raises
    ------
    InputError
        Not found, or an archive that cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    if not path.is_file():
        raise InputError(path, "bundle not found")
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            return {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                    for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(path, f"not a readable .tar.gz bundle ({exc})") from None


def parse_manifest(path: Path, files: dict[str, bytes]) -> BundleManifest:
    """The bundle's manifest, validated; a missing or malformed one is an :class:`InputError` naming the bundle."""
    if MANIFEST not in files:
        raise InputError(path, f"no {MANIFEST}: not a neurolearn site bundle")
    try:
        manifest = BundleManifest.model_validate_json(files[MANIFEST])
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(path, f"{MANIFEST}: field '{'.'.join(map(str, first['loc']))}' {first['msg'].lower()}") from None
    if manifest.format != BUNDLE_FORMAT:
        raise InputError(path, f"{MANIFEST}: format '{manifest.format}' is not {BUNDLE_FORMAT}")
    return manifest

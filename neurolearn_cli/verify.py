"""Check derivatives against the hash manifest recorded at write time, or against another run.

Every file the derivatives writer produces is recorded with its SHA-256 in
``OUTPUT_DIR/logs/manifest/<owner>.json``. Logs themselves (run ids, times)
are not compared; of ``logs/``, only what the writer recorded (``CITATION.md``)
is checked. A temporary file of the atomic writer left anywhere (a write
interrupted by a killed run) is a problem too.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from neurolearn_cli.atomic import temporaries
from neurolearn_cli.derivatives import sha256_file
from neurolearn_cli.errors import InputError, UsageError


@dataclass
class VerifyReport:
    """Differences found; empty lists mean everything matches."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing differs and no temporary file is left."""
        return not (self.changed or self.missing or self.extra or self.temporary)


def recorded_hashes(output_dir: Path) -> dict[str, str]:
    """Path -> SHA-256 from every manifest under ``logs/manifest``."""
    manifest_dir = output_dir / "logs" / "manifest"
    manifests = sorted(manifest_dir.glob("*.json")) if manifest_dir.is_dir() else []
    if not manifests:
        raise InputError(manifest_dir, "no hash manifest found: not a neurolearn output directory")
    hashes: dict[str, str] = {}
    for manifest in manifests:
        try:
            records = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError:
            raise InputError(manifest, "manifest is not valid JSON") from None
        hashes.update({path: record["sha256"] for path, record in records.items()})
    return hashes


def tree_hashes(output_dir: Path, logs: Collection[str] = ()) -> dict[str, str]:
    """Path -> SHA-256 of every data file in a derivatives tree; of ``logs/``, only the paths in ``logs``."""
    hashes = {}
    for path in sorted(output_dir.rglob("*")):
        relative = path.relative_to(output_dir).as_posix()
        wanted = not relative.startswith("logs/") or relative in logs
        if path.is_file() and wanted and not path.name.startswith("."):
            hashes[relative] = sha256_file(path)
    return hashes


def compare(expected: dict[str, str], actual: dict[str, str]) -> VerifyReport:
    """Compare two path -> hash maps."""
    report = VerifyReport(checked=len(expected))
    report.missing = sorted(set(expected) - set(actual))
    report.extra = sorted(set(actual) - set(expected))
    report.changed = sorted(p for p in set(expected) & set(actual) if expected[p] != actual[p])
    return report


def verify(output_dir: Path, against: Path | None = None) -> VerifyReport:
    """Verify ``output_dir`` against its manifest, or against another output directory.

    Temporary files left in ``output_dir`` are listed relative to it, those in
    ``against`` by their path.
    """
    for directory in filter(None, (output_dir, against)):
        if not directory.is_dir():
            raise UsageError(f"{directory}: not a directory")
    if against is None:
        recorded = recorded_hashes(output_dir)
        report = compare(recorded, tree_hashes(output_dir, logs=recorded.keys()))
    else:
        report = compare(tree_hashes(against), tree_hashes(output_dir))
    report.temporary = [path.relative_to(output_dir).as_posix() for path in temporaries(output_dir)]
    if against is not None:
        report.temporary += [str(path) for path in temporaries(against)]
    return report

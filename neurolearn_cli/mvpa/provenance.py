"""Provenance of an analysis: software versions and input file hashes."""

from __future__ import annotations

import hashlib
import platform
from importlib import metadata
from pathlib import Path

_PACKAGES = ("neurolearn", "numpy", "scipy", "scikit-learn", "pandas", "torch", "nibabel")


def versions() -> dict[str, str]:
    """Python's and the key packages' versions (deterministic for one environment)."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_hashes(paths: list[Path]) -> dict[str, str]:
    """``{path: sha256}`` for each distinct input file."""
    return {str(p): sha256(p) for p in sorted(set(paths))}

"""Provenance of an analysis: software versions and input file hashes; its timing, kept apart."""

from __future__ import annotations

import datetime as dt
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from neurolearn_cli.derivatives import sha256_file

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


def input_hashes(paths: list[Path], root: Path) -> dict[str, str]:
    """``{path: sha256}`` for each distinct input file, paths relative to ``root`` (no absolute path is written)."""
    return {os.path.relpath(Path(p).absolute(), Path(root).absolute()): sha256_file(Path(p))
            for p in sorted(set(paths))}


def provenance(seed: int, inputs: list[Path], root: Path, device: str) -> dict[str, Any]:
    """What an analysis ran with: versions, input hashes, seed and device (no time: same run, same bytes).

    Input paths are relative to ``root`` (the output directory), as
    ``dataset_description.json`` names the raw data, so the same analysis of
    the same files in another place records the same inputs.
    """
    return {"versions": versions(), "inputs": input_hashes(inputs, root), "seed": seed, "device": device}


def timing(started: float, seconds: dict[str, float]) -> dict[str, Any]:
    """When an analysis started and finished, and how long each step took.

    ``seconds`` names each timed step (e.g. ``nested_cv_seconds``); values are rounded to ms.
    """
    return {
        "started": dt.datetime.fromtimestamp(started, tz=dt.timezone.utc).isoformat(timespec="seconds"),
        "finished": dt.datetime.now(tz=dt.timezone.utc).isoformat(timespec="seconds"),
        **{name: round(value, 3) for name, value in seconds.items()},
    }

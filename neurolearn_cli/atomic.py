"""Atomic, byte-reproducible file writes.

Every output is written to a temporary name in its final directory and then
renamed into place, so a killed run never leaves a partial file at a final
path. Data files carry no timestamps (gzip mtime 0, sorted JSON keys), so the
same inputs give the same bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from isal import igzip


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises
    ------
    OSError
        When the directory cannot be created or the disk is full; the
        temporary file is removed, and nothing appears at ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(error.errno, f"cannot write {path}: {error.strerror or error}") from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def temporaries(directory: str | Path, name: str = "") -> list[Path]:
    """The temporary files of :func:`write_bytes` (``.<name>.<random>.part``) under ``directory``, sorted.

    With ``name``, only those of that final file name. Outside a write in
    progress, one is what a killed run left.
    """
    directory = Path(directory)
    return sorted(directory.rglob(f".{name}*.part")) if directory.is_dir() else []


def remove_temporaries(directory: str | Path, name: str = "") -> list[Path]:
    """Delete the temporary files a killed run left under ``directory``; return them.

    Only :func:`temporaries` are touched. Call it before a participant's work
    starts, never while another process writes the same files.
    """
    stale = temporaries(directory, name)
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


@contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` to fill; renamed to ``out`` (replacing it) when the block ends without error.

    A failure or a kill leaves ``out`` as it was and no half-filled folder at
    its path (an interrupted staging folder is a dot-folder beside it).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial"))
    try:
        yield staging
        staging.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps_json(payload: Any) -> str:
    """Serialise to deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(payload, indent=2, sort_keys=True, default=_json_default, allow_nan=False) + "\n"


def write_json(path: str | Path, payload: Any) -> Path:
    """Write deterministic JSON atomically."""
    return write_text(path, dumps_json(payload))


def tsv_text(frame: Any, float_format: str = "%.6g") -> str:
    """A pandas DataFrame as BIDS TSV text (tab-separated, ``n/a`` for missing, no index)."""
    return str(frame.to_csv(sep="\t", index=False, na_rep="n/a", float_format=float_format, lineterminator="\n"))


def write_tsv(path: str | Path, frame: Any, float_format: str = "%.6g") -> Path:
    """Write a pandas DataFrame as a BIDS TSV atomically (see :func:`tsv_text`)."""
    return write_text(path, tsv_text(frame, float_format))


def gzip_bytes(raw: bytes, compresslevel: int = 2) -> bytes:
    """Gzip ``raw`` with mtime 0 and no file name, so identical data give identical bytes.

    ISA-L's deflate (``compresslevel`` 0-3) is about 10x faster than zlib's
    level 6 at the same size on our images (0.1 s instead of 1 s for a
    160 MB 0.7 mm map); any gzip reader reads it.
    """
    return igzip.compress(raw, compresslevel=compresslevel, mtime=0)


def write_nifti(path: str | Path, image: Any, compresslevel: int = 2) -> Path:
    """Write a nibabel image atomically; ``.nii.gz`` is gzipped with mtime 0."""
    path = Path(path)
    raw = image.to_bytes()
    return write_bytes(path, gzip_bytes(raw, compresslevel) if path.name.endswith(".gz") else raw)

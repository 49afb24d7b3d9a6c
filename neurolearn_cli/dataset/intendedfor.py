"""Resolve a fieldmap's ``IntendedFor`` to dataset-relative paths (pure string work).

BIDS allows two forms: ``bids::sub-01/func/..._bold.nii.gz`` (BIDS URI,
relative to the dataset root) and the legacy form relative to the subject
directory (``func/..._bold.nii.gz`` or ``ses-1/func/...``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import Path

from neurolearn_cli.errors import InputError

_URI = "bids::"


def resolve_intended_for(
    intended_for: str | Sequence[str], fieldmap_path: str, sidecar: str | Path | None = None
) -> list[str]:
    """Dataset-relative POSIX paths the fieldmap applies to.

    Parameters
    ----------
    intended_for : str or sequence of str
        The sidecar's IntendedFor value.
    fieldmap_path : str
        The fieldmap's own dataset-relative path (``sub-01/fmap/...``), which
        gives the subject directory for the legacy form.
    sidecar : path, optional
        Named in errors: a value that leaves the dataset, or another form of
        URI (``bids:<name>:`` of another dataset), is an :class:`InputError`.
    """
    values = [intended_for] if isinstance(intended_for, str) else list(intended_for)
    subject = fieldmap_path.replace("\\", "/").split("/")[0]
    if not subject.startswith("sub-"):
        raise InputError(
            sidecar, f"fieldmap path {fieldmap_path!r} does not start with a sub- directory"
        )
    resolved = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise InputError(sidecar, f"IntendedFor entry {value!r} is not a path")
        if value.startswith(_URI):
            path = value[len(_URI) :]
        elif value.startswith("bids:"):
            raise InputError(sidecar, f"IntendedFor {value!r} points into another dataset")
        else:
            path = posixpath.join(subject, value)
        path = posixpath.normpath(path.replace("\\", "/"))
        if path.startswith("../") or path == ".." or posixpath.isabs(path):
            raise InputError(sidecar, f"IntendedFor {value!r} leaves the dataset")
        resolved.append(path)
    return resolved

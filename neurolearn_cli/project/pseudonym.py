"""Pseudonymous participant IDs: a keyed hash whose key never leaves the site.

``sub-<label>`` becomes ``sub-<first 16 hex digits of HMAC-SHA256(key, label)>``.
The key (32 random bytes) is made once per project in the site's OUTPUT_DIR,
under ``logs/project/`` (which ``neurolearn verify`` does not compare), and
reused by every export, so a participant keeps one pseudonym across exports;
the site also keeps the table mapping its IDs to the pseudonyms. Without the
key, a pseudonym cannot be traced back, nor recomputed from a guessed ID.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from neurolearn_cli import atomic

KEY_BYTES = 32
PSEUDONYM_HEX = 16


def site_key(folder: Path, project: str) -> bytes:
    """The site's key for ``project``, made (readable by its owner only) on first use."""
    path = Path(folder) / f"{project}.key"
    if path.is_file():
        return path.read_bytes()
    atomic.write_bytes(path, os.urandom(KEY_BYTES))
    path.chmod(0o600)
    return path.read_bytes()


def pseudonym(key: bytes, participant_id: str) -> str:
    """The pseudonym of ``sub-<label>`` under ``key`` (a valid BIDS participant ID)."""
    label = participant_id.removeprefix("sub-")
    return "sub-" + hmac.new(key, label.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]

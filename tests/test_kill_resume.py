"""Kill -9 in the middle of a participant, resume, and end with the same bytes as an uninterrupted run.

The uninterrupted run is the session's ``pipeline_run``; this second run of
the same inputs and seed, read from a copy of the dataset at another path, is
killed while the fmri stage writes its outputs, then started again. It checks,
in one go, the resume rules (finished outputs kept, no partial file at a final
path, temporaries cleared) and reproducibility across runs and data copies
(``neurolearn verify --against``: no absolute path in the outputs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurolearn_cli.derivatives import sha256_file
from neurolearn_cli.verify import verify

pytestmark = pytest.mark.slow

SUB = "sub-01"


def recorded(out: Path) -> dict[str, dict[str, str]]:
    """The participant's manifest, or nothing before its first write."""
    try:
        return json.loads((out / "logs" / "manifest" / f"{SUB}.json").read_text())
    except (OSError, ValueError):
        return {}


def kill_when_fmri_writes(command: list[str], out: Path, timeout_s: float = 3600) -> int:
    """Run ``command`` and SIGKILL it as soon as the manifest records a functional output; return its exit status."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        while process.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"no functional output recorded within {timeout_s} s")
            if any(path.startswith(f"{SUB}/func/") for path in recorded(out)):
                os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.02)
        return process.returncode
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_killed_run_resumes_to_the_uninterrupted_outputs(pipeline_run, tmp_path, cli):
    source, reference, codes = pipeline_run
    assert codes == [0, 0]
    bids = shutil.copytree(source, tmp_path / "bids")  # the outputs name it relative to them: "../bids"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "neurolearn_cli", str(bids), str(out), "participant", "--omp-nthreads", "2"]
    assert kill_when_fmri_writes(command, out) == -signal.SIGKILL
    assert not (out / "logs" / "status" / f"{SUB}.json").exists(), "the participant finished before the kill"

    # every file at a final path is whole: what the manifest records matches, the rest is absent or hidden
    report = verify(out)
    assert not report.changed and not report.missing
    assert report.temporary == [path.relative_to(out).as_posix() for path in sorted(out.rglob(".*.part"))]
    anat = {p: sha256_file(out / p) for p in recorded(out) if p.startswith(f"{SUB}/anat/")}
    assert anat, "smri had finished before the kill"
    mtimes = {p: (out / p).stat().st_mtime_ns for p in anat}

    code, _, err = cli(bids, out, "participant", "--omp-nthreads", "2")
    assert code == 0, err
    assert {p: (out / p).stat().st_mtime_ns for p in anat} == mtimes, "finished outputs were rewritten"
    assert not list(out.rglob(".*.part"))
    code, _, err = cli(bids, out, "group", "--omp-nthreads", "2")
    assert code == 0, err

    assert verify(out).ok
    difference = verify(out, against=reference)
    assert difference.ok, (difference.changed, difference.missing, difference.extra, difference.temporary)
    code, stdout, _ = cli("verify", out, "--against", reference)
    assert code == 0, stdout

"""A worker killed as the kernel's out-of-memory killer does (SIGKILL) fails its participant only.

The run is real: ``neurolearn`` in a subprocess with ``--nprocs 2``, whose
worker processes are spawned. Spawned workers do not see a test's monkeypatch,
but they run the parent's main script again before their work: the script
below registers a stand-in smri stage there, which kills its own worker for
one participant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neurolearn_cli.run import worker_death

KILLED = "02"
REASON = "worker killed by signal 9, possibly out of memory: lower --nprocs or raise --mem-gb"

SCRIPT = f'''
import os
import signal
import sys

from neurolearn_cli import stages


def stand_in(participant, context):
    """Kill this worker for sub-{KILLED}; do nothing for the others."""
    if participant.label == "{KILLED}":
        os.kill(os.getpid(), signal.SIGKILL)


stages.PARTICIPANT_STAGES["smri"] = "__main__:stand_in"

if __name__ == "__main__":
    from neurolearn_cli.cli.app import main

    main(sys.argv[1:])
'''


@pytest.mark.slow
def test_killed_worker_fails_its_participant_only(make_bids, tmp_path):
    bids = make_bids(("01", "02", "03"))
    out = tmp_path / "out"
    script = tmp_path / "neurolearn_stand_in.py"
    script.write_text(SCRIPT, encoding="utf-8")
    command = [sys.executable, str(script), str(bids), str(out), "participant", "--stages", "smri",
               "--nprocs", "2", "--omp-nthreads", "1", "--skip-bids-validation"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "COLUMNS": "300"})

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    statuses = {label: json.loads((out / "logs" / "status" / f"sub-{label}.json").read_text())
                for label in ("01", "02", "03")}
    assert statuses["01"]["status"] == statuses["03"]["status"] == "done"
    assert statuses[KILLED] == {"participant_id": f"sub-{KILLED}", "status": "failed", "reason": REASON}
    summary = [line for line in result.stderr.splitlines() if KILLED in line and "failed" in line]
    assert summary and REASON in summary[-1], result.stderr
    assert "2 of 3 participants completed" in result.stderr


def test_worker_death_reasons():
    assert worker_death(-9) == REASON
    assert worker_death(-11) == "worker killed by signal 11"
    assert worker_death(3) == "worker exited with code 3"

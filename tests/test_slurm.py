"""SLURM: the scripts neurolearn writes, and a real job array on a single-node SLURM started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurolearn_cli.slurm import SlurmSettings, group_script, participant_script

REPO = Path(__file__).resolve().parents[1]


def test_scripts_run_one_participant_per_task_then_group(tmp_path):
    settings = SlurmSettings(cpus=3, mem_gb=5, time="01:00:00", partition="short")
    array = participant_script(["01", "02", "x y"], tmp_path / "bids", tmp_path / "out", settings, ["--seed", "4"])
    assert "#SBATCH --array=0-2" in array and "#SBATCH --cpus-per-task=3" in array and "#SBATCH --mem=5G" in array
    assert "#SBATCH --partition=short" in array
    assert "labels=(01 02 'x y')" in array
    assert '--participant-label "$label" --nprocs 1 --omp-nthreads 3 --seed 4' in array
    group = group_script(tmp_path / "bids", tmp_path / "out", SlurmSettings(container=tmp_path / "nl.sif"), [])
    assert " group --omp-nthreads 4" in group and "apptainer run --cleanenv" in group and "nl.sif" in group


def _slurm_local(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / ".ci" / "slurm-local.sh"), action], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="session")
def local_slurm() -> Iterator[list[str]]:
    """A single-node SLURM for the session; yields a list for the ids of the jobs a test submits.

    At the end, cancels those jobs and stops the daemons this fixture started
    (a SLURM that was already running is left as it was).
    """
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root")
    result = _slurm_local("start")
    started = "already running" not in result.stdout
    submitted: list[str] = []
    try:
        if result.returncode != 0 or shutil.which("sbatch") is None:
            pytest.fail(f"could not start a local SLURM: {result.stderr.strip()[-500:]}")
        yield submitted
    finally:
        if submitted and shutil.which("scancel"):
            subprocess.run(["scancel", *submitted], capture_output=True, timeout=60)
        if started:
            stopped = _slurm_local("stop")
            assert stopped.returncode == 0, stopped.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CI") != "true" and not os.environ.get("NEUROLEARN_TEST_SLURM"),
                    reason="starts a real SLURM: runs under CI=true or NEUROLEARN_TEST_SLURM=1")
def test_job_array_on_real_slurm(tmp_path, cli, local_slurm):
    from neurolearn_cli.example_data import write_example_dataset

    bids = write_example_dataset(tmp_path / "bids", participants=2, seed=5, volumes=30)
    out = tmp_path / "out"
    code, stdout, _ = cli("slurm", bids, out, "--cpus", "1", "--mem-gb", "4", "--time", "00:30:00",
                          "--stages", "smri,qc", "--submit")
    assert code == 0, stdout
    array_id, group_id = stdout.strip().splitlines()[-1].removeprefix("submitted array ").split(" and group job ")
    group_id = group_id.split()[0]
    local_slurm += [array_id, group_id]
    deadline = time.time() + 1200
    while time.time() < deadline:
        queue = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
        if not queue.strip():
            break
        time.sleep(5)
    else:
        pytest.fail(f"SLURM jobs still queued: {queue}")
    logs = "\n".join(p.read_text() for p in sorted((out / "logs" / "slurm").glob("*.out")))
    for label in ("01", "02"):
        assert (out / f"sub-{label}" / "anat" / f"sub-{label}_desc-preproc_T1w.nii.gz").is_file(), logs
        assert (out / f"sub-{label}.html").is_file(), logs
    assert (out / "group_T1w.html").is_file(), logs
    assert list((out / "logs" / "slurm").glob(f"group-{group_id}.out"))

"""SLURM: the scripts neurolearn writes, and a real job array on a single-node SLURM started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
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


def _start_slurm() -> None:
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root")
    result = subprocess.run(["bash", str(REPO / ".ci" / "slurm-local.sh"), "start"], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0 or shutil.which("sbatch") is None:
        pytest.fail(f"could not start a local SLURM: {result.stderr.strip()[-500:]}")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CI") != "true" and not os.environ.get("NEUROLEARN_TEST_SLURM"),
                    reason="starts a real SLURM: runs under CI=true or NEUROLEARN_TEST_SLURM=1")
def test_job_array_on_real_slurm(tmp_path, cli):
    from neurolearn_cli.example_data import write_example_dataset

    _start_slurm()
    bids = write_example_dataset(tmp_path / "bids", participants=2, seed=5, volumes=30)
    out = tmp_path / "out"
    code, stdout, _ = cli("slurm", bids, out, "--cpus", "1", "--mem-gb", "4", "--time", "00:30:00",
                          "--stages", "smri,qc", "--submit")
    assert code == 0, stdout
    group_id = stdout.strip().splitlines()[-1].split("group job ")[1].split()[0]
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

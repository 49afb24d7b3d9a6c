"""SLURM: the scripts neurolearn writes, and a real job array on a single-node SLURM started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from neurolearn_cli.errors import UsageError
from neurolearn_cli.slurm import SlurmSettings, group_script, participant_script
from neurolearn_cli.slurm_partition import check_request, format_time, parse_sinfo, parse_time

REPO = Path(__file__).resolve().parents[1]
#: ``sinfo --Node`` on a cluster of one 2-CPU node (default partition) and a big node in a 1-hour partition.
SINFO = "debug*|2|12000|infinite\nshort|64|256000|1:00:00\nshort|2|12000|1:00:00\n"


def test_scripts_run_one_participant_per_task_then_group(tmp_path):
    settings = SlurmSettings(cpus=3, mem_gb=5, time="01:00:00", partition="short")
    array = participant_script(["01", "02", "x y"], tmp_path / "bids", tmp_path / "out", settings, ["--seed", "4"])
    assert "#SBATCH --array=0-2" in array and "#SBATCH --cpus-per-task=3" in array and "#SBATCH --mem=5G" in array
    assert "#SBATCH --partition=short" in array
    assert "labels=(01 02 'x y')" in array
    assert '--participant-label "$label" --nprocs 1 --omp-nthreads 3 --seed 4' in array
    group = group_script(tmp_path / "bids", tmp_path / "out", SlurmSettings(container=tmp_path / "nl.sif"), [])
    assert " group --omp-nthreads 4" in group and "apptainer run --cleanenv" in group and "nl.sif" in group


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("30:15", 1815), ("04:00:00", 14400), ("1-0", 86400), ("1-2:03", 93780),
     ("1-02:03:04", 93784), ("infinite", None), ("UNLIMITED", None)],
)
def test_slurm_times(text, seconds):
    assert parse_time(text) == seconds
    if seconds is not None:
        assert parse_time(format_time(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "4h", "1:2:3:4", "-1", "a-1", "1-"])
def test_slurm_time_typos_are_refused(text):
    with pytest.raises(ValueError, match="not a SLURM time"):
        parse_time(text)


def test_sinfo_lines_make_partitions_with_their_nodes():
    partitions = parse_sinfo(SINFO)
    assert set(partitions) == {"debug", "short"}
    assert partitions["debug"].default and not partitions["short"].default
    assert partitions["short"].largest.cpus == 64 and partitions["short"].time_limit_s == 3600
    assert partitions["debug"].time_limit_s is None


def test_a_request_no_node_can_run_is_refused_naming_the_option():
    partitions = parse_sinfo(SINFO)
    with pytest.raises(UsageError) as error:
        check_request(partitions, None, 4, 16, "04:00:00")  # neurolearn slurm's defaults
    message = str(error.value)
    assert "\n" not in message and "partition debug" in message and "4 CPUs and 16 GB" in message
    assert "largest has 2 CPUs and 11.7 GB" in message and "PartitionConfig" in message
    assert "--cpus 2 or fewer and --mem-gb 11 or less" in message
    with pytest.raises(UsageError, match="--mem-gb 11 or less$"):
        check_request(partitions, "debug", 2, 12, "04:00:00")
    check_request(partitions, "debug", 2, 11, "04:00:00")  # fits its one node
    with pytest.raises(UsageError, match="allows jobs 01:00:00 at most.*PartitionTimeLimit.*--time 01:00:00"):
        check_request(partitions, "short", 4, 16, "04:00:00")
    check_request(partitions, "short", 64, 200, "1:00:00")
    check_request(partitions, "debug,short", 4, 16, "30")  # one of the listed partitions can run it
    with pytest.raises(UsageError, match="--partition gpu: no such partition.*sinfo lists debug, short"):
        check_request(partitions, "gpu", 1, 1, "10")
    with pytest.raises(UsageError, match="--time 4h: not a SLURM time"):
        check_request(partitions, None, 1, 1, "4h")


def _fake_sinfo(bin_dir: Path, output: str, code: int = 0) -> None:
    bin_dir.mkdir()
    sinfo = bin_dir / "sinfo"
    sinfo.write_text(f"#!/bin/sh\nprintf '%s' '{output}'\nexit {code}\n")
    sinfo.chmod(0o755)


def test_slurm_command_refuses_before_writing_and_warns_without_sinfo(make_bids, tmp_path, cli, monkeypatch):
    bids, out = make_bids(("01",)), tmp_path / "out"
    _fake_sinfo(tmp_path / "bin", SINFO)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    code, stdout, stderr = cli("slurm", bids, out)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "--cpus 2 or fewer" in stderr and "PartitionConfig" in stderr
    assert not (out / "logs" / "slurm").exists()
    monkeypatch.setenv("SBATCH_PARTITION", "short")  # sbatch's partition when --partition is not given
    code, _, stderr = cli("slurm", bids, out, "--time", "2:00:00")
    assert code == 2 and "--time 01:00:00 or less" in stderr
    code, _, stderr = cli("slurm", bids, out, "--partition", "debug", "--cpus", "2", "--mem-gb", "8")
    assert code == 0 and stderr == ""
    assert (out / "logs" / "slurm" / "participant.sbatch").is_file()

    monkeypatch.setenv("PATH", "/nonexistent")  # no sinfo: the scripts are written, with a warning
    code, stdout, stderr = cli("slurm", bids, out)
    assert code == 0 and "job array for 1 participant(s)" in stdout
    assert "warning: sinfo is not on PATH: not checked" in stderr and "4 CPUs, 16 GB" in stderr


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


REAL_SLURM = pytest.mark.skipif(os.environ.get("CI") != "true" and not os.environ.get("NEUROLEARN_TEST_SLURM"),
                                reason="starts a real SLURM: runs under CI=true or NEUROLEARN_TEST_SLURM=1")


@pytest.mark.slow
@REAL_SLURM
def test_real_sinfo_refuses_more_cpus_than_the_node_has(make_bids, tmp_path, cli, local_slurm):
    from neurolearn_cli.slurm_partition import read_partitions

    partitions = read_partitions()
    default = next(partition for partition in partitions.values() if partition.default)
    node = default.largest
    bids, out = make_bids(("01",)), tmp_path / "out"
    code, stdout, stderr = cli("slurm", bids, out, "--cpus", node.cpus + 1, "--mem-gb", 1)
    assert code == 2 and stdout == "", stderr
    assert f"partition {default.name}: no node can run a task of {node.cpus + 1} CPUs" in stderr
    assert f"--cpus {node.cpus} or fewer" in stderr and "--mem-gb" not in stderr.split("use ")[-1]
    code, _, stderr = cli("slurm", bids, out, "--cpus", node.cpus, "--mem-gb", node.mem_mb // 1024)
    assert code == 0 and stderr == ""


@pytest.mark.slow
@REAL_SLURM
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

"""The OpenMP policy chosen at process start from the CPUs a process may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurolearn_cli.engine.threads import (
    MKL_CBWR,
    CpuBudget,
    cgroup_cpus,
    configure_threads,
    cpu_budget,
    other_work,
)

IDLE = CpuBudget(usable=2, machine=2, load=0.1)


@pytest.mark.parametrize(("text", "cpus"), [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000", 1)])
def test_cgroup_quota(tmp_path: Path, text: str, cpus: int | None) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)
    assert cgroup_cpus(cpu_max) == cpus
    assert cgroup_cpus(tmp_path / "absent") is None


def test_budget_takes_the_smallest_limit(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000")
    unlimited = cpu_budget({}, cpu_max)
    assert unlimited.usable >= 1 and unlimited.machine >= unlimited.usable
    assert cpu_budget({"SLURM_CPUS_PER_TASK": "1"}, cpu_max).usable == 1
    cpu_max.write_text("100000 100000")
    assert cpu_budget({}, cpu_max).usable == 1


def test_threads_spin_on_cores_of_their_own() -> None:
    environ: dict[str, str] = {}
    note = configure_threads(1, None, IDLE, environ)
    assert environ == {"OMP_NUM_THREADS": "2", "MKL_CBWR": MKL_CBWR} and "spin" in note
    environ = {}
    configure_threads(2, 1, IDLE, environ)
    assert environ == {"OMP_NUM_THREADS": "1", "MKL_CBWR": MKL_CBWR}


@pytest.mark.parametrize(
    ("processes", "threads", "budget"),
    [
        (1, None, CpuBudget(usable=2, machine=2, load=2.0)),  # another job's two busy threads
        (1, 4, IDLE),  # more threads than CPUs, as asked
        (1, None, CpuBudget(usable=2, machine=16, load=16.0)),  # a full shared node
    ],
)
def test_threads_sleep_when_they_would_share_cores(processes: int, threads: int | None, budget: CpuBudget) -> None:
    environ: dict[str, str] = {}
    note = configure_threads(processes, threads, budget, environ)
    assert environ["OMP_WAIT_POLICY"] == "PASSIVE" and "sleep" in note


@pytest.mark.parametrize(
    ("processes", "budget", "expected"),
    [
        (2, IDLE, "1"),  # two participants on two cores: one thread each
        (3, IDLE, "1"),  # more participants than cores: still one
        (1, CpuBudget(usable=2, machine=2, load=6.0), "2"),  # other work does not lower it
        (2, CpuBudget(usable=8, machine=16, load=12.0), "4"),
    ],
)
def test_usable_cpus_are_shared_among_the_processes(processes: int, budget: CpuBudget, expected: str) -> None:
    environ: dict[str, str] = {}
    configure_threads(processes, None, budget, environ)
    assert environ["OMP_NUM_THREADS"] == expected
    given: dict[str, str] = {}
    configure_threads(processes, 2, budget, given)  # --omp-nthreads is kept
    assert given["OMP_NUM_THREADS"] == "2"


def test_the_users_settings_are_kept() -> None:
    environ = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3", "MKL_CBWR": "COMPATIBLE"}
    note = configure_threads(2, None, IDLE, environ)
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3", "MKL_CBWR": "COMPATIBLE"}
    assert "environment" in note


def test_other_work_is_capped_by_the_tasks_runnable_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr("os.getloadavg", lambda: (3.7, 2.0, 1.0))
    loadavg.write_text("3.70 2.00 1.00 1/94 11141\n")  # a command just ended: only this process runs
    assert other_work(loadavg) == 0.0
    loadavg.write_text("3.70 2.00 1.00 6/94 11141\n")  # five other runnable tasks: the average is the lower figure
    assert other_work(loadavg) == 3.7
    assert other_work(tmp_path / "absent") == 3.7

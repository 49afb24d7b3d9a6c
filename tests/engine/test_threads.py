"""The OpenMP policy chosen at process start from the CPUs a process may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurolearn_cli.engine.threads import (
    MKL_CBWR,
    RUNNABLE_READINGS,
    CpuBudget,
    cgroup_cpus,
    configure_threads,
    cpu_budget,
    other_work,
    runnable_here,
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


def fake_tasks(root: Path, states: str) -> Path:
    """A ``/proc/self/task`` with one thread per letter of ``states`` (its scheduling state)."""
    for tid, state in enumerate(states, start=100):
        (root / str(tid)).mkdir(parents=True)
        (root / str(tid) / "stat").write_text(f"{tid} (neuro learn) {state} 1 2 3\n")
    return root


def test_other_work_is_capped_by_the_tasks_runnable_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loadavg = tmp_path / "loadavg"
    tasks = fake_tasks(tmp_path / "task", "R")
    monkeypatch.setattr("os.getloadavg", lambda: (3.7, 2.0, 1.0))
    loadavg.write_text("3.70 2.00 1.00 1/94 11141\n")  # a command just ended: only this process runs
    assert other_work(loadavg, tasks) == 0.0
    loadavg.write_text("3.70 2.00 1.00 6/94 11141\n")  # five other runnable tasks: the average is the lower figure
    assert other_work(loadavg, tasks) == 3.7
    assert other_work(tmp_path / "absent", tasks) == 3.7


def test_this_process_s_own_runnable_threads_are_not_other_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # numpy's import starts OpenBLAS threads that spin for a moment before torch (and the decision) come
    monkeypatch.setattr("os.getloadavg", lambda: (1.0, 1.0, 1.0))
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("1.00 1.00 1.00 3/94 11141\n")
    assert runnable_here(fake_tasks(tmp_path / "busy", "RRS")) == 2
    assert other_work(loadavg, fake_tasks(tmp_path / "busy2", "RRS")) == 1.0
    assert other_work(loadavg, fake_tasks(tmp_path / "own", "RRR")) == 0.0
    assert runnable_here(tmp_path / "no-such-dir") == 1


def test_runnable_here_reads_this_process() -> None:
    assert runnable_here() >= 1


class ChangingLoadavg:
    """A ``/proc/loadavg`` whose runnable count changes from one read to the next."""

    def __init__(self, runnable: list[int]) -> None:
        self.readings = iter(runnable)

    def read_text(self) -> str:
        return f"2.00 2.00 2.00 {next(self.readings)}/94 11141\n"


def test_one_reading_that_catches_a_passing_task_does_not_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.getloadavg", lambda: (2.0, 2.0, 2.0))
    tasks = fake_tasks(tmp_path / "task", "R")
    passing = [1] * RUNNABLE_READINGS
    passing[0] = passing[-1] = 3
    assert other_work(ChangingLoadavg(passing), tasks) == 0.0  # type: ignore[arg-type]
    busy = [3] * RUNNABLE_READINGS
    busy[1] = 1  # the other job paused
    assert other_work(ChangingLoadavg(busy), tasks) == 2.0  # type: ignore[arg-type]

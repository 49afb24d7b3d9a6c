"""OpenMP threads and wait policy, decided once at process start from the CPUs this process may use.

libgomp lets a thread that waits for work spin before it sleeps. On cores of
its own that is the fastest policy. When more threads want the cores than
there are (other jobs on a shared node, several participants at once), the
spinning threads take the time slices the working ones need, and a step
slows several-fold. So before torch loads (its OpenMP runtime reads the
environment when it starts) the process counts the CPUs it may use (the
affinity mask, a cgroup CPU quota, ``SLURM_CPUS_PER_TASK``) and the work
already running (:func:`other_work`). Unless the thread count is given, the
usable CPUs are shared among the processes that compute at once (at least
one thread each); other work does not lower it, since a process with more
threads gets a larger share of busy cores. Threads sleep at once
(``OMP_WAIT_POLICY=PASSIVE``) when they would not have cores to themselves.
Outputs are the same bytes on any thread count. MKL's matrix products are put in strict reproducible mode
(``MKL_CBWR=AUTO,STRICT``: the same bits on any thread count; it is read at
MKL's first call). Worker processes inherit the environment. A policy, thread
count or MKL mode the user set in the environment is kept.

This module imports nothing heavy: it must run before torch is imported.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

#: cgroup v2's CPU quota file ("max 100000" or "<quota> <period>").
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
#: Other work (in CPUs, see :func:`other_work`) tolerated beside ours before threads stop spinning.
IDLE_LOAD = 0.5
#: The kernel's load figures: three load averages, then ``runnable/total`` scheduling entities at this moment.
PROC_LOADAVG = Path("/proc/loadavg")
#: This process's threads, each with its scheduling state in ``<tid>/stat``.
PROC_SELF_TASKS = Path("/proc/self/task")
#: Readings of the runnable count; their median is kept (one reading may catch another
#: job's pause, or a thread of this process starting or stopping between the two files' reads).
RUNNABLE_READINGS = 9
#: Seconds between two readings: together they span a few tens of milliseconds.
READING_INTERVAL_S = 0.005
#: MKL's conditional numerical reproducibility: the ISA it picks, results independent of the thread count.
MKL_CBWR = "AUTO,STRICT"


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs a process may use and the work already running on the machine.

    Attributes
    ----------
    usable : int
        CPUs this process may use: the smallest of its affinity mask, the
        cgroup quota and ``SLURM_CPUS_PER_TASK``.
    machine : int
        CPUs of the machine.
    load : float
        CPUs' worth of other work running (:func:`other_work`).
    """

    usable: int
    machine: int
    load: float

    def contended(self, threads: int) -> bool:
        """Whether ``threads`` busy threads would share cores with each other or with other work."""
        return threads > self.usable or self.load + threads > self.machine + IDLE_LOAD

    def threads_per_process(self, processes: int) -> int:
        """The usable CPUs shared among ``processes`` (at least one thread each)."""
        return max(1, self.usable // processes)


def cgroup_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """CPUs allowed by a cgroup v2 quota (rounded up), or None without a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def runnable_here(tasks: Path = PROC_SELF_TASKS) -> int:
    """Threads of this process that are running or ready to run (state ``R``), at least 1 (the caller).

    Libraries start threads at import (OpenBLAS's pool, when numpy loads); they
    spin for a moment and would otherwise count as other work.
    """
    running = 0
    for task in tasks.glob("*/stat"):
        try:
            state = task.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread ended between listing and reading
        running += state == "R"
    return max(1, running)


def other_work(loadavg: Path = PROC_LOADAVG, tasks: Path = PROC_SELF_TASKS,
               readings: int = RUNNABLE_READINGS) -> float:
    """CPUs' worth of other work running now: the 1-minute load average, at most the tasks runnable at this moment.

    The average lags by about a minute: just after a command ends (the
    previous stage, a benchmark's last run) it still counts that command's
    threads, and would make an idle machine look busy. The kernel's count of
    runnable tasks (the fourth field of ``/proc/loadavg``) is current; this
    process's own runnable threads (:func:`runnable_here`) are taken off it.
    Where it cannot be read the average alone is used.
    """
    average = os.getloadavg()[0]
    elsewhere: list[int] = []
    for reading in range(readings):
        try:
            runnable = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return average
        elsewhere.append(max(0, runnable - runnable_here(tasks)))
        if reading + 1 < readings:
            time.sleep(READING_INTERVAL_S)
    return min(average, float(statistics.median(elsewhere)))


def cpu_budget(environ: Mapping[str, str] = os.environ, cpu_max: Path = CGROUP_CPU_MAX) -> CpuBudget:
    """This process's :class:`CpuBudget`."""
    machine = os.cpu_count() or 1
    limits = [len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else machine]
    quota = cgroup_cpus(cpu_max)
    if quota is not None:
        limits.append(quota)
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        limits.append(int(slurm))
    return CpuBudget(usable=min(limits), machine=machine, load=other_work())


def configure_threads(
    processes: int = 1,
    threads: int | None = None,
    budget: CpuBudget | None = None,
    environ: MutableMapping[str, str] = os.environ,
) -> str:
    """Set ``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY`` and ``MKL_CBWR`` for this process and the workers it starts.

    Parameters
    ----------
    processes : int
        Processes that will compute at once (``--nprocs``).
    threads : int, optional
        Threads per process (``--omp-nthreads``); default: the usable CPUs shared
        among the processes (:meth:`CpuBudget.threads_per_process`).
    budget : CpuBudget, optional
        Default: :func:`cpu_budget` of this process.
    environ : mapping
        The environment to set (default ``os.environ``).

    Returns
    -------
    str
        One line saying what was decided and why, for the log.
    """
    budget = budget or cpu_budget(environ)
    environ.setdefault("MKL_CBWR", MKL_CBWR)
    if "OMP_NUM_THREADS" not in environ:
        environ["OMP_NUM_THREADS"] = str(threads or budget.threads_per_process(processes))
    busy = processes * int(environ["OMP_NUM_THREADS"])
    where = (f"{busy} threads ({processes} x {environ['OMP_NUM_THREADS']}) on {budget.usable} usable of "
             f"{budget.machine} CPUs, other work {budget.load:.1f}")
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return f"OpenMP wait policy from the environment ({where})"
    if budget.contended(busy):
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
        return f"OpenMP threads sleep when idle: {where}"
    return f"OpenMP threads spin briefly when idle: {where}"

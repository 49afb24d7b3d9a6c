"""Whether a SLURM partition can ever run a request: its nodes' CPUs and memory, its time limit (``sinfo``).

``sbatch`` accepts a job that asks for more CPUs or memory than any node of
its partition has, or more time than the partition allows, and the job then
pends forever (reason ``PartitionConfig`` or ``PartitionTimeLimit``).
:func:`check_request` says so before anything is submitted.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from neurolearn_cli.errors import UsageError

#: One line per node and partition: partition (the default one ends in ``*``), CPUs, memory in MB, time limit.
SINFO_COMMAND = ("sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%l")
#: Time limits that mean none.
NO_LIMIT = {"infinite", "unlimited"}


class PartitionsUnknown(Exception):
    """``sinfo`` is not here or did not answer: the request cannot be checked."""


@dataclass(frozen=True)
class Node:
    """What one node offers a job."""

    cpus: int
    mem_mb: int


@dataclass(frozen=True)
class Partition:
    """A partition's nodes and time limit (None: no limit, or one sinfo did not state)."""

    name: str
    nodes: tuple[Node, ...]
    time_limit_s: int | None
    default: bool = False

    @property
    def largest(self) -> Node:
        """The node with the most CPUs (then the most memory)."""
        return max(self.nodes, key=lambda node: (node.cpus, node.mem_mb))


def parse_time(text: str) -> int | None:
    """Seconds of a SLURM time; None for no limit.

    The forms are sbatch's: ``minutes``, ``minutes:seconds``,
    ``hours:minutes:seconds``, ``days-hours``, ``days-hours:minutes`` and
    ``days-hours:minutes:seconds``. Raises ValueError for anything else.
    """
    text = text.strip()
    if text.lower() in NO_LIMIT:
        return None
    days, dash, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(part.isdigit() for part in [*parts, *([days] if dash else [])]) or len(parts) > 3:
        raise ValueError(f"not a SLURM time: {text!r}")
    numbers = [int(part) for part in parts]
    if dash:
        hours, minutes, seconds = (numbers + [0, 0])[:3]
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    else:
        hours, (minutes, seconds) = 0, (numbers + [0])[:2]
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


def request_time(time: str) -> int | None:
    """Seconds of ``--time`` (None: no limit); raises :class:`UsageError` when sbatch would refuse it."""
    try:
        return parse_time(time)
    except ValueError:
        raise UsageError(f"--time {time}: not a SLURM time (HH:MM:SS, D-HH:MM:SS or minutes)") from None


def format_time(seconds: int) -> str:
    """``[D-]HH:MM:SS``, as sbatch's ``--time`` takes it."""
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def _time_limit(text: str) -> int | None:
    """A partition's limit from sinfo; None when it has none or states none we can read."""
    try:
        return parse_time(text)
    except ValueError:
        return None


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions by name from the output of :data:`SINFO_COMMAND`."""
    nodes: dict[str, list[Node]] = {}
    limits: dict[str, int | None] = {}
    default = None
    for line in text.splitlines():
        if not line.strip():
            continue
        name, cpus, mem, limit = line.strip().split("|")
        if name.endswith("*"):
            name = default = name[:-1]
        nodes.setdefault(name, []).append(Node(int(cpus.rstrip("+")), int(mem.rstrip("+"))))
        limits[name] = _time_limit(limit)
    return {name: Partition(name, tuple(found), limits[name], name == default) for name, found in nodes.items()}


def read_partitions() -> dict[str, Partition]:
    """The partitions ``sinfo`` lists; raises :class:`PartitionsUnknown` when it is absent or fails."""
    try:
        result = subprocess.run(SINFO_COMMAND, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise PartitionsUnknown("sinfo is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise PartitionsUnknown("sinfo did not answer within 60 s") from None
    if result.returncode != 0:
        raise PartitionsUnknown(f"sinfo failed: {(result.stderr or result.stdout).strip()}")
    return parse_sinfo(result.stdout)


def _gb(mem_mb: int) -> str:
    return f"{mem_mb / 1024:.1f} GB"


def partition_problem(partition: Partition, cpus: int, mem_gb: int, time: str) -> str | None:
    """Why no node of ``partition`` can ever run a task of ``cpus``, ``mem_gb`` and ``time``; None if one can."""
    time_s = request_time(time)
    if partition.time_limit_s is not None and (time_s is None or time_s > partition.time_limit_s):
        limit = format_time(partition.time_limit_s)
        return (f"partition {partition.name} allows jobs {limit} at most, the request asks --time {time} "
                f"(it would pend forever, reason PartitionTimeLimit): use --time {limit} or less")
    if any(node.cpus >= cpus and node.mem_mb >= mem_gb * 1024 for node in partition.nodes):
        return None
    node = partition.largest
    changes = []
    if cpus > node.cpus:
        changes.append(f"--cpus {node.cpus} or fewer")
    if mem_gb * 1024 > node.mem_mb:
        most = node.mem_mb // 1024
        changes.append(f"--mem-gb {most} or less" if most else "a partition with a node of at least 1 GB")
    return (f"partition {partition.name}: no node can run a task of {cpus} CPUs and {mem_gb} GB, its largest "
            f"has {node.cpus} CPUs and {_gb(node.mem_mb)} (the job would pend forever, reason PartitionConfig): "
            f"use {' and '.join(changes)}")


def check_request(partitions: Mapping[str, Partition], requested: str | None, cpus: int, mem_gb: int,
                  time: str) -> None:
    """Raise :class:`UsageError` when no requested partition can ever run the request.

    ``requested`` is sbatch's partition (a comma-separated list is allowed:
    one that can run the job suffices); None means the default partition.
    """
    if requested:
        names = [name.strip() for name in requested.split(",") if name.strip()]
    else:
        names = [name for name, partition in partitions.items() if partition.default]
        if not names:
            raise UsageError("SLURM has no default partition: pass --partition "
                             f"(sinfo lists {', '.join(sorted(partitions)) or 'none'})")
    unknown = [name for name in names if name not in partitions]
    if unknown:
        raise UsageError(f"--partition {','.join(unknown)}: no such partition with nodes "
                         f"(sinfo lists {', '.join(sorted(partitions)) or 'none'})")
    problems = [partition_problem(partitions[name], cpus, mem_gb, time) for name in names]
    if all(problems):
        raise UsageError("; ".join(problem for problem in problems if problem))

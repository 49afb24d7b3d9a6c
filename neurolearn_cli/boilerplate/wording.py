"""Small phrases the methods text is built from: numbers, spreads, lists and groups of runs."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

#: Runs named one by one when a statement covers at most this many; more are counted.
NAMED_RUNS = 4


def number(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (``0.0419``, ``1750``)."""
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:.0f}"


def spread(values: Sequence[float], digits: int = 3, unit: str = "") -> str:
    """One value (or several equal ones) as is; several as ``median M (range A-B)``; ``unit`` after each number."""
    suffix = f" {unit}" if unit else ""
    if len(values) == 1:
        return f"{number(values[0], digits)}{suffix}"
    low, high = min(values), max(values)
    if low == high:
        return f"{number(low, digits)}{suffix}"
    middle = statistics.median(values)
    return (f"median {number(middle, digits)}{suffix} "
            f"(range {number(low, digits)}-{number(high, digits)}{suffix})")


def listing(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 run``, ``2 runs``."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"


def runs_phrase(names: Sequence[str], total: int) -> str:
    """Which runs a statement covers: ``all 3 runs``, ``run x``, ``2 of 40 runs``."""
    if len(names) == total:
        return "the run" if total == 1 else "both runs" if total == 2 else f"all {total} runs"
    if len(names) <= NAMED_RUNS:
        return ("run " if len(names) == 1 else "runs ") + listing(list(names))
    return f"{len(names)} of {total} runs"


def group_by(items: Sequence[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items grouped by ``key``, groups in order of first appearance."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups

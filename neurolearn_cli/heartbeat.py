"""A heartbeat for long steps: a log line with the elapsed time while the step runs, and its duration at the end.

A registration or a BOLD run can take minutes without a line on the console;
in a SLURM log that looks like a hang. :func:`heartbeat` logs
``<label>: running for 2 min 00 s`` every :data:`INTERVAL_S` seconds from a
background thread, and ``<label> took 3 min 12 s`` when the step ends without
an error (a failure is reported by whoever catches it). Heartbeats nest: only
the innermost one that is running ticks, so a stage and its BOLD run do not
both print.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from neurolearn_cli.messages import format_duration

#: Seconds between two heartbeat lines of the same step.
INTERVAL_S = 60.0

_active: list[threading.Event] = []  # the running heartbeats of this process, innermost last
_lock = threading.Lock()


@contextmanager
def heartbeat(log: logging.Logger, label: str, interval_s: float = INTERVAL_S) -> Iterator[None]:
    """Log ``label``'s elapsed time every ``interval_s`` seconds while the block runs, and its duration after.

    Parameters
    ----------
    log : logging.Logger
        Where the lines go (INFO).
    label : str
        What runs, as the start of each line, e.g. ``sub-01: smri``.
    interval_s : float
        Seconds between two lines.
    """
    start = time.monotonic()
    stop = threading.Event()
    with _lock:
        _active.append(stop)

    def tick() -> None:
        while not stop.wait(interval_s):
            with _lock:
                innermost = _active[-1] is stop
            if innermost:
                log.info("%s: running for %s", label, format_duration(time.monotonic() - start))

    thread = threading.Thread(target=tick, name=f"heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        with _lock:
            _active.remove(stop)
        thread.join()
    log.info("%s took %s", label, format_duration(time.monotonic() - start))

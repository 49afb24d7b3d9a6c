"""Logging: rich output on a terminal's stderr (else dated plain lines), and a log file under ``OUTPUT_DIR/logs/``.

Results go to files and the plan/summary tables to the terminal; log records
never go to stdout.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

LOGGER_NAME = "neurolearn"
#: Console lines when stderr is not a terminal: the time first, as in the log file.
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
STDERR = Console(stderr=True)


def level_for(verbosity: int) -> int:
    """Map ``-v``/``-q`` counts to a logging level (0 -> INFO)."""
    return {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.CRITICAL)


def setup_logging(verbosity: int = 0, log_file: Path | None = None) -> logging.Logger:
    """Configure the ``neurolearn`` logger once per process and return it."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    # nibabel reports the header fixes it makes on load (e.g. zero voxel sizes set to 1) on stderr; the
    # planner checks the raw header and reports such a file in one line of its own
    logging.getLogger("nibabel.global").setLevel(logging.ERROR)
    if STDERR.is_terminal:
        console: logging.Handler = RichHandler(console=STDERR, show_path=False, markup=False)
    else:  # pipes, batch logs (SLURM) and CI: one dated record per line, never wrapped
        console = logging.StreamHandler()
        console.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt=DATE_FORMAT))
    console.setLevel(level_for(verbosity))
    logger.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(processName)s %(message)s"))
        handler.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    return logger


def get_logger() -> logging.Logger:
    """The package logger (configured by :func:`setup_logging`)."""
    return logging.getLogger(LOGGER_NAME)

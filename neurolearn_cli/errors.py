"""Exceptions that map to the command line's exit codes.

Exit codes follow DESIGN.md: 2 for bad usage or bad input, 1 for a failure
during processing. Each exception carries a one-line message meant for users.
"""

from __future__ import annotations

from pathlib import Path


class NeurolearnError(Exception):
    """Base class: a problem neurolearn reports in one line, without a traceback."""

    exit_code = 1


class UsageError(NeurolearnError):
    """Bad command-line usage or configuration (exit code 2)."""

    exit_code = 2


class InputError(NeurolearnError):
    """A bad input file (exit code 2); the message names the file and the problem.

    Parameters
    ----------
    path : path-like or None
        The offending file (or spec field, for non-file inputs).
    problem : str
        What is wrong with it, in a few words.
    """

    exit_code = 2

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ProcessingError(NeurolearnError):
    """A step failed on valid input (exit code 1): e.g. a segmentation that did not converge."""

    exit_code = 1

"""Exceptions that map to the command line's exit codes.

Exit codes follow DESIGN.md: 2 for bad usage or bad input, 1 for a failure
during processing. Each exception carries a one-line message meant for users.
"""

from __future__ import annotations

import traceback
from pathlib import Path

#: The package folder: an internal error is located at its innermost frame inside it.
_PACKAGE = Path(__file__).resolve().parent


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
        The offending file (a bad spec field is a :class:`SpecError`; a
        contract violation inside the engine is a ``ValueError``, not this).
    problem : str
        What is wrong with it, in a few words.
    """

    exit_code = 2

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class SpecError(InputError):
    """A bad field of an mvpa analysis spec (exit code 2); the message names the spec file and the field.

    Parameters
    ----------
    spec_file : path-like or None
        The spec file (or "command line" for a spec built from options);
        None where the raiser does not know it (see :meth:`located`).
    field : str
        The dotted field, e.g. ``validation.outer``.
    problem : str
        What is wrong with it, in a few words.
    """

    def __init__(self, spec_file: str | Path | None, field: str, problem: str) -> None:
        self.field = field
        self.field_problem = problem
        super().__init__(spec_file, f"field '{field}': {problem}")

    def located(self, spec_file: str | Path) -> SpecError:
        """This error naming ``spec_file``, unless it names a file already."""
        return self if self.path is not None else SpecError(spec_file, self.field, self.field_problem)


class ProcessingError(NeurolearnError):
    """A step failed on valid input (exit code 1): e.g. a segmentation that did not converge."""

    exit_code = 1


def failure_reason(error: BaseException) -> str:
    """One line for a failure: the message of a :class:`NeurolearnError` or ``OSError``, else an internal error.

    Any other exception is a bug: the line names its type and where it was
    raised, the innermost traceback frame inside the ``neurolearn_cli``
    package, e.g. ``internal error (ValueError at neurolearn_cli/engine/resample.py:123): ...``.
    """
    if isinstance(error, (NeurolearnError, OSError)):
        return str(error)
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(_PACKAGE):
            where = f" at {path.relative_to(_PACKAGE.parent).as_posix()}:{frame.lineno}"
            break
    return f"internal error ({type(error).__name__}{where}): {error}"

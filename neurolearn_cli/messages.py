"""How values and library errors read in the one-line messages and log lines people see."""

from __future__ import annotations

import math
import re

#: pydantic's prefixes of a message raised in a validator ("Value error, needs at least 2 folds").
_LIBRARY_PREFIX = re.compile(r"(^|: )(?:Value error|Assertion failed), ")


def plain_message(text: str) -> str:
    """``text`` without pydantic's "Value error, " (or "Assertion failed, ") prefix, wherever a clause starts.

    Examples
    --------
    >>> plain_message("Invalid value for 'level': Value error, 'x' is not one of 'participant'.")
    "Invalid value for 'level': 'x' is not one of 'participant'."
    """
    return _LIBRARY_PREFIX.sub(r"\1", text)


def format_p(p: float | None) -> str:
    """A p-value to three significant digits (a permutation p is a ratio of counts; more digits mean nothing).

    Examples
    --------
    >>> format_p(0.803921568627451), format_p(1 / 1001), format_p(None)
    ('0.804', '0.000999', 'not computed')
    """
    return "not computed" if p is None else f"{p:.3g}"


def format_duration(seconds: float) -> str:
    """Elapsed time as people say it: ``42 s``, ``3 min 05 s``, ``1 h 02 min``.

    Examples
    --------
    >>> format_duration(4.26), format_duration(185), format_duration(3725)
    ('4 s', '3 min 05 s', '1 h 02 min')
    """
    whole = int(math.floor(seconds + 0.5))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"

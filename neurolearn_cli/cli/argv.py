"""Command-line spelling that click does not handle by itself.

fMRIPrep accepts ``--participant_label`` as well as ``--participant-label`` and
space-separated lists (``--participant-label 01 02``). click wants one dash
spelling and a repeated option per value, so argv is rewritten before parsing.
"""

from __future__ import annotations

from neurolearn_cli.cli.options import list_options

#: Options that take several space-separated values.
LIST_OPTIONS = list_options() | {"--derivatives"}


def _dashed(token: str) -> str:
    """``--participant_label=01`` -> ``--participant-label=01`` (the value is kept as is)."""
    if not token.startswith("--"):
        return token
    name, sep, value = token.partition("=")
    return name.replace("_", "-") + sep + value


def normalize_argv(args: list[str]) -> list[str]:
    """Rewrite underscore spellings and expand space-separated lists into repeated options.

    A list option consumes the following words up to the next one starting
    with ``-``; comma-separated values are split too (``--stages smri,qc``).
    Positional arguments should therefore come before list options, as in
    fMRIPrep.

    Examples
    --------
    >>> normalize_argv(["/d", "/o", "participant", "--participant_label", "01", "sub-02"])
    ['/d', '/o', 'participant', '--participant-label', '01', '--participant-label', 'sub-02']
    """
    out: list[str] = []
    index = 0
    while index < len(args):
        token = _dashed(args[index])
        index += 1
        if token == "--":
            out.extend(args[index - 1:])
            break
        name, sep, inline = token.partition("=")
        if name not in LIST_OPTIONS:
            out.append(token)
            continue
        values = [inline] if sep else []
        while not sep and index < len(args) and not args[index].startswith("-"):
            values.append(args[index])
            index += 1
        if not values:
            out.append(token)  # let click report the missing value
        for value in values:
            for item in filter(None, value.split(",")):
                out.extend([name, item])
    return out

"""How ``--help`` reads: flags without a value type, and lines as wide as the terminal.

typer prints a value type beside every option, so a flag reads ``--dry-run
<bool>`` and a counter ``-v <int>``, as if they took a value; and when the
output is not a terminal (``neurolearn --help | less``, a CI log) rich wraps
the help at 80 columns.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from typer.core import TyperCommand

from neurolearn_cli.cli.clickcompat import click_core

#: Width of the help when stdout is not a terminal and neither COLUMNS nor TERMINAL_WIDTH says otherwise.
PIPED_WIDTH = 160


def hide_flag_types(params: Iterable[Any]) -> None:
    """Give every flag and counter an empty metavar, so that help shows no value type beside it."""
    for param in params:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param.param_type_name == "option" and flag and param.metavar is None:
            param.metavar = ""


class HelpCommand(TyperCommand):
    """A typer command whose ``--help`` lists flags as flags."""

    def format_help(self, ctx: click_core.Context, formatter: Any) -> None:
        """Render the help with the flags' value types hidden."""
        hide_flag_types(self.get_params(ctx))
        super().format_help(ctx, formatter)


def configure_help_width() -> None:
    """Render help at the terminal's width, or :data:`PIPED_WIDTH` columns when stdout is not a terminal.

    An explicit ``TERMINAL_WIDTH`` (typer's) or ``COLUMNS`` (rich's) setting wins.
    """
    from typer import rich_utils

    if sys.stdout.isatty() or "TERMINAL_WIDTH" in os.environ or "COLUMNS" in os.environ:
        return
    rich_utils.MAX_WIDTH = PIPED_WIDTH

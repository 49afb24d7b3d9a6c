"""The ``neurolearn`` typer application and its entry point.

A first word that names a command goes to that command; any other first word
starts the bare BIDS-App form (the hidden ``run`` command), so that
``docker run IMAGE /data /out participant`` works. Errors become one line on
stderr and an exit code (2 for bad usage or input, 1 for processing failures);
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from neurolearn_cli import __version__
from neurolearn_cli.cli.argv import normalize_argv
from neurolearn_cli.cli.clickcompat import click_core, click_exceptions
from neurolearn_cli.cli.help import HelpCommand, configure_help_width, hide_flag_types
from neurolearn_cli.config import AnalysisLevel
from neurolearn_cli.engine.allocator import configure_allocation
from neurolearn_cli.errors import NeurolearnError, failure_reason
from neurolearn_cli.messages import plain_message

BARE_COMMAND = "run"


class BidsAppGroup(TyperGroup):
    """A command group whose unknown first word starts the bare ``run`` command."""

    def parse_args(self, ctx: click_core.Context, args: list[str]) -> list[str]:
        """Insert ``run`` before the arguments when the first word is not a command (nor a mistyped one)."""
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            self._refuse_unknown_command(ctx, args)
            args = [BARE_COMMAND, *args]
        return super().parse_args(ctx, args)

    def _refuse_unknown_command(self, ctx: click_core.Context, args: list[str]) -> None:
        """Raise a usage error when ``args[0]`` is no existing path and reads as a command.

        It reads as one when it is close to a command's name (``smir``), or
        when the analysis level comes fourth (``preprocess BIDS OUT participant``).
        """
        word = args[0]
        if "/" in word or Path(word).exists():
            return
        commands = [name for name, command in self.commands.items() if not command.hidden]
        close = difflib.get_close_matches(word.lower(), commands, n=1)
        if close:
            raise click_exceptions.UsageError(f"unknown command '{word}', did you mean '{close[0]}'?", ctx)
        levels = [level.value for level in AnalysisLevel]
        if len(args) > 3 and args[2] not in levels and args[3] in levels:
            raise click_exceptions.UsageError(f"unknown command '{word}'; commands: {', '.join(commands)}", ctx)

    def format_help(self, ctx: click_core.Context, formatter: Any) -> None:
        """Render the help with the flags' value types hidden."""
        hide_flag_types(self.get_params(ctx))
        super().format_help(ctx, formatter)

    def list_commands(self, ctx: click_core.Context) -> list[str]:
        """Keep commands in the order they were added (the BIDS-App stages first)."""
        return list(self.commands)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"neurolearn {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=BidsAppGroup,
    name="neurolearn",
    help=(
        "BIDS-App: torch-accelerated sMRI/fMRI preprocessing, quality control and pattern analysis.\n\n"
        "Usage as a BIDS-App: neurolearn BIDS_DIR OUTPUT_DIR participant|group [OPTIONS]"
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """neurolearn: one command from a BIDS dataset to derivatives, reports and analyses."""


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors raised by ``command`` into one stderr line and an exit code.

    A :class:`NeurolearnError` carries its code; an ``OSError`` that reaches
    here (a full disk, a read-only output directory) is a processing failure,
    exit 1, reported with the file it names; any other exception is an
    internal error, exit 1, reported with where it was raised.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click_exceptions.ClickException):
            raise
        except Exception as error:
            if "--debug" in sys.argv:
                raise
            typer.echo(f"neurolearn: error: {failure_reason(error)}", err=True)
            raise typer.Exit(getattr(error, "exit_code", 1)) from None

    return wrapper


def _register_commands() -> None:
    from neurolearn_cli.cli import (
        apply_transforms,
        example_data,
        mvpa,
        project,
        register,
        run,
        slurm,
        verify,
    )

    app.command(BARE_COMMAND, cls=HelpCommand, hidden=True,
                context_settings={"allow_interspersed_args": True})(guarded(run.stage_command(None)))
    for stage, help_text in run.STAGE_HELP.items():
        app.command(stage, cls=HelpCommand, help=help_text)(guarded(run.stage_command(stage)))
    commands: dict[str, Callable[..., Any]] = {
        "mvpa": mvpa.mvpa_command, "example-data": example_data.example_data_command,
        "register": register.register_command, "apply-transforms": apply_transforms.apply_transforms_command,
        "slurm": slurm.slurm_command, "verify": verify.verify_command}
    for name, command in commands.items():
        app.command(name, cls=HelpCommand)(guarded(command))
    for name, command in project.COMMANDS.items():
        project.project_app.command(name, cls=HelpCommand)(guarded(command))
    app.add_typer(project.project_app)


_register_commands()


def _help_hint(ctx: click_core.Context | None) -> str:
    """`` (see 'neurolearn smri --help')`` for a usage error in ``ctx``'s command (the root's for the bare form)."""
    if ctx is None:
        return ""
    if ctx.info_name == BARE_COMMAND and ctx.parent is not None:
        ctx = ctx.parent
    return f" (see '{ctx.command_path} --help')"


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: set up the process, normalise argv, run the app, map errors to exit codes."""
    configure_allocation()  # before any command makes a tensor
    configure_help_width()
    args = normalize_argv(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        # without standalone mode, click returns the code of a typer.Exit instead of raising it
        code = command.main(args=args, prog_name="neurolearn", standalone_mode=False, obj={"argv": args})
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("neurolearn: interrupted", err=True)
        sys.exit(130)
    except click_exceptions.NoArgsIsHelpError as error:
        typer.echo(error.format_message(), err=True)
        sys.exit(2)
    except click_exceptions.UsageError as error:
        typer.echo(f"neurolearn: error: {plain_message(error.format_message())}{_help_hint(error.ctx)}", err=True)
        sys.exit(2)
    except click_exceptions.ClickException as error:
        typer.echo(f"neurolearn: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except NeurolearnError as error:
        if "--debug" in args:
            raise
        typer.echo(f"neurolearn: error: {error}", err=True)
        sys.exit(error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)

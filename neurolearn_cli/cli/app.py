"""The ``neurolearn`` typer application and its entry point.

A first word that names a command goes to that command; any other first word
starts the bare BIDS-App form (the hidden ``run`` command), so that
``docker run IMAGE /data /out participant`` works. Errors become one line on
stderr and an exit code (2 for bad usage or input, 1 for processing failures);
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from neurolearn_cli import __version__
from neurolearn_cli.cli.argv import normalize_argv
from neurolearn_cli.cli.clickcompat import click_core, click_exceptions
from neurolearn_cli.engine.allocator import configure_allocation
from neurolearn_cli.errors import NeurolearnError, failure_reason

BARE_COMMAND = "run"


class BidsAppGroup(TyperGroup):
    """A command group whose unknown first word starts the bare ``run`` command."""

    def parse_args(self, ctx: click_core.Context, args: list[str]) -> list[str]:
        """Insert ``run`` before the arguments when the first word is not a command."""
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = [BARE_COMMAND, *args]
        return super().parse_args(ctx, args)

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
        register,
        run,
        slurm,
        verify,
    )

    app.command(BARE_COMMAND, hidden=True, context_settings={"allow_interspersed_args": True})(guarded(run.bids_app_command))
    for stage in ("smri", "fmri", "qc"):
        app.command(stage, help=run.STAGE_HELP[stage])(guarded(run.bids_app_command))
    app.command("mvpa")(guarded(mvpa.mvpa_command))
    app.command("example-data")(guarded(example_data.example_data_command))
    app.command("register")(guarded(register.register_command))
    app.command("apply-transforms")(guarded(apply_transforms.apply_transforms_command))
    app.command("slurm")(guarded(slurm.slurm_command))
    app.command("verify")(guarded(verify.verify_command))


_register_commands()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: set up the process, normalise argv, run the app, map errors to exit codes."""
    configure_allocation()  # before any command makes a tensor
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
        name = error.ctx.info_name if error.ctx else None
        hint = f" (see 'neurolearn {'' if name == BARE_COMMAND else name + ' '}--help')" if name else ""
        typer.echo(f"neurolearn: error: {error.format_message()}{hint}", err=True)
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

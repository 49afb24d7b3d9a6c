"""Command-line options generated from :class:`~neurolearn_cli.config.RunConfig`'s fields.

Each option is declared once, as a field made by :func:`neurolearn_cli.config.option`
(type, default, help text, help panel); this module turns those fields into
typer parameters, so a default or a help text cannot differ between the
config, the commands and ``--help``. Every generated option defaults to None
(or False for flags): "not given", so a ``--config-file`` value or the
field's default applies.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo

from neurolearn_cli.config import RunConfig


def option_fields() -> list[str]:
    """Names of the RunConfig fields that are command-line options, in declaration order."""
    return [name for name, info in RunConfig.model_fields.items() if _panel(info) is not None]


def panel_fields(panel: str) -> list[str]:
    """Names of the option fields listed in ``--help`` panel ``panel``, in declaration order."""
    return [name for name in option_fields() if _panel(RunConfig.model_fields[name]) == panel]


def list_options() -> frozenset[str]:
    """Option names (``--participant-label``) that take several values."""
    return frozenset(f"--{_dashed(name)}" for name in option_fields() if _is_list(RunConfig.model_fields[name]))


def _panel(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    return extra.get("panel") if isinstance(extra, dict) else None  # type: ignore[return-value]


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _is_list(info: FieldInfo) -> bool:
    return typing.get_origin(info.annotation) is tuple


def _scalar_type(info: FieldInfo) -> type:
    """The command line's type for a field: its own, less ``None``; ``str`` for anything parsed later."""
    members = [t for t in typing.get_args(info.annotation) if t is not type(None)]
    annotation = members[0] if isinstance(info.annotation, types.UnionType) else info.annotation
    if annotation in (bool, int, float, str, Path) or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return annotation
    return str


def _help(info: FieldInfo) -> str:
    """The field's description, with its default where the default says something."""
    text = info.description or ""
    default = info.get_default(call_default_factory=True)
    if default is None or isinstance(default, bool) or default == ():
        return text
    shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
    return f"{text.rstrip('.')} (default: {shown})."


def _parameter(name: str) -> inspect.Parameter:
    """The typer parameter of RunConfig field ``name``."""
    info = RunConfig.model_fields[name]
    flag = f"--{_dashed(name)}"
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    help_text = _help(info)
    annotation: Any  # a type expression, built at run time for typer
    if info.annotation is bool and info.default is True:
        declarations, annotation, default = [f"{flag}/--no-{_dashed(name)}"], bool | None, None
    elif info.annotation is bool:
        declarations, annotation, default = [flag], bool, False
    elif _is_list(info):
        declarations, annotation, default = [flag], list[str] | None, None
    else:
        declarations, annotation, default = [flag], _scalar_type(info) | None, None
    if "short" in extra:
        declarations.append(str(extra["short"]))
    typer_option = typer.Option(*declarations, help=help_text, rich_help_panel=_panel(info), show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, typer_option])


def with_config_options(command: Callable[..., Any], names: Iterable[str] | None = None) -> Callable[..., Any]:
    """Give ``command`` (which takes ``**options``) the options of the RunConfig fields ``names``.

    Parameters
    ----------
    command : callable
        A typer command whose own parameters come first and whose last
        parameter is ``**options``; it receives every generated option there.
    names : iterable of str, optional
        The fields to offer (default: every option field).
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    required = [p for p in own if p.default is p.empty]
    optional = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p.default is not p.empty]
    generated = [_parameter(name) for name in (option_fields() if names is None else names)]
    # the generated options first, so --help lists the panels in the fields' order
    command.__signature__ = signature.replace(parameters=[*required, *generated, *optional])  # type: ignore[attr-defined]
    return command

"""The click that typer runs on: recent typer vendors its own copy as ``typer._click``.

Exceptions and parameter sources must come from the same copy typer uses,
or they are not caught.
"""

from __future__ import annotations

try:
    from typer._click import core as click_core
    from typer._click import exceptions as click_exceptions
except ImportError:  # typer < 0.20 uses the click package
    import click.core as click_core  # type: ignore[no-redef]
    import click.exceptions as click_exceptions  # type: ignore[no-redef]

ParameterSource = click_core.ParameterSource

__all__ = ["ParameterSource", "click_core", "click_exceptions"]

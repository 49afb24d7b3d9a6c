"""Generate the shell completion scripts shipped in ``completions/``.

The scripts are typer's: they call ``neurolearn`` back with
``_NEUROLEARN_COMPLETE`` set, so completions follow the installed version.
Run ``python -m neurolearn_cli.completions completions`` (``make completions``)
after changing the command line; a test checks the files are current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer._completion_shared import get_completion_script

SHELLS = {"bash": "neurolearn.bash", "zsh": "_neurolearn", "fish": "neurolearn.fish"}
COMPLETE_VAR = "_NEUROLEARN_COMPLETE"


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    return get_completion_script(prog_name="neurolearn", complete_var=COMPLETE_VAR, shell=shell).rstrip() + "\n"


def write_completions(directory: Path) -> list[Path]:
    """Write every shell's script into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, filename in SHELLS.items():
        path = directory / filename
        path.write_text(completion_script(shell), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_completions(Path(sys.argv[1] if len(sys.argv) > 1 else "completions")):
        print(written_path)

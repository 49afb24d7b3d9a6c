"""The shipped completion scripts are current, and completion answers through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurolearn_cli.completions import SHELLS, completion_script

COMPLETIONS = Path(__file__).resolve().parents[1] / "completions"


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_scripts_are_current(shell):
    shipped = (COMPLETIONS / SHELLS[shell]).read_text(encoding="utf-8")
    assert shipped == completion_script(shell), f"run 'make completions' to refresh completions/{SHELLS[shell]}"


def test_bash_completion_answers():
    env = {**os.environ, "_NEUROLEARN_COMPLETE": "complete_bash", "COMP_WORDS": "neurolearn smri d o participant --part",
           "COMP_CWORD": "5"}
    code = "from neurolearn_cli.cli.app import main; main()"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "--participant-label" in result.stdout.split()

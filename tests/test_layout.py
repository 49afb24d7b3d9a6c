"""The package's public seams: stages and commands use the engine's registration API only."""

from __future__ import annotations

import re
from pathlib import Path

import neurolearn_cli

PACKAGE = Path(neurolearn_cli.__file__).parent
PRIVATE_REGISTRATION = re.compile(r"neurolearn_cli\.engine\.registration\.\w+ import")


def test_only_the_engine_imports_registration_modules():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "engine" not in path.relative_to(PACKAGE).parts and PRIVATE_REGISTRATION.search(path.read_text())
    ]
    assert offenders == []


def test_one_definition_of_each_morphology_operation():
    definitions = {
        name: [path for path in PACKAGE.rglob("*.py") if re.search(rf"^def {name}\(", path.read_text(), re.M)]
        for name in ("dilate", "erode", "largest_component", "fill_holes")
    }
    assert {name: [p.name for p in paths] for name, paths in definitions.items()} == {
        name: ["morphology.py"] for name in definitions
    }

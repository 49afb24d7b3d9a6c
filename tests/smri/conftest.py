"""Shared fixtures for the smri tests: the bundled template (loaded once) and a tissue phantom."""

from __future__ import annotations

import pytest
import torch

from neurolearn_cli.smri.template import Template, coarsen, load_template

from .helpers import make_phantom


@pytest.fixture
def device() -> torch.device:
    """Tests run on the CPU; the code under test only uses the device it is given."""
    return torch.device("cpu")


@pytest.fixture(scope="session")
def template_1mm() -> Template:
    """The bundled template at 1 mm (loaded once per session)."""
    return load_template(torch.device("cpu"), 1)


@pytest.fixture(scope="session")
def template_2mm(template_1mm: Template) -> Template:
    """The template block-averaged to 2 mm."""
    return coarsen(template_1mm, 2)


@pytest.fixture(scope="session")
def template_4mm(template_1mm: Template) -> Template:
    """The template block-averaged to 4 mm."""
    return coarsen(template_1mm, 4)


@pytest.fixture(scope="session")
def phantom() -> dict:
    """A 44x52x48 phantom at 2.5 mm (see :func:`helpers.make_phantom`)."""
    return make_phantom()

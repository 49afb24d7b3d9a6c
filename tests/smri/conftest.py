"""Shared fixtures for the smri tests: the bundled template (loaded once), a tissue phantom, a simulated head."""

from __future__ import annotations

import pytest
import torch

from neurolearn_cli.engine.image import Image
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


@pytest.fixture(scope="session")
def participant_8() -> tuple[Image, Image]:
    """Participant 8 of the example dataset (seed 0), simulated once: T1w and ground-truth labels, RAS 2 mm."""
    from dataclasses import replace

    from neurolearn_cli.example_data.protocol import BOLD
    from neurolearn_cli.example_data.simulate import simulate_participant
    from neurolearn_cli.example_data.space import example_space

    data = simulate_participant(8, 0, example_space(), replace(BOLD, volumes=30))
    affine = torch.tensor(data.affine, dtype=torch.float64)
    t1w = Image(torch.tensor(data.t1w, dtype=torch.float32), affine)
    return t1w, Image(torch.tensor(data.dseg, dtype=torch.float32), affine)

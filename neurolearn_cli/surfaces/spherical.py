"""One hemisphere's inflated and spherical surfaces, sulcal depth and registration to a template sphere."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from neurolearn_cli.surfaces.inflate import inflate
from neurolearn_cli.surfaces.mesh import Mesh
from neurolearn_cli.surfaces.register import SphereRegistration, register
from neurolearn_cli.surfaces.sphere import to_sphere
from neurolearn_cli.surfaces.template import SphereTemplate


@dataclass(frozen=True)
class SphericalSurfaces:
    """The inflated surface (world mm), sulcal depth (mm), the sphere (radius 100, centred on the origin, the
    participant's axes), how many faces the conformal map flipped and how many stay flipped, and the
    registration to the template."""

    inflated: Mesh
    sulc: np.ndarray
    sphere: Mesh
    flipped_at_projection: int
    flipped: int
    registration: SphereRegistration


def spherical_surfaces(white: Mesh, hemisphere: str, curvature: np.ndarray, template: SphereTemplate,
                       device: torch.device) -> SphericalSurfaces:
    """Inflate ``white`` (of ``hemisphere``), map it onto the sphere and register that to ``template`` by sulc and
    ``curvature``."""
    inflation = inflate(white)
    mapping = to_sphere(white, inflation.inflated, hemisphere)
    registration = register(mapping.sphere, inflation.sulc, curvature, template, device)
    return SphericalSurfaces(inflation.inflated, inflation.sulc, mapping.sphere, mapping.flipped_at_projection,
                             mapping.flipped, registration)

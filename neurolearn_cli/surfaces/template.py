"""fsaverage5's sphere, sulc and curv per hemisphere, as nilearn ships them inside its package (no download)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolearn_cli.surfaces.mesh import Mesh, signed_volume

#: nilearn's name of each hemisphere.
NILEARN_HEMISPHERES = {"L": "left", "R": "right"}


@dataclass(frozen=True)
class SphereTemplate:
    """A template hemisphere for spherical registration: its sphere (radius 100) and the features on it."""

    name: str
    sphere: Mesh
    sulc: np.ndarray
    curv: np.ndarray


def fsaverage5(hemisphere: str) -> SphereTemplate:
    """fsaverage5's ``hemisphere`` (``"L"`` or ``"R"``), read from nilearn's package data."""
    from nilearn.datasets import fetch_surf_fsaverage
    from nilearn.surface import load_surf_data, load_surf_mesh

    files = fetch_surf_fsaverage("fsaverage5")
    side = NILEARN_HEMISPHERES[hemisphere]
    mesh = load_surf_mesh(files[f"sphere_{side}"])
    sphere = Mesh(np.asarray(mesh.coordinates, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64))
    if signed_volume(sphere) < 0:
        sphere = Mesh(sphere.vertices, sphere.faces[:, ::-1].copy())
    return SphereTemplate(name="fsaverage5", sphere=sphere,
                          sulc=np.asarray(load_surf_data(files[f"sulc_{side}"]), dtype=np.float64),
                          curv=np.asarray(load_surf_data(files[f"curv_{side}"]), dtype=np.float64))

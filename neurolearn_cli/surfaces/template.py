"""The surface templates, on disk with no download: fsaverage5's sphere, sulc and curv (nilearn's package data) for
spherical registration, and the spheres that carry surface outputs to fsaverage5, fsaverage and fsLR.

fsaverage's (164k) and fsLR's (32k) spheres come from a local TemplateFlow
home, as TemplateFlow names them; fsLR also needs the pair that carries a
point from fsaverage's sphere to fsLR's (fsaverage's 164k sphere, and the
same mesh deformed onto fsLR's sphere: Workbench's project-unproject). Where
a file is missing the space is skipped with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurolearn_cli.spaces import BUNDLED_SURFACE_TEMPLATE, OutputSpace
from neurolearn_cli.surfaces.mesh import Mesh, signed_volume

#: The hemispheres, in BIDS's ``hemi-`` spelling.
HEMISPHERES = ("L", "R")
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


@dataclass(frozen=True)
class TemplateSphere:
    """One hemisphere's target sphere and, for a template not aligned with fsaverage (fsLR), the pair of meshes
    (``project_to`` on fsaverage's sphere, ``unproject_from`` the same mesh on the template's) that carries
    points across."""

    sphere: Path
    project_to: Path | None = None
    unproject_from: Path | None = None

    def paths(self) -> list[Path]:
        """Every file, for fingerprints and sidecars."""
        return [path for path in (self.sphere, self.project_to, self.unproject_from) if path is not None]


def _nilearn_fsaverage5(hemisphere: str) -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5" / f"sphere_{NILEARN_HEMISPHERES[hemisphere]}.gii.gz"


def _first(folder: Path, hemisphere: str, parts: tuple[str, ...], without: tuple[str, ...] = ()) -> Path | None:
    """The first ``*_sphere.surf.gii`` of ``folder`` whose name holds ``hemi-<hemisphere>`` and every one of ``parts``
    and none of ``without``."""
    if not folder.is_dir():
        return None
    for path in sorted(folder.rglob("*_sphere.surf.gii")):
        entities = path.name[: -len("_sphere.surf.gii")].split("_")
        if (f"hemi-{hemisphere}" in entities and all(part in entities for part in parts)
                and not any(part.split("-")[0] in {e.split("-")[0] for e in entities} for part in without)
                and path.is_file()):
            return path
    return None


def _fsaverage_sphere(home: Path, hemisphere: str) -> Path | None:
    folder = home / "tpl-fsaverage"
    return (_first(folder, hemisphere, ("den-164k",), without=("space-", "desc-"))
            or _first(folder, hemisphere, ("den-164k", "desc-std"), without=("space-",)))


def template_spheres(space: OutputSpace, home: Path) -> dict[str, TemplateSphere] | str:
    """Per hemisphere, the files that reach surface template ``space``; or why it must be skipped (one line)."""
    if space.name == BUNDLED_SURFACE_TEMPLATE:
        return {h: TemplateSphere(_nilearn_fsaverage5(h)) for h in HEMISPHERES}
    found: dict[str, TemplateSphere] = {}
    for hemisphere in HEMISPHERES:
        fsaverage = _fsaverage_sphere(home, hemisphere)
        if fsaverage is None:
            return f"no fsaverage 164k sphere (tpl-fsaverage_hemi-{hemisphere}_den-164k_sphere.surf.gii) in {home}"
        if space.name == "fsaverage":
            found[hemisphere] = TemplateSphere(fsaverage)
            continue
        target = _first(home / "tpl-fsLR", hemisphere, (f"den-{space.density}",), without=("space-", "desc-"))
        if target is None:
            return f"no tpl-fsLR_hemi-{hemisphere}_den-{space.density}_sphere.surf.gii in {home}"
        across = (_first(home / "tpl-fsLR", hemisphere, ("den-164k", "space-fsaverage"))
                  or _first(home / "tpl-fsaverage", hemisphere, ("den-164k", "space-fsLR")))
        if across is None:
            return (f"no fsaverage-to-fsLR registration sphere (tpl-fsLR_space-fsaverage_hemi-{hemisphere}_den-164k"
                    f"_sphere.surf.gii) in {home}")
        found[hemisphere] = TemplateSphere(target, project_to=fsaverage, unproject_from=across)
    return found

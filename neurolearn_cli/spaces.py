"""Output spaces: fMRIPrep's ``--output-spaces`` syntax, parsed once into typed values.

A space is a template with optional modifiers (``MNI152NLin2009aSym:res-2``,
``MNIPediatricAsym:cohort-2:res-1``) or a nonstandard space (``T1w``). Surface
spaces hold the BOLD sampled on the cortex: the participant's own surfaces
(``fsnative``) or a surface template (``fsaverage5``, ``fsaverage``,
``fsLR:den-32k``), reached through the sphere registered to fsaverage. The
templates are the bundled MNI152NLin2009aSym and those of the local
TemplateFlow home (:mod:`neurolearn_cli.templateflow`); parsing checks the
syntax, :func:`check_available` that the template is there.
``res-<label>`` selects one of the template's own grids, numbered as
TemplateFlow numbers them (``res-1`` is the 1 mm grid, ``res-2`` the 2 mm one);
``res-native`` or no ``res`` keeps the BOLD's voxel size on the template's
extent, as fMRIPrep does, and puts no ``res-`` entity in the file names.

This module imports nothing heavy, so the command line validates spaces
before torch is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neurolearn_cli.templateflow import ENV_VARIABLE, TemplateFiles, resolution_label

#: The template nilearn bundles: always available, the default output space.
BUNDLED_TEMPLATE = "MNI152NLin2009aSym"
#: The bundled template's grids: name -> ``res-`` labels -> voxel size (mm).
TEMPLATE_RESOLUTIONS: Mapping[str, Mapping[str, float]] = {BUNDLED_TEMPLATE: {"1": 1.0, "2": 2.0}}
#: Spaces that are not templates: the participant's own anatomy (its T1w grid, its cortical surfaces).
NONSTANDARD_SPACES = ("T1w", "fsnative")
#: The participant's own cortical surfaces (the surfaces stage's meshes).
SURFACE_NATIVE = "fsnative"
#: Surface templates: name -> the mesh densities offered as ``den-`` labels (the first the default, always written
#: in file names); none where the name fixes the mesh (fsaverage5: 10k vertices, fsaverage: 164k). fsaverage5 is
#: bundled with nilearn; the others need the TemplateFlow home's spheres and are skipped with a warning without them.
SURFACE_TEMPLATES: Mapping[str, tuple[str, ...]] = {"fsaverage5": (), "fsaverage": (), "fsLR": ("32k",)}
#: The surface template nilearn bundles: always available.
BUNDLED_SURFACE_TEMPLATE = "fsaverage5"
NATIVE = "native"
DEFAULT_OUTPUT_SPACES = (f"{BUNDLED_TEMPLATE}:res-2", "T1w")
_LABEL = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class OutputSpace:
    """One output space.

    Attributes
    ----------
    name : str
        Template name (``space-`` entity) or a nonstandard space such as ``T1w``.
    resolution : str or None
        The template grid's ``res-`` label; None for the BOLD's own voxel size.
    cohort : str or None
        The template's ``cohort-`` label, for templates that have cohorts.
    density : str or None
        A surface template's mesh density (``den-`` label, e.g. ``32k``); None
        where the name says it (``fsaverage5``, ``fsaverage``).
    """

    name: str
    resolution: str | None = None
    cohort: str | None = None
    density: str | None = None

    @property
    def is_surface(self) -> bool:
        """Whether this is a surface space (BOLD sampled on the cortex) rather than a volume."""
        return self.name == SURFACE_NATIVE or self.name in SURFACE_TEMPLATES

    @property
    def is_template(self) -> bool:
        """Whether this is a volume template space (rather than the participant's T1w or a surface space)."""
        return self.name not in NONSTANDARD_SPACES and not self.is_surface

    @property
    def entities(self) -> dict[str, str]:
        """The BIDS entities this space adds to a file name (``space``, ``cohort``, ``res``)."""
        entities = {"space": self.name}
        if self.cohort is not None:
            entities["cohort"] = self.cohort
        if self.resolution is not None:
            entities["res"] = self.resolution
        if self.density is not None:
            entities["den"] = self.density
        return entities

    @property
    def template_label(self) -> str:
        """The template and cohort as fMRIPrep names them in transforms' ``to-``/``from-`` (``name+cohort``)."""
        return self.name if self.cohort is None else f"{self.name}+{self.cohort}"

    def __str__(self) -> str:
        """fMRIPrep's spelling, e.g. ``MNI152NLin2009aSym:res-2``."""
        modifiers = [f"{key}-{value}" for key, value in
                     (("cohort", self.cohort), ("res", self.resolution), ("den", self.density)) if value is not None]
        return ":".join([self.name, *modifiers])


def volume_spaces(spaces: Iterable[OutputSpace]) -> tuple[OutputSpace, ...]:
    """The volume spaces of ``spaces`` (templates and T1w): each a preprocessed BOLD NIfTI."""
    return tuple(space for space in spaces if not space.is_surface)


def surface_spaces(spaces: Iterable[OutputSpace]) -> tuple[OutputSpace, ...]:
    """The surface spaces of ``spaces`` (fsnative and surface templates): each a GIFTI time series per hemisphere."""
    return tuple(space for space in spaces if space.is_surface)


def first_template(spaces: Iterable[OutputSpace]) -> OutputSpace | None:
    """The first template space of ``spaces``: where parcel time series are extracted."""
    return next((space for space in spaces if space.is_template), None)


def standard_spaces(spaces: Iterable[OutputSpace]) -> tuple[OutputSpace, ...]:
    """The template spaces of ``spaces`` other than the bundled template: those of the TemplateFlow home.

    smri registers the T1w to each of their templates and writes its outputs in each.
    """
    return tuple(space for space in spaces if space.is_template and space.name != BUNDLED_TEMPLATE)


def atlas_space(atlas: Path | None, option: str | None) -> str:
    """The template an atlas is defined on: ``--atlas-space``, else its file name's ``tpl-``/``space-``, else the bundled."""
    if option is not None:
        return option
    entities = dict(part.split("-", 1) for part in (atlas.name.split(".")[0].split("_") if atlas else ()) if "-" in part)
    return entities.get("tpl") or entities.get("space") or BUNDLED_TEMPLATE


def atlas_template(space: str, templates: Mapping[tuple[str, str | None], TemplateFiles]) -> str | None:
    """The TemplateFlow template an atlas in ``space`` is warped through: ``space`` when the home has it.

    None when the atlas is applied in the bundled template: it is defined
    there, or its own template is not in the home (then the two templates'
    world coordinates are taken as equal, an approximation of a few mm).
    """
    return space if space != BUNDLED_TEMPLATE and (space, None) in templates else None


def available_spaces(templates: Mapping[tuple[str, str | None], TemplateFiles]) -> str:
    """The spaces this installation offers (the bundled template, ``templates``, T1w), for error messages."""
    offered: dict[tuple[str, str | None], list[str]] = {(BUNDLED_TEMPLATE, None): list(TEMPLATE_RESOLUTIONS[BUNDLED_TEMPLATE])}
    offered.update({key: list(files.resolutions) for key, files in sorted(templates.items(), key=str)
                    if key[0] != BUNDLED_TEMPLATE})
    listed = [f"{OutputSpace(name, cohort=cohort)} (res-{', res-'.join(resolutions)} or res-{NATIVE})"
              for (name, cohort), resolutions in offered.items()]
    surfaces = [f"{name}:den-{densities[0]}" if densities else name for name, densities in SURFACE_TEMPLATES.items()]
    return ", ".join([*listed, *NONSTANDARD_SPACES, *surfaces])


def parse_output_space(spec: str) -> OutputSpace:
    """Parse one ``--output-spaces`` value (its syntax; :func:`check_available` checks the template).

    Raises
    ------
    ValueError
        One line naming the value: a bad name or modifier.
    """
    name, *modifiers = spec.strip().split(":")
    if not _LABEL.fullmatch(name):
        raise ValueError(f"output space {spec!r}: a space is a template name or {', '.join(NONSTANDARD_SPACES)}")
    if name in NONSTANDARD_SPACES:
        if modifiers:
            kept = "its vertices" if name == SURFACE_NATIVE else "the BOLD's voxel size"
            raise ValueError(f"output space {spec!r}: {name} takes no modifiers (it keeps {kept})")
        return OutputSpace(name)
    surface = name in SURFACE_TEMPLATES
    keys = ("den",) if surface else ("res", "cohort")
    values: dict[str, str] = {}
    for modifier in modifiers:
        key, _, value = modifier.partition("-")
        if key not in keys or not _LABEL.fullmatch(value) or key in values:
            expected = " or ".join(f"{key}-<label>" for key in keys)
            raise ValueError(f"output space {spec!r}: bad modifier {modifier!r} (expected {expected})")
        values[key] = value
    if surface:
        densities = SURFACE_TEMPLATES[name]
        density = values.get("den", densities[0] if densities else None)
        if density not in densities and density is not None:
            offered = f"den-{', den-'.join(densities)}" if densities else "its own mesh only (no den- modifier)"
            raise ValueError(f"output space {spec!r}: {name} is offered at {offered}")
        return OutputSpace(name, density=density)
    resolution = values.get("res", NATIVE)
    return OutputSpace(name, None if resolution == NATIVE else resolution_label(resolution), values.get("cohort"))


def check_available(space: OutputSpace, templates: Mapping[tuple[str, str | None], TemplateFiles], home: Path) -> None:
    """Refuse a template space that neither the bundled template nor the TemplateFlow ``home`` offers.

    Raises
    ------
    ValueError
        One line naming the space, what is missing, the directory looked in
        and the spaces available.
    """
    if not space.is_template:  # T1w, fsnative and the surface templates (skipped at run time without their spheres)
        return
    available = f"available: {available_spaces(templates)}"
    if space.name == BUNDLED_TEMPLATE:
        resolutions, cohorts, where = list(TEMPLATE_RESOLUTIONS[BUNDLED_TEMPLATE]), [], "(bundled)"
    else:
        if space.name not in {name for name, _ in templates}:
            raise ValueError(f"unknown output space {str(space)!r}: no template {space.name} in the TemplateFlow "
                             f"home {home} (--templateflow-dir, else ${ENV_VARIABLE}); {available}")
        cohorts = sorted(str(cohort) for name, cohort in templates if name == space.name and cohort is not None)
        found = templates.get((space.name, space.cohort))
        resolutions, where = ([] if found is None else list(found.resolutions)), f"in {home}"
    if space.cohort is None and cohorts:
        raise ValueError(f"output space {str(space)!r}: {space.name} has cohorts {', '.join(cohorts)} {where}; "
                         f"name one, e.g. {space.name}:cohort-{cohorts[0]}")
    if space.cohort is not None and space.cohort not in cohorts:
        has = f"cohorts {', '.join(cohorts)}" if cohorts else "no cohorts"
        raise ValueError(f"output space {str(space)!r}: {space.name} has {has} {where}; {available}")
    if space.resolution is not None and space.resolution not in resolutions:
        raise ValueError(f"output space {str(space)!r}: {space.name} has no resolution res-{space.resolution} "
                         f"{where}; {available}")

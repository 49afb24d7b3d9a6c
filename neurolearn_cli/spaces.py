"""Output spaces: fMRIPrep's ``--output-spaces`` syntax, parsed once into typed values.

A space is a template with optional modifiers (``MNI152NLin2009aSym:res-2``,
``MNIPediatricAsym:cohort-2:res-1``) or a nonstandard space (``T1w``).
``res-<label>`` selects one of the template's own grids, numbered as
TemplateFlow numbers them (``res-1`` is the 1 mm grid, ``res-2`` the 2 mm one);
``res-native`` or no ``res`` keeps the BOLD's voxel size on the template's
extent, as fMRIPrep does, and puts no ``res-`` entity in the file names.

This module imports nothing heavy, so the command line validates spaces
before torch is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The template nilearn bundles: always available, the default output space.
BUNDLED_TEMPLATE = "MNI152NLin2009aSym"
#: Templates available offline: name -> their grids' ``res-`` labels -> voxel size (mm).
TEMPLATE_RESOLUTIONS: Mapping[str, Mapping[str, float]] = {BUNDLED_TEMPLATE: {"1": 1.0, "2": 2.0}}
#: Spaces that are not templates: the participant's own anatomy.
NONSTANDARD_SPACES = ("T1w",)
NATIVE = "native"
DEFAULT_OUTPUT_SPACES = (f"{BUNDLED_TEMPLATE}:res-2", "T1w")


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
    """

    name: str
    resolution: str | None = None
    cohort: str | None = None

    @property
    def is_template(self) -> bool:
        """Whether this is a template space (rather than the participant's T1w)."""
        return self.name not in NONSTANDARD_SPACES

    @property
    def entities(self) -> dict[str, str]:
        """The BIDS entities this space adds to a file name (``space``, ``cohort``, ``res``)."""
        entities = {"space": self.name}
        if self.cohort is not None:
            entities["cohort"] = self.cohort
        if self.resolution is not None:
            entities["res"] = self.resolution
        return entities

    def __str__(self) -> str:
        """fMRIPrep's spelling, e.g. ``MNI152NLin2009aSym:res-2``."""
        modifiers = [f"{key}-{value}" for key, value in (("cohort", self.cohort), ("res", self.resolution))
                     if value is not None]
        return ":".join([self.name, *modifiers])


def first_template(spaces: Iterable[OutputSpace]) -> OutputSpace | None:
    """The first template space of ``spaces``: where parcel time series are extracted."""
    return next((space for space in spaces if space.is_template), None)


def available_spaces() -> str:
    """The spaces this installation offers, for error messages."""
    templates = [
        f"{name} (res-{', res-'.join(resolutions)} or res-{NATIVE})"
        for name, resolutions in TEMPLATE_RESOLUTIONS.items()
    ]
    return ", ".join([*templates, *NONSTANDARD_SPACES])


def parse_output_space(spec: str) -> OutputSpace:
    """Parse one ``--output-spaces`` value.

    Raises
    ------
    ValueError
        One line naming the value and the spaces available: an unknown space,
        resolution, cohort or modifier.
    """
    name, *modifiers = spec.strip().split(":")
    if name not in TEMPLATE_RESOLUTIONS and name not in NONSTANDARD_SPACES:
        raise ValueError(f"unknown output space {spec!r}; available: {available_spaces()}")
    values: dict[str, str] = {}
    for modifier in modifiers:
        key, _, value = modifier.partition("-")
        if key not in ("res", "cohort") or not value or key in values:
            raise ValueError(f"output space {spec!r}: bad modifier {modifier!r} (expected res-<label> or cohort-<label>)")
        values[key] = value
    if name in NONSTANDARD_SPACES:
        if values:
            raise ValueError(f"output space {spec!r}: {name} takes no modifiers (it keeps the BOLD's voxel size)")
        return OutputSpace(name)
    resolution = values.get("res")
    if resolution == NATIVE:
        resolution = None
    resolutions = TEMPLATE_RESOLUTIONS[name]
    if resolution is not None:
        resolution = resolution.lstrip("0") or "0"  # TemplateFlow writes res-02 for res-2
        if resolution not in resolutions:
            raise ValueError(f"output space {spec!r}: {name} has no resolution res-{values['res']}; "
                             f"available: {available_spaces()}")
    if "cohort" in values:
        raise ValueError(f"output space {spec!r}: {name} has no cohorts; available: {available_spaces()}")
    return OutputSpace(name, resolution)

"""Choose how a BOLD run's susceptibility distortion is estimated, from its planned fieldmaps.

Pure work on plan objects (sdcflows' ``find_estimators`` idea), so the choice
is printable and testable without images. In order of preference:

1. a phase-difference map with its magnitude;
2. two EPIs of the run (its ``B0FieldSource`` or ``IntendedFor``) with opposite PhaseEncodingDirection
   along one axis (the pair sharing the BOLD's PE axis first);
3. one EPI whose PhaseEncodingDirection is the reverse of the BOLD's: the
   BOLD reference is its partner (as fMRIPrep does).

Anything else is skipped with a note naming the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from neurolearn_cli.dataset.plan import FieldmapInput, ImageInput

_DIRECTIONS = {"i", "j", "k", "i-", "j-", "k-"}


@dataclass(frozen=True)
class PhasediffChoice:
    """Phase-difference map and its (first) magnitude."""

    phasediff: ImageInput
    magnitude: ImageInput


@dataclass(frozen=True)
class PepolarChoice:
    """Reverse phase-encoding pair; ``second`` None means the BOLD reference is the partner."""

    first: ImageInput
    second: ImageInput | None


def reverse(direction: str) -> str:
    """``j`` <-> ``j-``."""
    return direction[:-1] if direction.endswith("-") else f"{direction}-"


def _epi_by_direction(
    fieldmaps: Sequence[FieldmapInput], notes: list[str]
) -> dict[str, ImageInput]:
    """The first EPI (by path) of each PhaseEncodingDirection; EPIs without one are noted."""
    found: dict[str, ImageInput] = {}
    for fieldmap in sorted(
        (f for f in fieldmaps if f.kind == "epi"), key=lambda f: str(f.images[0].path)
    ):
        image = fieldmap.images[0]
        direction = str(image.metadata.get("PhaseEncodingDirection", "")).strip()
        if direction not in _DIRECTIONS:
            notes.append(f"{image.path.name}: no valid PhaseEncodingDirection; EPI fieldmap ignored")
            continue
        found.setdefault(direction, image)
    return found


def choose_estimator(
    fieldmaps: Sequence[FieldmapInput], bold: ImageInput
) -> tuple[PhasediffChoice | PepolarChoice | None, list[str]]:
    """The estimator for one BOLD run, and notes on what was left out and why."""
    notes: list[str] = []
    for fieldmap in fieldmaps:
        if fieldmap.kind == "phasediff" and len(fieldmap.images) >= 2:
            return PhasediffChoice(fieldmap.images[0], fieldmap.images[1]), notes
    for fieldmap in fieldmaps:
        name = fieldmap.images[0].path.name
        if fieldmap.kind == "phasediff":
            notes.append(f"{name}: phasediff without a magnitude image; ignored")
        elif fieldmap.kind != "epi":
            notes.append(f"{name}: {fieldmap.kind} fieldmaps are not supported")
    epis = _epi_by_direction(fieldmaps, notes)
    bold_direction = str(bold.metadata.get("PhaseEncodingDirection", "")).strip()
    pairs = sorted(
        (d for d in epis if not d.endswith("-") and reverse(d) in epis),
        key=lambda d: d[0] != bold_direction[:1],
    )
    if pairs:
        return PepolarChoice(epis[pairs[0]], epis[reverse(pairs[0])]), notes
    if bold_direction in _DIRECTIONS and reverse(bold_direction) in epis:
        return PepolarChoice(epis[reverse(bold_direction)], None), notes
    if epis:
        names = ", ".join(image.path.name for image in epis.values())
        notes.append(f"EPI fieldmaps {names} do not form a reverse phase-encoding pair with each "
                     "other or with the BOLD run")
    return None, notes

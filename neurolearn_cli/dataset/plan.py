"""Plain, printable plan objects: what each participant has and what will be run.

The BIDS query (:mod:`neurolearn_cli.dataset.query`) turns a dataset into these
objects before any computation (sdcflows' ``find_estimators`` idea), so they can
be printed by ``--dry-run`` and tested without images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ImageInput:
    """One input NIfTI file with its BIDS entities and (inherited) JSON metadata."""

    path: Path
    entities: dict[str, Any]
    metadata: dict[str, Any]
    shape: tuple[int, ...]
    zooms: tuple[float, ...]

    @property
    def relpath(self) -> str:
        """Path relative to the dataset root, as in provenance records (``sub-01/anat/...``)."""
        parts = self.path.parts
        for index, part in enumerate(parts):
            if part.startswith("sub-"):
                return "/".join(parts[index:])
        return self.path.name


@dataclass(frozen=True)
class FieldmapInput:
    """A fieldmap acquisition intended for some BOLD runs.

    ``kind`` is ``phasediff``, ``fieldmap`` or ``epi`` (reverse phase-encoding).
    ``images`` holds the phase/field/EPI image first, then magnitudes.
    """

    kind: str
    images: tuple[ImageInput, ...]


@dataclass(frozen=True)
class BoldRun:
    """One BOLD run, its key metadata and what comes with it."""

    image: ImageInput
    repetition_time: float
    n_volumes: int
    events: Path | None = None
    sbref: ImageInput | None = None
    fieldmaps: tuple[FieldmapInput, ...] = ()

    @property
    def has_slice_timing(self) -> bool:
        """Whether the sidecar gives SliceTiming."""
        return bool(self.image.metadata.get("SliceTiming"))


@dataclass(frozen=True)
class ParticipantPlan:
    """Everything one participant contributes, plus the problems found while planning.

    ``lesion`` is the T1w-space lesion mask (BIDS ``label-lesion_roi``), when
    the participant has one. A participant with ``problems`` is skipped (bad
    input, exit code 2) and the others run.
    """

    label: str
    sessions: tuple[str, ...]
    t1w: tuple[ImageInput, ...]
    bold: tuple[BoldRun, ...]
    problems: tuple[str, ...] = ()
    lesion: ImageInput | None = None

    @property
    def subject(self) -> str:
        """The ``sub-<label>`` prefix."""
        return f"sub-{self.label}"


@dataclass(frozen=True)
class DatasetPlan:
    """The participants of one run, in label order."""

    bids_dir: Path
    name: str
    participants: tuple[ParticipantPlan, ...]
    participants_table: Path | None = None

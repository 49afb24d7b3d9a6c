"""What a run did, as plain values: the input of the methods boilerplate and the report summary.

The facts are read from what the stages wrote (sidecars, confounds tables,
IQM files, analysis specs and results; see :mod:`neurolearn_cli.boilerplate.gather`)
and from the run's settings, so the text describes what actually ran. A value
that was not recorded is None, never a stand-in number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neurolearn_cli.mvpa.spec import AnalysisSpec


@dataclass(frozen=True)
class Software:
    """neurolearn's version, the device the computations ran on, and the libraries' versions."""

    version: str
    device: str
    libraries: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AnatFacts:
    """One participant's structural preprocessing (the smri stage's sidecars).

    ``t1w_images`` counts the T1w runs combined into the reference;
    ``volumes_ml`` maps ``GM``/``WM``/``CSF``/``TIV`` to mL; ``standard`` the
    TemplateFlow spaces the T1w was also normalized to (fMRIPrep's spelling);
    ``lesion_ml`` the volume of the lesion mask given (None without one);
    ``voxel_mm`` the T1w reference's voxel sizes (its native resolution);
    ``skull_stripped`` whether the T1w was recognised as already skull-stripped;
    ``noisy_air_ml`` the noisy air around the head left out of the tissue mixture (None: none was).
    """

    participant: str
    t1w_images: int
    template: str | None
    atlas: str | None = None
    atlas_space: str | None = None
    atlas_note: str | None = None
    affine_cost: float | None = None
    syn_similarity: float | None = None
    volumes_ml: Mapping[str, float] = field(default_factory=dict)
    standard: tuple[str, ...] = ()
    lesion_ml: float | None = None
    voxel_mm: tuple[float, float, float] | None = None
    skull_stripped: bool = False
    noisy_air_ml: float | None = None


@dataclass(frozen=True)
class BoldSurfaceFacts:
    """One BOLD run's series on the cortical surfaces (the fmri stage's GIFTI sidecars).

    ``spaces`` are the surface output spaces written (fMRIPrep's spelling),
    ``depths`` the fractions of the thickness sampled; the fractions count the
    vertex-depth samples kept, outside the brain mask or field of view, and
    left out as unreliable; ``missing_vertices`` the participant's vertices
    (fsnative) with no sample kept.
    """

    spaces: tuple[str, ...]
    hemispheres: tuple[str, ...]
    depths: tuple[float, ...]
    kept_fraction: float | None
    outside_fraction: float | None
    unreliable_fraction: float | None
    missing_vertices: int | None


@dataclass(frozen=True)
class BoldFacts:
    """One BOLD run's functional preprocessing (the fmri stage's sidecars and confounds).

    ``nonsteady_from`` says how the non-steady-state volumes were set
    (``detected`` or ``--dummy-scans``); ``notes`` are the fmri stage's own
    words on what it skipped and why;
    ``spaces`` the output spaces written (fMRIPrep's spelling); ``compcor``
    the retained components per CompCor mask (``CSF``, ``WM``, ``combined``,
    ``temporal``); ``fd_outliers``/``dvars_outliers`` count steady-state
    volumes above the run's thresholds, ``censored`` the ``motion_outlier``
    regressors; ``surfaces`` the series on the cortical surfaces, if any.
    """

    name: str
    participant: str
    repetition_time: float | None
    volumes: int
    nonsteady: int | None
    nonsteady_from: str | None
    slice_timing: bool | None
    slice_time_s: float | None
    sdc_method: str | None
    coregistration_method: str | None
    coregistration_cost: float | None
    spaces: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fd_threshold: float | None = None
    dvars_threshold: float | None = None
    mean_fd: float | None = None
    fd_outliers: int | None = None
    dvars_outliers: int | None = None
    censored: int | None = None
    compcor: Mapping[str, int] = field(default_factory=dict)
    highpass_cutoff_s: float | None = None
    connectivity_atlas: str | None = None
    denoising: tuple[str, ...] = ()
    surfaces: BoldSurfaceFacts | None = None


@dataclass(frozen=True)
class Analysis:
    """One pattern analysis: its validated spec and its results (``results.json``)."""

    spec: AnalysisSpec
    results: Mapping[str, Any]


@dataclass(frozen=True)
class SurfaceFacts:
    """One participant's cortical surfaces (the surfaces stage's sidecars and volume table).

    ``handles`` counts the topological defects of both hemispheres' white
    matter before correction, ``voxels_cut`` the voxels the correction left
    out, ``intersections`` the self-intersecting faces of the white and pial
    surfaces; ``volumes_ml`` holds the volume table's columns (None where not recorded).
    """

    participant: str
    handles: int | None = None
    voxels_cut: int | None = None
    intersections: int | None = None
    volumes_ml: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFacts:
    """Everything the boilerplate describes: the software and each stage's facts.

    A stage with no facts (an empty sequence) did not run and gets no section.
    ``qc_t1w``/``qc_bold`` count the images whose IQMs were computed.
    """

    software: Software
    anat: tuple[AnatFacts, ...] = ()
    surfaces: tuple[SurfaceFacts, ...] = ()
    bold: tuple[BoldFacts, ...] = ()
    qc_t1w: int = 0
    qc_bold: int = 0
    analyses: tuple[Analysis, ...] = ()

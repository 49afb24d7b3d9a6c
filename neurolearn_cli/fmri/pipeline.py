"""The functional pipeline for one BOLD run as one pure function.

Order (fMRIPrep's): non-steady-state detection -> BOLD reference -> head
motion (batched rigid, every volume to the reference) -> slice timing ->
susceptibility distortion from a phase-difference fieldmap or a reverse
phase-encoding EPI pair -> BOLD->T1w
coregistration (on the undistorted reference) -> ONE resampling per output
space through motion + distortion + coregistration (+ normalization) ->
confounds on the native-space series -> parcel time series and connectivity
in template space -> figures. No file IO; the workflow writes the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurolearn_cli.engine.image import Grid, Image, conform_grid
from neurolearn_cli.engine.registration import register_rigid_batched
from neurolearn_cli.engine.resample import resample, resample_labels
from neurolearn_cli.engine.transforms import AffineTransform, Chain, Transform
from neurolearn_cli.fmri import figures
from neurolearn_cli.fmri.confounds import Confounds, build_confounds, noise_masks
from neurolearn_cli.fmri.connectivity import (
    MIN_RESIDUAL_DOF,
    Connectivity,
    connectivity,
    parcel_means,
    residual_dof,
    select_confounds,
)
from neurolearn_cli.fmri.coregistration import Coregistration, coregister
from neurolearn_cli.fmri.fieldmap import (
    EpiGeometry,
    FieldmapSkipped,
    echo_time_difference,
    epi_geometry,
    phasediff_field,
    shift_displacement,
)
from neurolearn_cli.fmri.masking import intensity_mask
from neurolearn_cli.fmri.motion import motion_parameters, relative_rmsd
from neurolearn_cli.fmri.nonsteady import detect_nonsteady
from neurolearn_cli.fmri.pepolar import estimate_pepolar_field
from neurolearn_cli.fmri.reference import bold_reference
from neurolearn_cli.fmri.slicetiming import correct_slice_timing
from neurolearn_cli.fmri.surface import (
    CorticalSurfaces,
    RibbonSampling,
    resample_series,
    sample_ribbon,
)
from neurolearn_cli.spaces import (
    DEFAULT_OUTPUT_SPACES,
    SURFACE_NATIVE,
    OutputSpace,
    first_template,
    parse_output_space,
    surface_spaces,
    volume_spaces,
)

#: Confound strategy for connectivity (nilearn ``load_confounds`` names).
DENOISING_STRATEGY = ("motion", "wm_csf", "high_pass")


@dataclass(frozen=True)
class TemplateSpace:
    """A template the T1w was normalized to: smri's T1w -> template transform and the template's own grids.

    ``to_template`` maps template points to T1w points (fMRIPrep's
    ``from-T1w_to-<template>_mode-image_xfm``); ``grids`` are by ``res-`` label.
    """

    to_template: Transform
    grids: Mapping[str, Grid]


@dataclass(frozen=True)
class Anatomy:
    """What the smri stage provides: T1w-space images and the templates it normalized the T1w to.

    ``templates`` is keyed by :attr:`~neurolearn_cli.spaces.OutputSpace.template_label`;
    ``atlas_template`` is the template the atlas is applied in (its own, or the
    bundled one) and ``atlas_to_t1w`` maps T1w points to it, so the atlas
    reaches any other template through the T1w. ``lesion`` is smri's lesion
    mask on the T1w grid (None without one). ``surfaces`` holds the surfaces
    stage's meshes per hemisphere, when a surface output space asks for them.
    """

    t1w: Image
    mask: Image
    tissues: Mapping[str, Image]
    templates: Mapping[str, TemplateSpace]
    atlas_template: str
    atlas_to_t1w: Transform
    lesion: Image | None = None
    surfaces: Mapping[str, CorticalSurfaces] = field(default_factory=dict)


@dataclass(frozen=True)
class Fieldmap:
    """A phase-difference fieldmap with its magnitude and sidecar."""

    phasediff: Image
    magnitude: Image
    metadata: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class PepolarFieldmap:
    """A reverse phase-encoding EPI and its partner (None: the BOLD reference), with sidecars."""

    first: Image
    first_metadata: Mapping[str, Any]
    source: str
    second: Image | None = None
    second_metadata: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BoldOptions:
    """Run options that shape the outputs."""

    dummy_scans: int | None = None
    ignore: Sequence[str] = ()
    slice_time_ref: float = 0.5
    fd_threshold: float = 0.5
    dvars_threshold: float = 1.5
    output_spaces: Sequence[OutputSpace] = tuple(parse_output_space(s) for s in DEFAULT_OUTPUT_SPACES)


@dataclass(frozen=True)
class SpaceOutput:
    """The preprocessed series, its reference and brain mask in one output space."""

    space: OutputSpace
    bold: Image
    boldref: Image
    mask: Image


@dataclass(frozen=True)
class SurfaceOutput:
    """The preprocessed series on one hemisphere's vertices in one surface space: (V, T), NaN where missing."""

    space: OutputSpace
    hemisphere: str
    series: np.ndarray
    sampling: RibbonSampling


@dataclass(frozen=True)
class FmriResult:
    """Everything the fmri stage produces for one run."""

    boldref: Image
    n_nonsteady: int
    hmc: AffineTransform
    sdc: Transform | None
    coregistration: Coregistration
    spaces: list[SpaceOutput]
    confounds: Confounds
    connectivity: Connectivity | None
    figures: dict[str, bytes]
    slice_timing_reference: float | None
    notes: list[str] = field(default_factory=list)
    sdc_method: str = "none"
    connectivity_skipped: str | None = None
    surfaces: list[SurfaceOutput] = field(default_factory=list)


def grid_at_spacing(extent: Grid, spacing: tuple[float, float, float]) -> Grid:
    """An RAS grid of voxels of ``spacing`` mm covering ``extent``'s field of view.

    fMRIPrep's ``space-T1w`` and ``res-native`` template outputs: the BOLD's
    voxel size over the T1w's or the template's extent.
    """
    extent_mm = [n * s for n, s in zip(extent.shape, extent.spacing, strict=True)]
    nx, ny, nz = (max(2, int(np.ceil(e / s))) for e, s in zip(extent_mm, spacing, strict=True))
    return conform_grid(extent, spacing, (nx, ny, nz))


def output_grid(space: OutputSpace, anatomy: Anatomy, bold: Grid) -> Grid:
    """The grid of an output space: the template's own ``res-`` grid, else the BOLD's voxel size."""
    if not space.is_template:
        return grid_at_spacing(anatomy.t1w.grid, bold.spacing)
    if space.template_label not in anatomy.templates:
        raise ValueError(f"output space {space}: the anatomy was not normalized to {space.template_label}")
    grids = anatomy.templates[space.template_label].grids
    if space.resolution is not None:
        return grids[space.resolution]
    finest = min(grids.values(), key=lambda grid: grid.spacing)
    return grid_at_spacing(finest, bold.spacing)


def grid_center(grid: Grid) -> torch.Tensor:
    """World coordinates (mm) of a grid's centre: the pivot of the motion parameters."""
    ijk = torch.tensor(
        [(n - 1) / 2 for n in grid.shape] + [1.0], dtype=torch.float64, device=grid.device
    )
    return (grid.affine.to(torch.float64) @ ijk)[:3]


def _field_hz(
    fieldmap: Fieldmap | PepolarFieldmap, boldref: Image, bold_geometry: EpiGeometry
) -> tuple[Image, str]:
    """Off-resonance field (Hz) and the method's name; :class:`FieldmapSkipped` if metadata lack."""
    if isinstance(fieldmap, Fieldmap):
        delta_te = echo_time_difference(fieldmap.metadata, fieldmap.source)
        field_hz, _ = phasediff_field(fieldmap.phasediff, fieldmap.magnitude, delta_te)
        return field_hz, "phasediff fieldmap"
    first_geometry = epi_geometry(fieldmap.first_metadata, fieldmap.source)
    if fieldmap.second is None:
        second, second_geometry = boldref, bold_geometry
    else:
        second = fieldmap.second
        second_geometry = epi_geometry(fieldmap.second_metadata or {}, fieldmap.source)
    field_hz = estimate_pepolar_field(
        fieldmap.first, first_geometry, second, second_geometry, source=fieldmap.source
    )
    return field_hz, "reverse phase-encoding EPI pair (PEPOLAR)"


def distortion_correction(
    fieldmap: Fieldmap | PepolarFieldmap | None,
    metadata: Mapping[str, Any],
    boldref: Image,
    source: str,
    ignore: Sequence[str],
    notes: list[str],
) -> tuple[Transform | None, str]:
    """The SDC pull-back displacement on the boldref grid and the method (``none`` if skipped)."""
    if "fieldmaps" in ignore:
        notes.append("susceptibility distortion correction skipped (--ignore fieldmaps)")
        return None, "none"
    if fieldmap is None:
        notes.append("no fieldmap: susceptibility distortion correction skipped")
        return None, "none"
    try:
        geometry = epi_geometry(metadata, source)
        field_hz, method = _field_hz(fieldmap, boldref, geometry)
    except FieldmapSkipped as skipped:
        notes.append(f"susceptibility distortion correction skipped: {skipped}")
        return None, "none"
    return shift_displacement(field_hz, boldref.grid, geometry), method


def _slice_timing(
    series: torch.Tensor,
    metadata: Mapping[str, Any],
    repetition_time: float,
    skip: int,
    options: BoldOptions,
    source: str,
    notes: list[str],
) -> tuple[torch.Tensor, float | None]:
    if "slicetiming" in options.ignore:
        notes.append("slice-timing correction skipped (--ignore slicetiming)")
        return series, None
    times = metadata.get("SliceTiming")
    if not times:
        notes.append("no SliceTiming in the sidecar: slice-timing correction skipped")
        return series, None
    corrected = correct_slice_timing(
        series,
        times,
        repetition_time,
        slice_time_ref=options.slice_time_ref,
        slice_encoding_direction=metadata.get("SliceEncodingDirection", "k"),
        skip=skip,
        sidecar=source,
    )
    return corrected.data, corrected.reference_time


def preprocess_bold(
    bold: Image,
    metadata: Mapping[str, Any],
    repetition_time: float,
    anatomy: Anatomy,
    *,
    source: str,
    sbref: Image | None = None,
    fieldmap: Fieldmap | PepolarFieldmap | None = None,
    atlas_labels: Image | None = None,
    atlas_table: pd.DataFrame | None = None,
    options: BoldOptions = BoldOptions(),
) -> FmriResult:
    """Preprocess one BOLD run (4D, on its own grid) against the participant's anatomy.

    Raises
    ------
    InputError
        Bad metadata (e.g. SliceTiming of the wrong length), naming ``source``.
    """
    notes: list[str] = []
    n_nonsteady = detect_nonsteady(bold.data, options.dummy_scans)
    use_sbref = sbref if "sbref" not in options.ignore else None
    boldref = bold_reference(bold, n_nonsteady, sbref=use_sbref)
    hmc_matrices = register_rigid_batched(boldref.data, boldref.affine, bold.data, bold.affine)
    hmc = AffineTransform(hmc_matrices)
    series, stc_reference = _slice_timing(
        bold.data, metadata, repetition_time, n_nonsteady, options, source, notes
    )
    stc_bold = bold.with_data(series)
    sdc, sdc_method = distortion_correction(
        fieldmap, metadata, boldref, source, options.ignore, notes
    )
    undistorted = boldref if sdc is None else resample(boldref, boldref.grid, sdc, order="bspline")

    coreg = coregister(
        undistorted, intensity_mask(undistorted.data), anatomy.t1w, anatomy.tissues["WM"], lesion=anatomy.lesion
    )
    bold_to_t1w = coreg.transform.inverse()  # maps boldref points to T1w points
    unwarp: list[Transform] = [sdc] if sdc is not None else []
    native_chain: list[Transform] = unwarp + [hmc]

    # Native (boldref) space: confounds and figures
    native = resample(stc_bold, boldref.grid, Chain(native_chain))
    tissue_on_bold = {
        name: resample(image, boldref.grid, bold_to_t1w).data
        for name, image in anatomy.tissues.items()
    }
    brain_on_bold = resample(anatomy.mask, boldref.grid, bold_to_t1w).data > 0.5
    lesion_on_bold = None if anatomy.lesion is None else resample(anatomy.lesion, boldref.grid, bold_to_t1w).data
    masks = noise_masks(
        brain_on_bold, tissue_on_bold["GM"], tissue_on_bold["WM"], tissue_on_bold["CSF"], lesion=lesion_on_bold
    )
    center = grid_center(boldref.grid)
    motion = motion_parameters(hmc, center)
    confounds = build_confounds(
        native.data,
        masks,
        motion,
        relative_rmsd(hmc, center),
        repetition_time,
        n_nonsteady=n_nonsteady,
        fd_threshold=options.fd_threshold,
        dvars_threshold=options.dvars_threshold,
    )

    spaces: list[SpaceOutput] = []
    connectivity_result, connectivity_skipped = None, None
    parcel_space = first_template(options.output_spaces)
    for space in volume_spaces(options.output_spaces):
        grid = output_grid(space, anatomy, boldref.grid)
        # the normalization, for templates
        to_space = anatomy.templates[space.template_label].to_template if space.is_template else None
        to_bold = [coreg.transform] if to_space is None else [to_space, coreg.transform]
        # One band-limited interpolation each: a cubic spline would smooth the run by ~15 % FWHM
        boldref_out = resample(boldref, grid, Chain(to_bold + unwarp), order="sinc")
        bold_out = resample(stc_bold, grid, Chain(to_bold + native_chain), order="sinc")
        mask_out = resample(anatomy.mask, grid, to_space, order="nearest")
        spaces.append(
            SpaceOutput(
                space,
                bold_out.with_data(bold_out.data.clamp(min=0)),  # magnitude: ringing below 0 is artefact
                boldref_out.with_data(boldref_out.data.clamp(min=0)),
                mask_out,
            )
        )
        if space == parcel_space and atlas_labels is not None and atlas_table is not None:
            selected, sample_mask = select_confounds(confounds.table, DENOISING_STRATEGY)
            dof = residual_dof(len(sample_mask), selected.shape[1])
            if dof < MIN_RESIDUAL_DOF:
                connectivity_skipped = (f"{len(sample_mask)} volumes and {selected.shape[1]} confounds leave "
                                        f"{dof} residual degrees of freedom (at least {MIN_RESIDUAL_DOF} needed)")
                notes.append(f"parcel time series and connectivity skipped: {connectivity_skipped}")
            else:
                # the atlas is on its template's grid; it reaches another template through the T1w
                to_atlas = (None if space.template_label == anatomy.atlas_template or to_space is None
                            else Chain([to_space, anatomy.atlas_to_t1w]))
                labels = resample_labels(atlas_labels, grid, to_atlas)
                series_tp = parcel_means(bold_out.data, labels.data, atlas_table["index"].tolist())
                connectivity_result = connectivity(
                    series_tp, atlas_table["name"].tolist(), selected, sample_mask, repetition_time
                )

    surfaces = surface_outputs(stc_bold, Chain([coreg.transform] + native_chain), anatomy,
                               surface_spaces(options.output_spaces))
    carpet_tissues = {name: tissue_on_bold[name] > 0.5 for name in ("GM", "WM", "CSF")}
    figure_bytes = {
        "carpetplot": figures.carpet_plot(
            native.data,
            carpet_tissues,
            confounds.table["framewise_displacement"].to_numpy(float),
            confounds.table["std_dvars"].to_numpy(float),
            repetition_time,
            n_nonsteady=n_nonsteady,
            fd_threshold=options.fd_threshold,
            dvars_threshold=options.dvars_threshold,
            fmt="svg",
        ),
        "brainmask": figures.mask_figure(undistorted, brain_on_bold),
        "coreg": figures.coregistration_figure(undistorted, tissue_on_bold["WM"] > 0.5),
    }
    return FmriResult(
        boldref=boldref,
        n_nonsteady=n_nonsteady,
        hmc=hmc,
        sdc=sdc,
        coregistration=coreg,
        spaces=spaces,
        confounds=confounds,
        connectivity=connectivity_result,
        figures=figure_bytes,
        slice_timing_reference=stc_reference,
        notes=notes,
        sdc_method=sdc_method,
        connectivity_skipped=connectivity_skipped,
        surfaces=surfaces,
    )


def surface_outputs(bold: Image, t1w_to_bold: Transform, anatomy: Anatomy,
                    spaces: Sequence[OutputSpace]) -> list[SurfaceOutput]:
    """The series on each hemisphere in each surface space of ``spaces`` that ``anatomy.surfaces`` can reach.

    Sampled once per hemisphere along its ribbon from ``bold`` through
    ``t1w_to_bold`` (:func:`~neurolearn_cli.fmri.surface.sample_ribbon`), then
    taken to each surface template by its resampling weights.
    """
    outputs: list[SurfaceOutput] = []
    if not spaces:
        return outputs
    for hemisphere, cortex in anatomy.surfaces.items():
        sampling = sample_ribbon(bold, cortex.white, cortex.pial, t1w_to_bold, anatomy.mask)
        for space in spaces:
            if space.name == SURFACE_NATIVE:
                outputs.append(SurfaceOutput(space, hemisphere, sampling.series, sampling))
            elif space in cortex.to_templates:
                outputs.append(SurfaceOutput(space, hemisphere, resample_series(sampling.series,
                                                                                cortex.to_templates[space]), sampling))
    return outputs

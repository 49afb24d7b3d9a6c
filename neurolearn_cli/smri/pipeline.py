"""The structural pipeline as one pure function: T1w runs in, every smri result out.

Order: reference T1w -> robust affine to the template -> first unified
segmentation under affinely placed, broadly smoothed priors -> brain mask and
volumes (sanity-checked before the costly steps) -> diffeomorphic
normalization of the bias-corrected brain (its similarity to the template
checked) -> second segmentation under the
priors warped by the normalization (sharper: they now follow the subject's
folding) -> brain mask, tissue maps, labels, volumes (checked again, and the mask against the image border) -> atlas
in native space and per-parcel GM volume -> T1w, tissue maps, labels and mask
resampled into template space -> for each TemplateFlow template requested, the
bias-corrected brain registered directly to it and the same images resampled
into each of its requested grids. No file IO; the workflow writes what this returns.

A lesion mask (BIDS ``label-lesion_roi``, T1w space) is placed on the
reference T1w grid and follows every step: it is left out of each
registration's cost and of the tissue mixture, belongs to the brain mask,
holds no tissue, is labelled 4 in ``dseg``, and is resampled (thresholded at
one half) into every output space.

The second pass raised the Dice with fMRIPrep's segmentation of aomic sub-0001
(3 mm copy) from 0.83/0.87/0.59 to 0.85/0.89/0.67 (GM/WM/CSF); see
``benchmarks/RESULTS.md`` (section smri) for the measurements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch

from neurolearn_cli.engine.image import Grid, Image
from neurolearn_cli.engine.resample import resample, resample_labels
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.errors import InputError
from neurolearn_cli.smri.brainmask import brain_mask, foreground_mask, grow
from neurolearn_cli.smri.conform import conform_t1w
from neurolearn_cli.smri.initialize import FieldOfView, Initialization, initialize, noisy_air
from neurolearn_cli.smri.morphometry import (
    mask_volume_ml,
    morphometry_table,
    parcel_gm_volumes,
    tissue_volumes,
)
from neurolearn_cli.smri.normalize import Normalization, brain_only, normalize, normalize_direct
from neurolearn_cli.smri.parcellation import Atlas
from neurolearn_cli.smri.plausibility import (
    check_mask_border,
    check_normalization,
    check_snr,
    check_volumes,
)
from neurolearn_cli.smri.priors import warp_priors
from neurolearn_cli.smri.segmentation import CLASSES, Segmentation, class_mean_intensity, segment
from neurolearn_cli.smri.template import Template
from neurolearn_cli.smri.tissues import brain_tissues, hard_labels, label_table
from neurolearn_cli.spaces import OutputSpace
from neurolearn_cli.templateflow import StandardTemplate

AFFINE_PRIOR_FWHM_MM = 6.0
SYN_PRIOR_FWHM_MM = 3.0
#: How far beyond the first brain mask the T1w stays in the image given to the normalization.
REGISTRATION_MARGIN_MM = 2.0


@dataclass(frozen=True)
class BrainSegmentation:
    """One segmentation pass on the T1w grid: the EM result, the brain mask, tissue maps inside it, labels.

    ``template_mask_ml`` is the volume of the template's brain mask as the pass
    placed it on the T1w grid (the TIV estimate of :mod:`~neurolearn_cli.smri.morphometry`).
    """

    segmentation: Segmentation
    mask: Image
    probabilities: torch.Tensor
    dseg: Image
    template_mask_ml: float


def segment_brain(t1w: Image, template: Template, to_template: Transform, prior_fwhm_mm: float,
                  lesion: Image | None = None, *, skull_stripped: bool = False,
                  air: torch.Tensor | None = None) -> BrainSegmentation:
    """Unified segmentation of ``t1w`` under the template priors placed by ``to_template``, then mask and labels.

    ``to_template`` maps T1w world points to template points (an affine or the
    normalization's ``template_to_t1w`` chain); ``prior_fwhm_mm`` smooths the
    warped priors to tolerate its residual misregistration. ``lesion`` voxels
    are left out of the mixture, count as brain (tissue, for the brain mask)
    and as no tissue class; ``air`` voxels (boolean, :func:`~neurolearn_cli.smri.initialize.noisy_air`)
    are left out of it and count as nothing. An image already ``skull_stripped`` keeps its own
    foreground as the brain mask, its mixture has no non-brain class and its bias field is stiffer
    (:func:`~neurolearn_cli.smri.segmentation.segment`'s ``brain_only``). The
    mixture models voxels that mix GM with WM or CSF (partial volume, on every
    grid: the pure classes alone counted mixed GM/WM voxels as GM), and the
    tissue maps are fractions.
    """
    inside_lesion = None if lesion is None else lesion.data > 0.5
    left_out = inside_lesion if air is None else air if inside_lesion is None else air | inside_lesion
    seg = segment(t1w, warp_priors(template, t1w.grid, to_template, fwhm_mm=prior_fwhm_mm), mrf_beta=0.3,
                  exclude=left_out, partial_volume=True, brain_only=skull_stripped)
    template_mask = resample(template.mask, t1w.grid, to_template)
    if skull_stripped:
        mask = foreground_mask(t1w)
    else:
        posteriors = seg.posteriors
        if inside_lesion is not None:
            posteriors = posteriors.clone()
            posteriors[1] = torch.where(inside_lesion, 1.0, posteriors[1])
        mask = brain_mask(posteriors, template_mask, keep=inside_lesion)
    probabilities = brain_tissues(seg.posteriors, mask, inside_lesion)
    gm_mean, wm_mean = (class_mean_intensity(seg.mixture, CLASSES.index(name)) for name in ("GM", "WM"))
    dseg = hard_labels(probabilities, mask, seg.corrected.data, (gm_mean + wm_mean) / 2, inside_lesion)
    return BrainSegmentation(seg, mask, probabilities, dseg, mask_volume_ml(template_mask))


@dataclass(frozen=True)
class SpaceImages:
    """The bias-corrected T1w, tissue maps (``GM``/``WM``/``CSF``), labels, brain mask and lesion on a template grid."""

    t1w: Image
    tissues: dict[str, Image]
    dseg: Image
    mask: Image
    lesion: Image | None = None


@dataclass(frozen=True)
class StandardTarget:
    """A TemplateFlow template to register the T1w to, and the grid of each requested space of it."""

    template: StandardTemplate
    grids: Mapping[OutputSpace, Grid]


@dataclass(frozen=True)
class StandardResult:
    """The T1w's direct normalization to a TemplateFlow template and the images in each requested space."""

    template: StandardTemplate
    normalization: Normalization
    spaces: dict[OutputSpace, SpaceImages]


@dataclass(frozen=True)
class SmriResult:
    """Everything the smri stage produces for one participant (T1w grid unless named ``mni``/``standard``).

    ``tissues`` maps ``GM``/``WM``/``CSF`` to probability images inside the
    brain mask; ``lesion`` is the lesion mask on the T1w grid (None without
    one); ``mni`` holds the images in the bundled template, ``standard``
    the TemplateFlow templates' (in the order requested); ``qc`` holds numbers
    for reports and checks (registration costs, EM iterations, tissue and
    lesion volumes in mL); ``field_of_view`` says whether the input was
    already skull-stripped or its top cut off.
    """

    t1w: Image
    corrected: Image
    bias_field: Image
    mask: Image
    tissues: dict[str, Image]
    dseg: Image
    dseg_labels: pd.DataFrame
    normalization: Normalization
    atlas_labels: Image
    morphometry: pd.DataFrame
    mni: SpaceImages
    standard: list[StandardResult]
    qc: dict[str, float]
    field_of_view: FieldOfView
    lesion: Image | None = None


def registration_image(corrected: Image, mask: Image) -> Image:
    """The bias-corrected T1w within ``REGISTRATION_MARGIN_MM`` of ``mask``: the moving image of SyN.

    SyN sees a rim beyond the brain mask: the template's brain edge takes in the
    outer CSF, and matching it to the tight extraction alone shrank the template
    brain (aomic: TIV -11 %).
    """
    rim = grow(mask.data > 0.5, corrected.spacing, REGISTRATION_MARGIN_MM)
    return brain_only(corrected, mask.with_data(rim.float()))


def lesion_on_grid(lesion: Image, grid: Grid, to_lesion: Transform | None = None) -> Image:
    """A lesion mask resampled onto ``grid`` through ``to_lesion`` (linear, then thresholded at one half), as 0/1."""
    on_grid = resample(lesion, grid, to_lesion)
    return on_grid.with_data((on_grid.data > 0.5).float())


def into_grid(corrected: Image, tissues: Mapping[str, Image], dseg: Image, mask: Image, grid: Grid,
              to_t1w: Transform, lesion: Image | None = None) -> SpaceImages:
    """The T1w-space results resampled onto ``grid`` through ``to_t1w`` (template points -> T1w points)."""
    return SpaceImages(
        t1w=resample(corrected, grid, to_t1w, order="bspline"),
        tissues={name: resample(image, grid, to_t1w) for name, image in tissues.items()},
        dseg=resample_labels(dseg, grid, to_t1w),
        mask=resample(mask, grid, to_t1w, order="nearest"),
        lesion=None if lesion is None else lesion_on_grid(lesion, grid, to_t1w),
    )


def normalize_standard(corrected: Image, mask: Image, tissues: Mapping[str, Image], dseg: Image,
                       target: StandardTarget, lesion: Image | None = None) -> StandardResult:
    """Register the T1w directly to a TemplateFlow template and resample the results into its grids.

    The brain (with its rim) is registered to the template's brain; a template
    without brain files is registered head to head. ``lesion`` is left out of the cost.
    """
    template = target.template
    moving = registration_image(corrected, mask) if template.has_brain_mask else corrected
    norm = normalize_direct(moving, template, lesion=lesion)
    spaces = {space: into_grid(corrected, tissues, dseg, mask, grid, norm.t1w_to_template, lesion)
              for space, grid in target.grids.items()}
    return StandardResult(template, norm, spaces)


def affine_pass(t1w: Image, template: Template, lesion: Image | None = None
                ) -> tuple[Initialization, torch.Tensor | None, BrainSegmentation]:
    """The initial affine of conformed ``t1w`` and the first segmentation under the priors it places.

    Returns the initialization, the noisy air the mixture leaves out (None
    when the air is below the mixture's background level, as a zero-filled
    scan's is) and the segmentation, whose bias-corrected brain the
    normalization then registers.
    """
    init = initialize(t1w, template, lesion)
    air = None if init.air_floor is None else noisy_air(t1w, init.air_floor)
    first = segment_brain(t1w, template, init.transform.inverse(), AFFINE_PRIOR_FWHM_MM, lesion,
                          skull_stripped=init.field_of_view.skull_stripped, air=air)
    return init, air, first


def preprocess_t1w(
    t1w_images: Sequence[Image], sources: Sequence[str], template: Template, atlas: Atlas, device: torch.device,
    standard: Sequence[StandardTarget] = (),
    lesion: Image | None = None,
    lesion_source: str = "lesion mask",
) -> SmriResult:
    """Run the smri steps on one participant's T1w runs.

    Parameters
    ----------
    t1w_images, sources : sequence
        The T1w runs as read and their file names (for error messages).
    template : Template
        Normalization template with priors (2 mm is the usual working resolution).
    atlas : Atlas
        Parcellation in template space for the morphometry table.
    device : torch.device
        Where the computation runs.
    standard : sequence of StandardTarget
        TemplateFlow templates to normalize to as well, with their output grids
        (the atlas's own among them when ``atlas.via`` names it).
    lesion, lesion_source : Image, str, optional
        The lesion mask as read (T1w space; nonzero above one half is lesion)
        and its file name.

    Raises
    ------
    InputError
        Bad input (names the file), e.g. a lesion mask empty on the T1w's grid.
    ProcessingError
        An implausible result (:mod:`~neurolearn_cli.smri.plausibility`) or a failed step.
    """
    images = [image.to(device) for image in t1w_images]
    t1w = conform_t1w(images, sources)
    placed = None if lesion is None else lesion_on_grid(lesion.to(device), t1w.grid)
    if placed is not None and not bool(placed.data.any()):
        raise InputError(lesion_source, "lesion mask is empty on the T1w's grid (no voxel above 0.5 where the "
                                        "T1w is)")
    init, air, first = affine_pass(t1w, template, placed)
    stripped = init.field_of_view.skull_stripped
    check_volumes(tissue_volumes(first.probabilities, t1w))
    moving = registration_image(first.segmentation.corrected, first.mask)
    del first
    norm = normalize(moving, template, init.transform, lesion=placed)
    del moving
    check_normalization(norm.similarity)
    check_snr(init.wm_snr)
    brain = segment_brain(t1w, template, norm.template_to_t1w, SYN_PRIOR_FWHM_MM, placed, skull_stripped=stripped,
                          air=air)
    seg, mask, probabilities, dseg = brain.segmentation, brain.mask, brain.probabilities, brain.dseg
    tissues = {name: t1w.with_data(p) for name, p in zip(("GM", "WM", "CSF"), probabilities, strict=True)}
    volumes = tissue_volumes(probabilities, t1w, tiv_ml=brain.template_mask_ml)
    check_volumes(volumes)
    border_fraction = check_mask_border(mask)
    standard_results = [normalize_standard(seg.corrected, mask, tissues, dseg, target, placed) for target in standard]
    # the atlas reaches the T1w through the normalization to its own template, else through the bundled one's
    via = {result.template.name: result.normalization for result in standard_results if result.template.cohort is None}
    to_atlas = via[atlas.via].template_to_t1w if atlas.via is not None else norm.template_to_t1w
    labels = resample_labels(atlas.labels, t1w.grid, to_atlas)
    parcels = parcel_gm_volumes(tissues["GM"], labels, atlas.table)
    qc = {
        "affine_cost": init.cost,
        "syn_similarity": norm.similarity,
        "em_iterations": float(seg.iterations),
        "em_log_likelihood": seg.log_likelihood,
        "mask_border_fraction": border_fraction,
        **({} if init.wm_snr is None else {"wm_snr": init.wm_snr}),
        **{f"volume_{k}_ml": v for k, v in volumes.items()},
        **({} if placed is None else {"volume_lesion_ml": mask_volume_ml(placed)}),
        **({} if air is None else {"volume_noisy_air_ml": mask_volume_ml(t1w.with_data(air.float()))}),
    }
    return SmriResult(
        t1w=t1w,
        corrected=seg.corrected,
        bias_field=seg.bias_field,
        mask=mask,
        tissues=tissues,
        dseg=dseg,
        dseg_labels=label_table(lesion=placed is not None),
        normalization=norm,
        atlas_labels=labels,
        morphometry=morphometry_table(volumes, parcels),
        mni=into_grid(seg.corrected, tissues, dseg, mask, template.t1w.grid, norm.t1w_to_template, placed),
        standard=standard_results,
        qc=qc,
        field_of_view=init.field_of_view,
        lesion=placed,
    )

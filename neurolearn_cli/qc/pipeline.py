"""The qc computations as pure functions: images in, IQMs and report figures out.

:func:`anatomical_qc` takes the smri stage's T1w-space images, the template
and its transform to T1w; :func:`functional_qc` takes a raw BOLD series with
the fmri stage's confounds table and figures. No file IO; the workflow reads
their inputs and writes what they return.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.fmri.motion import MOTION_COLUMNS
from neurolearn_cli.qc.measures import MISSING_KEY, PROVENANCE_KEY, Measure, Missing
from neurolearn_cli.qc.report import ReportFigure
from neurolearn_cli.qc.surfaces import HemisphereQC

#: Template priors are warped onto every PRIOR_STRIDE-th T1w voxel (see :func:`anatomical_qc`).
PRIOR_STRIDE = 2
#: Titles of the fmri stage's figures, by their role in its planned outputs.
FMRI_FIGURE_TITLES = {
    "figure_brainmask": "BOLD reference and brain mask",
    "figure_coreg": "Coregistration (WM boundary)",
    "figure_carpetplot": "Carpet plot",
}


@dataclass(frozen=True)
class QCResult:
    """One image's IQMs (MRIQC's names) and report figures."""

    iqms: dict[str, Measure]
    figures: list[ReportFigure] = field(default_factory=list)


def figure(title: str, data: bytes, caption: str = "") -> ReportFigure:
    """A report figure from PNG or SVG bytes (the MIME type is read from the bytes)."""
    mime = "image/svg+xml" if data.lstrip().startswith((b"<?xml", b"<svg")) else "image/png"
    return ReportFigure(title=title, data=data, mime=mime, caption=caption)


def anatomical_qc(
    corrected: Image,
    bias: Image,
    mask: Image,
    dseg: Image,
    tissues: Mapping[str, Image],
    normalized: Mapping[str, tuple[Image, Image]],
    priors: Image,
    priors_to_t1w: Transform,
    *,
    conformed: Image,
    skull_stripped: bool = False,
) -> QCResult:
    """IQMs and figures of a preprocessed T1w.

    The IQMs are measured on ``conformed`` divided by the bias field (MRIQC's
    bias-corrected image, background included): smri's ``corrected`` T1w is
    zero where its segmentation left the background out, which would empty
    the noise reference of ``fber``, ``snrd_*``, ``qi_1`` and ``summary_bg_*``.

    Parameters
    ----------
    corrected, bias, mask, dseg : Image
        smri's bias-corrected T1w, bias field, brain mask and labels (1 GM, 2 WM, 3 CSF).
    tissues : mapping
        smri's tissue probability maps by name (``GM``, ``WM``, ``CSF``).
    normalized : mapping
        Per template the T1w was normalized to (``template`` and the
        TemplateFlow ones), the normalized T1w and the template's T1w on the
        same grid: one figure each.
    priors : Image
        A template's GM, WM and CSF priors stacked on the last axis, for the
        ``tpm_overlap_*`` IQMs (the qc workflow picks the template the run normalized to).
    priors_to_t1w : Transform
        Maps T1w points to the priors' template points (warps the priors onto the T1w).
    conformed : Image
        The reference T1w as smri conformed it (:func:`~neurolearn_cli.smri.conform.conform_t1w`), on ``corrected``'s grid.
    skull_stripped : bool
        smri recognised the T1w as already skull-stripped: it has no air or background, so the measures
        against them are missing (the zeros left in the brain's surface folds, with a few dim edge voxels,
        are no noise sample).
    """
    from neurolearn_cli.engine.resample import resample
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.anatomical import anatomical_iqms
    from neurolearn_cli.qc.masks import air_mask, artifact_mask, frame_mask, head_mask

    brain = mask.data > 0.5
    probabilities = {name.lower(): image.data for name, image in tissues.items()}
    # priors on every PRIOR_STRIDE-th T1w voxel: the overlap is a ratio of sums over the
    # brain, estimated as well from 1 voxel in 8, and warping the priors is qc's costliest step
    coarse = corrected.grid.strided(PRIOR_STRIDE)
    warped = resample(priors, coarse, priors_to_t1w).data
    warped_priors = {name: warped[..., index] for index, name in enumerate(("gm", "wm", "csf"))}
    raw = conformed.data
    # a stripped T1w's head is all but its zero frame: no air, and no background for fber
    head = ~frame_mask(raw) if skull_stripped else head_mask(raw) | brain
    air = air_mask(raw, head, brain, corrected.affine.cpu().numpy())
    artifacts = artifact_mask(raw, air, head, corrected.spacing)
    iqms = anatomical_iqms(
        raw / bias.data,
        corrected.spacing,
        brain,
        probabilities,
        head,
        air,
        artifacts,
        bias=bias.data,
        priors=warped_priors,
        prior_stride=PRIOR_STRIDE,
    )
    made = [
        figure(
            "Brain mask and tissue segmentation",
            figures.mosaic(corrected.data.cpu().numpy(), brain.cpu().numpy(), dseg.data.cpu().numpy()),
        ),
        *(figure(f"Normalization to {name}",
                 figures.normalization_check(t1w.data.cpu().numpy(), reference.data.cpu().numpy()),
                 "Template edges over the normalized T1w")
          for name, (t1w, reference) in normalized.items()),
    ]
    return QCResult(iqms=iqms, figures=made)


def surface_qc(corrected: Image, hemispheres: Mapping[str, HemisphereQC], display: str) -> QCResult:
    """Surface IQMs (:mod:`~neurolearn_cli.qc.surfaces`) and figures of the surfaces stage's outputs.

    ``corrected`` is smri's bias-corrected T1w, under the white and pial
    contours; ``display`` names the mesh of each hemisphere's ``display`` (the
    surface the thickness map is drawn on), for the caption.
    """
    from neurolearn_cli.qc.surface_figures import (
        THICKNESS_RANGE_MM,
        surface_contours,
        thickness_map,
    )
    from neurolearn_cli.qc.surfaces import surface_iqms

    whites = {h: s.white for h, s in hemispheres.items()}
    pials = {h: s.pial for h, s in hemispheres.items()}
    made = [
        figure("Cortical surfaces", surface_contours(corrected.data.cpu().numpy(), corrected.affine.double().cpu()
                                                     .numpy(), whites, pials),
               "White (GM/WM boundary) and pial (GM/CSF boundary) surfaces of both hemispheres cut by slices of "
               "the bias-corrected T1w: sagittal, coronal and axial rows"),
        figure("Cortical thickness", thickness_map({h: s.display for h, s in hemispheres.items()},
                                                   {h: s.thickness for h, s in hemispheres.items()}, display),
               f"Thickness per vertex, lateral and medial views of each hemisphere, colours from "
               f"{THICKNESS_RANGE_MM[0]:g} to {THICKNESS_RANGE_MM[1]:g} mm; the medial wall, where the surface "
               f"closes over the deep grey matter and holds no cortex, shows as thin; drawn on the {display} "
               "surface"),
    ]
    return QCResult(iqms=surface_iqms(hemispheres), figures=made)


def confound_figures(
    table: pd.DataFrame, repetition_time: float, dummies: int, *, fd_threshold: float
) -> list[ReportFigure]:
    """Report figures from the fmri stage's confounds table: motion traces, confound correlations.

    ``fd_threshold`` is the run's FD spike threshold (``--fd-spike-threshold``),
    drawn on the FD trace. The correlation figure is left out when the table
    has no varying global signal.
    """
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.confounds import REFERENCE, confound_correlations, top_correlates

    fd = table["framewise_displacement"].to_numpy(dtype=float)
    motion = table[list(MOTION_COLUMNS)].to_numpy(float)
    made = [figure("Head motion", figures.motion_traces(motion, fd, repetition_time, threshold=fd_threshold))]
    try:
        matrix = confound_correlations(table, skip=dummies)
    except ValueError:
        return made
    strongest = ", ".join(f"{name} (r = {r:.2f})" for name, r in top_correlates(matrix))
    made.append(
        figure(
            "Confound correlations",
            figures.confounds_correlation(matrix, REFERENCE),
            f"Pearson correlations among the {len(matrix)} confounds most correlated with "
            f"{REFERENCE}, after {dummies} non-steady-state volume(s); strongest: {strongest}",
        )
    )
    return made


def functional_qc(
    bold: Image,
    repetition_time: float,
    confounds: pd.DataFrame,
    fmri_figures: Mapping[str, bytes],
    *,
    fd_threshold: float,
) -> QCResult:
    """IQMs and figures of one BOLD run.

    The IQMs are computed on the raw series (``bold``), on its acquired grid
    (ghosting along the phase-encoding axis, smoothness), inside an intensity
    mask of its temporal median after the non-steady-state volumes. The
    non-steady-state count and the FD trace come from the fmri stage's
    ``confounds`` table.

    Parameters
    ----------
    fmri_figures : mapping
        The fmri stage's figure bytes by role (keys of :data:`FMRI_FIGURE_TITLES`); missing ones are left out.
    fd_threshold : float
        The run's FD spike threshold (``--fd-spike-threshold``), for the motion figure.
    """
    from neurolearn_cli.fmri.figures import CAPTIONS
    from neurolearn_cli.fmri.masking import intensity_mask
    from neurolearn_cli.qc.confounds import nonsteady_count
    from neurolearn_cli.qc.functional import functional_iqms

    dummies = nonsteady_count(confounds)
    made = confound_figures(confounds, repetition_time, dummies, fd_threshold=fd_threshold)
    # displacements between steady-state volumes only (NaN entries are dropped)
    fd_steady = confounds["framewise_displacement"].to_numpy(float)[dummies + 1 :]
    mask = intensity_mask(bold.data[..., dummies:].median(dim=-1).values)
    made += [
        figure(title, fmri_figures[role], CAPTIONS[role.removeprefix("figure_")])
        for role, title in FMRI_FIGURE_TITLES.items()
        if role in fmri_figures
    ]
    iqms = functional_iqms(bold.data, mask, bold.spacing, repetition_time, fd_steady, dummy_trs=dummies)
    return QCResult(iqms=iqms, figures=made)


def iqm_record(iqms: Mapping[str, Measure], bids_name: str,
               provenance: Mapping[str, str] | None = None) -> dict[str, object]:
    """An IQM JSON as MRIQC writes it, the source's name, why any measure is missing, and what it was measured against.

    A missing (or non-finite) measure is ``null``, never a placeholder number,
    and its reason is under :data:`~neurolearn_cli.qc.measures.MISSING_KEY`
    (``{"fber": "no background voxels"}``), present when something is missing.
    ``provenance`` (e.g. ``{"tpm_template": "MNI152NLin6Asym"}``, the template
    whose priors ``tpm_overlap_*`` compare with) goes under
    :data:`~neurolearn_cli.qc.measures.PROVENANCE_KEY`, as MRIQC's JSON has one.
    """
    values: dict[str, object] = {}
    missing: dict[str, str] = {}
    for name, value in iqms.items():
        if isinstance(value, Missing):
            missing[name] = value.reason
        elif isinstance(value, float) and not math.isfinite(value):
            missing[name] = "not a finite number"
        else:
            values[name] = value
            continue
        values[name] = None
    return {**values, "bids_name": bids_name, **({MISSING_KEY: missing} if missing else {}),
            **({PROVENANCE_KEY: dict(provenance)} if provenance else {})}

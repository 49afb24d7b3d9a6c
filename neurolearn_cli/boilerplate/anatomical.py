"""The methods paragraph of the smri stage (structural preprocessing), from its facts."""

from __future__ import annotations

from collections.abc import Sequence

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.facts import AnatFacts
from neurolearn_cli.boilerplate.wording import listing, number, plural, spread
from neurolearn_cli.engine.geometry import anisotropic
from neurolearn_cli.smri.initialize import HEAD_HEIGHT_MM, NOISE_FLOOR_SDS
from neurolearn_cli.smri.normalize import SYN_SETTINGS
from neurolearn_cli.smri.pipeline import (
    AFFINE_PRIOR_FWHM_MM,
    REGISTRATION_MARGIN_MM,
    SYN_PRIOR_FWHM_MM,
)
from neurolearn_cli.smri.plausibility import (
    MAX_MASK_BORDER_FRACTION,
    MIN_SYN_SIMILARITY,
    PLAUSIBLE_TIV_ML,
)
from neurolearn_cli.smri.segmentation import BIAS_REGULARIZATION, BRAIN_ONLY_BIAS_REGULARIZATION
from neurolearn_cli.smri.workflow import TEMPLATE_RESOLUTION_MM


def _found(anat: Sequence[AnatFacts]) -> str:
    images = sum(a.t1w_images for a in anat)
    if len(anat) == 1:
        return f"A total of {plural(images, 'T1-weighted (T1w) image')} was found for participant {anat[0].participant}."
    return f"A total of {plural(images, 'T1-weighted (T1w) image')} was found for the {len(anat)} participants."


def _measured(anat: Sequence[AnatFacts], attribute: str) -> list[float]:
    return [value for a in anat if (value := getattr(a, attribute)) is not None]


def _volumes(anat: Sequence[AnatFacts]) -> str:
    parts = []
    for tissue in ("GM", "WM", "CSF", "TIV"):
        values = [a.volumes_ml[tissue] for a in anat if tissue in a.volumes_ml]
        if values:
            parts.append(f"{tissue} {spread(values, 4, 'mL')}")
    return f" Resulting volumes: {listing(parts)}." if parts else ""


def _lesions(anat: Sequence[AnatFacts]) -> str:
    """What was done with lesion masks, when any participant had one."""
    volumes = [a.lesion_ml for a in anat if a.lesion_ml is not None]
    if not volumes:
        return ""
    whose = "The participant's" if len(anat) == 1 else f"For {plural(len(volumes), 'participant')}, a"
    return (f" {whose} lesion mask ({spread(volumes, 3, 'mL')}) was left out of the cost of every registration "
            "(the affine and diffeomorphic normalization and, for BOLD runs, the co-registration to the T1w) and "
            "out of the tissue mixture's fit: its voxels count as no tissue, are labelled 4 (lesion) in the tissue "
            "labels, are never in an aCompCor noise mask, and the mask was resampled (thresholded at one half) "
            "into each output space.")


def _noisy_air(anat: Sequence[AnatFacts]) -> str:
    """What was done with a noisy scan's air, when any participant's air was left out of the mixture."""
    volumes = [a.noisy_air_ml for a in anat if a.noisy_air_ml is not None]
    if not volumes:
        return ""
    whose = "The" if len(anat) == 1 else f"For {plural(len(volumes), 'participant')}, the"
    return (f" {whose} air around the head was noisy: its Rician noise floor ({NOISE_FLOOR_SDS:g} noise standard "
            "deviations, measured in the air) lay above the mixture's background level. The air outside the head "
            f"and no brighter than that floor ({spread(volumes, 4, 'mL')}) was left out of the mixture, as a "
            "zero-filled background is; modelled, it would have taken the non-brain Gaussians from the head.")


def _anisotropy(anat: Sequence[AnatFacts]) -> str:
    """What thick slices changed, when any participant's T1w had them."""
    thick = [a.voxel_mm for a in anat if a.voxel_mm is not None and anisotropic(a.voxel_mm)]
    if not thick:
        return ""
    sizes = listing(sorted({" x ".join(number(v, 2) for v in voxel) + " mm" for voxel in thick}))
    return (f" The T1w reference kept its anisotropic voxels ({sizes}): its effective resolution is that of the "
            "thick slices across them. Every step sets its widths in millimetres per axis (tissue-prior and "
            "bias-field smoothing, morphological radii, the registration pyramid, the Markov random field's "
            "neighbour weights, which fall with the square of the distance). Tissue volumes from thick slices are "
            "less certain than from thin ones: a slab that holds white matter, grey matter and CSF together has "
            "about the intensity of grey matter, so part of its white matter is counted as grey matter or CSF. "
            "Compare volumes between scans of the same slice thickness.")


def _mask_sentence(anat: Sequence[AnatFacts]) -> str:
    """How the brain mask was made: from the tissue classes, or kept from an already skull-stripped input."""
    cleaning = "opening, largest connected component, closing, holes filled"
    derived = (f"The brain mask was derived from the tissue posteriors and the warped template brain mask ({cleaning}); "
               "voxels of its outer layer that were mostly white matter with none inside the mask beside them "
               "(dura or a venous sinus as bright as white matter) were then removed.")
    stripped = [a.participant for a in anat if a.skull_stripped]
    if not stripped:
        return derived
    kept = (f"its non-zero voxels ({cleaning}) were kept as the brain mask, its tissue model had no "
            "non-brain class (every voxel of the image is brain), and its bias field was held "
            f"{BRAIN_ONLY_BIAS_REGULARIZATION / BIAS_REGULARIZATION:g} times stiffer than a whole head's (with no "
            "head around the brain to hold its edges, a smooth field would take up the contrast between the darker "
            "cortex outside and the white matter within).")
    if len(stripped) == len(anat):
        return f"The T1w image was recognised as already skull-stripped; {kept}"
    who = ("participant " if len(stripped) == 1 else "participants ") + listing(stripped)
    return f"{derived} For {who}, whose T1w was recognised as already skull-stripped, {kept}"


def _acceptance() -> str:
    """The plausibility checks a result passed (a participant failing one is reported as failed)."""
    low, high = PLAUSIBLE_TIV_ML
    return (f"A result was accepted only when the normalization's local correlation reached "
            f"{MIN_SYN_SIMILARITY:g}, the TIV lay between {low:.0f} and {high:.0f} mL with adult GM and WM "
            f"fractions of it, and the brain mask covered at most {100 * MAX_MASK_BORDER_FRACTION:.0f} % of the "
            "image border; otherwise the participant was reported as failed.")


def smri_section(anat: Sequence[AnatFacts], cite: Citations) -> Section:
    """Anatomical data preprocessing, for one participant or pooled over several."""
    templates = sorted({a.template for a in anat if a.template})
    template = listing(templates) if templates else "the template"
    several = any(a.t1w_images > 1 for a in anat)
    reference = (
        "Each T1w image was reoriented to RAS voxel order at its native resolution; where a participant had "
        "several, each was registered rigidly to the first, scaled to its brightness and the images were combined "
        "by their voxel-wise median, giving the T1w reference."
        if several else
        "The T1w image was reoriented to RAS voxel order at its native resolution and used as the T1w reference."
    ) + _anisotropy(anat)
    affine = _measured(anat, "affine_cost")
    syn = _measured(anat, "syn_similarity")
    text = [
        f"{_found(anat)} {reference} The reference was aligned affinely to the {template} template "
        f"{cite('mni2009')} (nilearn's bundled copy, at {TEMPLATE_RESOLUTION_MM} mm), starting from the head's "
        f"geometry within {HEAD_HEIGHT_MM:g} mm below its vertex and registering the subject's tissue map to the "
        "template's"
        + (f" (final cost {spread(affine)})" if affine else "") + ". "
        f"It was then segmented into grey matter (GM), white matter (WM) and cerebrospinal fluid (CSF) by unified "
        f"segmentation {cite('unified')}: a Gaussian mixture under the template's tissue priors (smoothed by "
        f"{AFFINE_PRIOR_FWHM_MM:g} mm FWHM), with a smooth multiplicative bias field (discrete cosine basis) that "
        "corrected the intensity non-uniformity and a mean-field Markov random field, fitted by expectation-"
        "maximization. The mixture also modelled partial volume: voxels mixing GM with WM or with CSF formed two "
        "more classes whose grey-matter fraction is uniform between 0 and 1 (as in FSL FAST), so the tissue "
        "probability maps are each voxel's expected tissue fractions." + _noisy_air(anat) + " "
        + _mask_sentence(anat),
        f"Volume-based spatial normalization to {template} was performed by symmetric diffeomorphic registration "
        f"{cite('syn')} with a local-correlation metric ({listing([f'{m:g} mm' for m in SYN_SETTINGS.levels_mm])} "
        f"levels, {listing([str(i) for i in SYN_SETTINGS.iterations])} iterations) of the bias-corrected T1w "
        f"reference, kept {REGISTRATION_MARGIN_MM:g} mm beyond the brain mask, to the template brain"
        + (f" (final local correlation {spread(syn)})" if syn else "") + ". "
        f"The segmentation was then repeated under the priors warped by the normalization (smoothed by "
        f"{SYN_PRIOR_FWHM_MM:g} mm FWHM), giving the final tissue maps, labels (1 GM, 2 WM, 3 CSF, as fMRIPrep "
        "writes them) and brain mask. Tissue volumes are sums of the tissue probabilities; the total intracranial "
        f"volume (TIV) is the template's brain mask pulled back to the T1w by the normalization {cite('tiv')}."
        + _volumes(anat) + _lesions(anat) + " " + _acceptance(),
    ]
    atlases = sorted({(a.atlas, a.atlas_space or "its template", a.atlas_note) for a in anat if a.atlas})
    parcels = [
        f"Grey-matter volume was summed within each parcel of the {name} atlas (defined on {space}"
        + (f"; {note}" if note else "") + "), brought to the T1w by the inverse normalization."
        for name, space, note in atlases
    ]
    text.append(" ".join([*parcels, f"The T1w reference, tissue maps, labels and brain mask were resampled into "
                                    f"{template} space at {TEMPLATE_RESOLUTION_MM} mm."]))
    standard = sorted({space for a in anat for space in a.standard})
    if standard:
        text.append(f"The T1w reference was also registered directly to {listing(standard)} (read from a local "
                    "TemplateFlow home): centre-of-mass start, affine registration (normalized cross-correlation) "
                    "of the brain to the template's brain, then the same symmetric diffeomorphic registration; the "
                    "T1w reference, tissue maps, labels and brain mask were resampled onto each template's own grid "
                    "at the resolution named.")
    return Section("Anatomical data preprocessing (smri)", tuple(text))

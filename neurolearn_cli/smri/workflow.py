"""The smri stage for one participant: read the T1w runs, run the pipeline, write derivatives.

IO stays here (engine reader in, derivatives writer out); every computation is
in :func:`neurolearn_cli.smri.pipeline.preprocess_t1w`. Outputs follow
fMRIPrep's names; each TemplateFlow template of ``--output-spaces`` adds its
transforms and the anatomical outputs in each requested space of it (the
template's own grid at the requested resolution, its finest for ``res-native``).
A participant with a lesion mask (``label-lesion_roi``) also gets it on the
T1w grid and in every output space, and names it in each sidecar's ``Sources``.
When every output is already recorded with the same inputs,
settings and version, the stage is skipped (``--resume``). Later stages read
the outputs by :func:`planned_outputs`; the runner decides, with
:func:`outputs_current`, whether smri runs before them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurolearn_cli.dataset.plan import ParticipantPlan
from neurolearn_cli.derivatives import raw_source
from neurolearn_cli.errors import InputError
from neurolearn_cli.spaces import OutputSpace, standard_spaces
from neurolearn_cli.stages import ParticipantContext

if TYPE_CHECKING:
    import torch

    from neurolearn_cli.smri.pipeline import StandardResult, StandardTarget
    from neurolearn_cli.templateflow import TemplateFiles

TEMPLATE_RESOLUTION_MM = 2
TISSUES = ("GM", "WM", "CSF")


def atlas_entity(name: str) -> str:
    """A BIDS-safe ``seg-`` value from an atlas name (alphanumerics only)."""
    return re.sub(r"[^A-Za-z0-9]", "", name) or "atlas"


def xfm_entities(subject: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    """fMRIPrep's ``from-<source>_to-<target>_mode-image_xfm.h5``."""
    return {**subject, "from": source, "to": target, "mode": "image", "suffix": "xfm", "extension": ".h5"}


def registered_templates(standard: Sequence[OutputSpace], atlas_via: str | None) -> list[OutputSpace]:
    """The TemplateFlow templates smri registers the T1w to, once each: the spaces' and the atlas's own."""
    templates = [OutputSpace(space.name, cohort=space.cohort) for space in standard]
    return list(dict.fromkeys(templates + ([OutputSpace(atlas_via)] if atlas_via else [])))


def planned_entities(participant: ParticipantPlan, template: str, atlas: str,
                     standard: Sequence[OutputSpace] = (), atlas_via: str | None = None) -> dict[str, dict[str, Any]]:
    """The entities of every file the stage writes, by role (for resume and for later stages).

    ``standard`` are the TemplateFlow spaces (:func:`~neurolearn_cli.spaces.standard_spaces`):
    roles ``<kind>_<space>`` (``preproc``, ``mask``, ``dseg``, ``probseg_<tissue>``)
    per space, and ``xfm_to_<template>``/``xfm_from_<template>`` per template
    of :func:`registered_templates` (``atlas_via``: the atlas's own template);
    with a lesion mask, ``lesion``, ``mni_lesion`` and ``lesion_<space>``.
    """
    sub = {"subject": participant.label, "datatype": "anat"}
    mni = {**sub, "space": template, "res": str(TEMPLATE_RESOLUTION_MM)}
    entities: dict[str, dict[str, Any]] = {
        "preproc": {**sub, "desc": "preproc", "suffix": "T1w", "extension": ".nii.gz"},
        "biasfield": {**sub, "desc": "biasfield", "suffix": "T1w", "extension": ".nii.gz"},
        "mask": {**sub, "desc": "brain", "suffix": "mask", "extension": ".nii.gz"},
        "dseg": {**sub, "suffix": "dseg", "extension": ".nii.gz"},
        "dseg_table": {**sub, "suffix": "dseg", "extension": ".tsv"},
        "atlas": {**sub, "seg": atlas, "suffix": "dseg", "extension": ".nii.gz"},
        "morph": {**sub, "seg": atlas, "stat": "gmvolume", "suffix": "morph", "extension": ".tsv"},
        "xfm_to_template": xfm_entities(sub, "T1w", template),
        "xfm_from_template": xfm_entities(sub, template, "T1w"),
        "mni_preproc": {**mni, "desc": "preproc", "suffix": "T1w", "extension": ".nii.gz"},
        "mni_mask": {**mni, "desc": "brain", "suffix": "mask", "extension": ".nii.gz"},
        "mni_dseg": {**mni, "suffix": "dseg", "extension": ".nii.gz"},
    }
    for tissue in TISSUES:
        entities[f"probseg_{tissue}"] = {**sub, "label": tissue, "suffix": "probseg", "extension": ".nii.gz"}
        entities[f"mni_probseg_{tissue}"] = {**mni, "label": tissue, "suffix": "probseg", "extension": ".nii.gz"}
    lesion = {"label": "lesion", "suffix": "roi", "extension": ".nii.gz"}
    if participant.lesion is not None:
        entities["lesion"] = {**sub, **lesion}
        entities["mni_lesion"] = {**mni, **lesion}
    for registered in registered_templates(standard, atlas_via):
        label = registered.template_label
        entities[f"xfm_to_{label}"] = xfm_entities(sub, "T1w", label)
        entities[f"xfm_from_{label}"] = xfm_entities(sub, label, "T1w")
    for space in standard:
        named = {**sub, **space.entities}
        entities[f"preproc_{space}"] = {**named, "desc": "preproc", "suffix": "T1w", "extension": ".nii.gz"}
        entities[f"mask_{space}"] = {**named, "desc": "brain", "suffix": "mask", "extension": ".nii.gz"}
        entities[f"dseg_{space}"] = {**named, "suffix": "dseg", "extension": ".nii.gz"}
        for tissue in TISSUES:
            entities[f"probseg_{tissue}_{space}"] = {**named, "label": tissue, "suffix": "probseg",
                                                     "extension": ".nii.gz"}
        if participant.lesion is not None:
            entities[f"lesion_{space}"] = {**named, **lesion}
    return entities


def planned_outputs(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, Path]:
    """Every file the stage writes, by role, for the context's template and atlas (read by later stages)."""
    entities = planned_entities(participant, context.template.name, atlas_entity(context.atlas.name),
                                standard_spaces(context.config.output_spaces), context.atlas.via)
    return {role: context.writer.path(e) for role, e in entities.items()}


def standard_targets(spaces: Sequence[OutputSpace], templates: Sequence[OutputSpace],
                     found: Mapping[tuple[str, str | None], TemplateFiles], device: torch.device) -> list[tuple[StandardTarget, dict[OutputSpace, str]]]:
    """Per TemplateFlow template of ``templates``: what to register to, the grids of its ``spaces``, their files.

    The registration uses the template's grid closest to the bundled
    template's working resolution (``TEMPLATE_RESOLUTION_MM``); a space is
    written on the template's own grid at its resolution, the finest for
    ``res-native``. Returns (:class:`~neurolearn_cli.smri.pipeline.StandardTarget`,
    space -> the T1w file of its grid, relative to ``home``) pairs.
    """
    from neurolearn_cli.smri.pipeline import StandardTarget
    from neurolearn_cli.templateflow import closest_resolution, load_standard, standard_grids

    targets = []
    for template_space in templates:
        key = (template_space.name, template_space.cohort)
        files = found[key]
        grids = standard_grids(files, device)
        finest = min(grids, key=lambda res: max(grids[res].spacing))
        chosen = {space: space.resolution or finest for space in spaces if (space.name, space.cohort) == key}
        template = load_standard(files, closest_resolution(grids, TEMPLATE_RESOLUTION_MM), device)
        targets.append((StandardTarget(template, {space: grids[res] for space, res in chosen.items()}),
                        {space: files.relative(files.resolutions[res].t1w) for space, res in chosen.items()}))
    return targets


def standard_metadata(result: StandardResult, grid_file: str, sources: list[str]) -> dict[str, Any]:
    """Sidecar of an output in a TemplateFlow template: which template, from where, how it was reached."""
    template = result.template
    registration = ("the T1w brain registered directly to the template's brain" if template.has_brain_mask else
                    "the T1w head registered directly to the template's head (the template has no brain mask "
                    "or brain T1w); the brain mask is the participant's, carried into the template")
    return {
        "SpatialReference": grid_file,
        "Template": {"Name": template.name, **({"Cohort": template.cohort} if template.cohort else {}),
                     "Source": "local TemplateFlow home (read from disk, never downloaded)",
                     "FilesUsed": list(template.files)},
        "Registration": f"{registration}: centre of mass, affine, then SyN (local correlation "
                        f"{result.normalization.similarity:.3f})",
        "TissuePriors": "the segmentation used the bundled MNI152NLin2009aSym priors; the template's own priors "
                        "are not needed",
        "Sources": sources,
    }


def outputs_current(participant: ParticipantPlan, context: ParticipantContext) -> bool:
    """Whether every smri output is recorded under ``context``'s fingerprint (the scheduler's check).

    True for a participant without T1w: smri has nothing to write, and a stage
    that needs its outputs refuses such a participant itself.
    """
    return not participant.t1w or context.writer.is_current(planned_outputs(participant, context).values())


def run_participant(participant: ParticipantPlan, context: ParticipantContext) -> None:
    """Structural preprocessing of one participant (the ``smri`` stage)."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.smri.pipeline import preprocess_t1w

    if not participant.t1w:
        raise InputError(participant.subject, "no T1w image: the smri stage needs one")
    writer, log = context.writer, context.log
    template, atlas = context.template, context.atlas
    standard = standard_spaces(context.config.output_spaces)
    entities = planned_entities(participant, template.name, atlas_entity(atlas.name), standard, atlas.via)
    outputs = {role: writer.path(e) for role, e in entities.items()}
    images = [load_image(image.path, context.device) for image in participant.t1w]
    sources = [str(image.path) for image in participant.t1w]
    lesion = participant.lesion
    targets = standard_targets(standard, registered_templates(standard, atlas.via), context.templates,
                               context.device)
    result = preprocess_t1w(images, sources, template, atlas, context.device, [target for target, _ in targets],
                            lesion=None if lesion is None else load_image(lesion.path, context.device),
                            lesion_source=str(lesion.path) if lesion is not None else "")

    raw = [raw_source(image.relpath) for image in participant.t1w]
    # the lesion shaped every output: each one names it among its sources
    lesion_raw = [] if lesion is None else [raw_source(lesion.relpath)]
    preproc_uri = "bids::" + writer.relative(outputs["preproc"])
    derived = [preproc_uri, *lesion_raw]
    space_meta = {"SpatialReference": f"{template.name} (nilearn's bundled MNI152 2009a symmetric, "
                                      f"{TEMPLATE_RESOLUTION_MM} mm)", "Sources": derived}

    def write(role: str, image: Any, metadata: dict[str, Any], labels: bool = False) -> None:
        writer.write_image(entities[role], image, metadata, labels=labels)

    if result.field_of_view.describe():
        log.info("%s: T1w recognised as %s", participant.subject, result.field_of_view.describe())
    write("preproc", result.corrected, {"Sources": raw + lesion_raw, "SkullStripped": result.field_of_view.skull_stripped,
                                         "Description": "Reference T1w, conformed to RAS, bias-field corrected"})
    write("biasfield", result.bias_field, {"Sources": raw + lesion_raw,
                                           "Description": "Estimated multiplicative bias field"})
    write("mask", result.mask, {"Type": "Brain", "Sources": derived}, labels=True)
    dseg_description = "1 GM, 2 WM, 3 CSF (fMRIPrep labels)" + (", 4 lesion (the lesion mask given)"
                                                                   if lesion is not None else "")
    write("dseg", result.dseg, {"Sources": derived, "Description": dseg_description}, labels=True)
    writer.write_tsv(entities["dseg_table"], result.dseg_labels)
    for tissue in TISSUES:
        write(f"probseg_{tissue}", result.tissues[tissue], {"Sources": derived})
        write(f"mni_probseg_{tissue}", result.mni.tissues[tissue], space_meta)
    if result.lesion is not None and result.mni.lesion is not None:
        lesion_meta = {"Type": "Lesion", "Description": "The lesion mask given, resampled (linear, thresholded at "
                       "0.5); it was left out of registration costs and of the tissue classes"}
        write("lesion", result.lesion, {**lesion_meta, "Sources": lesion_raw}, labels=True)
        write("mni_lesion", result.mni.lesion, {**space_meta, **lesion_meta}, labels=True)
    write("atlas", result.atlas_labels, {"Sources": derived, "Atlas": atlas.name, "AtlasSpace": atlas.space,
                                         "Note": atlas.note}, labels=True)
    writer.write_transform(entities["xfm_to_template"], result.normalization.t1w_to_template)
    writer.write_transform(entities["xfm_from_template"], result.normalization.template_to_t1w)
    write("mni_preproc", result.mni.t1w, space_meta)
    write("mni_mask", result.mni.mask, space_meta, labels=True)
    write("mni_dseg", result.mni.dseg, space_meta, labels=True)
    for standard_result, (_, resolutions) in zip(result.standard, targets, strict=True):
        label = OutputSpace(standard_result.template.name, cohort=standard_result.template.cohort).template_label
        writer.write_transform(entities[f"xfm_to_{label}"], standard_result.normalization.t1w_to_template)
        writer.write_transform(entities[f"xfm_from_{label}"], standard_result.normalization.template_to_t1w)
        for space, in_space in standard_result.spaces.items():
            meta = standard_metadata(standard_result, resolutions[space], derived)
            write(f"preproc_{space}", in_space.t1w, meta)
            write(f"mask_{space}", in_space.mask, meta, labels=True)
            write(f"dseg_{space}", in_space.dseg, meta, labels=True)
            for tissue in TISSUES:
                write(f"probseg_{tissue}_{space}", in_space.tissues[tissue], meta)
            if in_space.lesion is not None:
                write(f"lesion_{space}", in_space.lesion, {**meta, "Type": "Lesion"}, labels=True)
    morph_meta = {"Atlas": atlas.name, "AtlasSpace": atlas.space, "Note": atlas.note, "Units": "mL",
                  "Sources": derived, "QC": result.qc}
    writer.write_tsv(entities["morph"],
                     result.morphometry.assign(participant_id=participant.subject)[
                         ["participant_id", *result.morphometry.columns]], morph_meta)
    log.info("%s: smri done (GM %.0f mL, WM %.0f mL, CSF %.0f mL)", participant.subject,
             result.qc.get("volume_GM_ml", float("nan")), result.qc.get("volume_WM_ml", float("nan")),
             result.qc.get("volume_CSF_ml", float("nan")))

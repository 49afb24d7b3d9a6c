"""The smri stage for one participant: read the T1w runs, run the pipeline, write derivatives.

IO stays here (engine reader in, derivatives writer out); every computation is
in :func:`neurolearn_cli.smri.pipeline.preprocess_t1w`. Outputs follow
fMRIPrep's names. When every output is already recorded with the same inputs,
settings and version, the stage is skipped (``--resume``). Later stages read
the outputs by :func:`planned_outputs`; the runner decides, with
:func:`outputs_current`, whether smri runs before them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from neurolearn_cli.dataset.plan import ParticipantPlan
from neurolearn_cli.derivatives import raw_source
from neurolearn_cli.errors import InputError
from neurolearn_cli.stages import ParticipantContext

TEMPLATE_RESOLUTION_MM = 2
TISSUES = ("GM", "WM", "CSF")


def atlas_entity(name: str) -> str:
    """A BIDS-safe ``seg-`` value from an atlas name (alphanumerics only)."""
    return re.sub(r"[^A-Za-z0-9]", "", name) or "atlas"


def planned_entities(participant: ParticipantPlan, template: str, atlas: str) -> dict[str, dict[str, Any]]:
    """The entities of every file the stage writes, by role (for resume and for later stages)."""
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
        "xfm_to_template": {**sub, "from": "T1w", "to": template, "mode": "image", "suffix": "xfm", "extension": ".h5"},
        "xfm_from_template": {**sub, "from": template, "to": "T1w", "mode": "image", "suffix": "xfm", "extension": ".h5"},
        "mni_preproc": {**mni, "desc": "preproc", "suffix": "T1w", "extension": ".nii.gz"},
        "mni_mask": {**mni, "desc": "brain", "suffix": "mask", "extension": ".nii.gz"},
        "mni_dseg": {**mni, "suffix": "dseg", "extension": ".nii.gz"},
    }
    for tissue in TISSUES:
        entities[f"probseg_{tissue}"] = {**sub, "label": tissue, "suffix": "probseg", "extension": ".nii.gz"}
        entities[f"mni_probseg_{tissue}"] = {**mni, "label": tissue, "suffix": "probseg", "extension": ".nii.gz"}
    return entities


def planned_outputs(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, Path]:
    """Every file the stage writes, by role, for the context's template and atlas (read by later stages)."""
    entities = planned_entities(participant, context.template.name, atlas_entity(context.atlas.name))
    return {role: context.writer.path(e) for role, e in entities.items()}


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
    entities = planned_entities(participant, template.name, atlas_entity(atlas.name))
    outputs = {role: writer.path(e) for role, e in entities.items()}
    images = [load_image(image.path, context.device) for image in participant.t1w]
    sources = [str(image.path) for image in participant.t1w]
    result = preprocess_t1w(images, sources, template, atlas, context.device)

    raw = [raw_source(image.relpath) for image in participant.t1w]
    preproc_uri = "bids::" + writer.relative(outputs["preproc"])
    space_meta = {"SpatialReference": f"{template.name} (nilearn's bundled MNI152 2009a symmetric, "
                                      f"{TEMPLATE_RESOLUTION_MM} mm)", "Sources": [preproc_uri]}

    def write(role: str, image: Any, metadata: dict[str, Any], labels: bool = False) -> None:
        writer.write_image(entities[role], image, metadata, labels=labels)

    write("preproc", result.corrected, {"Sources": raw, "SkullStripped": False,
                                         "Description": "Reference T1w, conformed to RAS, bias-field corrected"})
    write("biasfield", result.bias_field, {"Sources": raw, "Description": "Estimated multiplicative bias field"})
    write("mask", result.mask, {"Type": "Brain", "Sources": [preproc_uri]}, labels=True)
    write("dseg", result.dseg, {"Sources": [preproc_uri], "Description": "1 GM, 2 WM, 3 CSF (fMRIPrep labels)"}, labels=True)
    writer.write_tsv(entities["dseg_table"], result.dseg_labels)
    for tissue in TISSUES:
        write(f"probseg_{tissue}", result.tissues[tissue], {"Sources": [preproc_uri]})
        write(f"mni_probseg_{tissue}", result.mni_tissues[tissue], space_meta)
    write("atlas", result.atlas_labels, {"Sources": [preproc_uri], "Atlas": atlas.name, "AtlasSpace": atlas.space,
                                         "Note": atlas.note}, labels=True)
    writer.write_transform(entities["xfm_to_template"], result.normalization.t1w_to_template)
    writer.write_transform(entities["xfm_from_template"], result.normalization.template_to_t1w)
    write("mni_preproc", result.mni_t1w, space_meta)
    write("mni_mask", result.mni_mask, space_meta, labels=True)
    write("mni_dseg", result.mni_dseg, space_meta, labels=True)
    morph_meta = {"Atlas": atlas.name, "AtlasSpace": atlas.space, "Note": atlas.note, "Units": "mL",
                  "Sources": [preproc_uri], "QC": result.qc}
    writer.write_tsv(entities["morph"],
                     result.morphometry.assign(participant_id=participant.subject)[
                         ["participant_id", *result.morphometry.columns]], morph_meta)
    log.info("%s: smri done (GM %.0f mL, WM %.0f mL, CSF %.0f mL)", participant.subject,
             result.qc.get("volume_GM_ml", float("nan")), result.qc.get("volume_WM_ml", float("nan")),
             result.qc.get("volume_CSF_ml", float("nan")))

"""The qc stage: IQMs and ``sub-<label>.html`` per participant, group tables and reports.

Participant level reads the smri outputs (running smri first when they are
missing) and the fmri outputs when present, finding both by the stages' own
planned entities; BOLD IQMs are computed on the raw series with an intensity
mask of its temporal median, so they exist with or without the fmri stage.
IQM JSONs go where MRIQC puts them (``sub-01/anat/sub-01_T1w.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli import atomic
from neurolearn_cli.dataset.plan import BoldRun, DatasetPlan, ImageInput, ParticipantPlan
from neurolearn_cli.derivatives import raw_entities
from neurolearn_cli.stages import StageContext

MOTION_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
PRIOR_STRIDE = 2


def iqm_entities(image: ImageInput, suffix: str) -> dict[str, Any]:
    """MRIQC's IQM file: the source's entities, no ``desc-``, ``.json``."""
    datatype = "anat" if suffix == "T1w" else "func"
    return {
        **raw_entities(image.entities),
        "datatype": datatype,
        "suffix": suffix,
        "extension": ".json",
    }


def bids_name(image: ImageInput) -> str:
    """Source file name without extension (``sub-01_task-rest_bold``)."""
    return image.path.name.split(".")[0]


def _figure(title: str, data: bytes, caption: str = "") -> Any:
    from neurolearn_cli.qc.report import ReportFigure

    mime = "image/svg+xml" if data.lstrip().startswith((b"<?xml", b"<svg")) else "image/png"
    return ReportFigure(title=title, data=data, mime=mime, caption=caption)


def _t1w_section(
    participant: ParticipantPlan, context: StageContext, template: Any, atlas: str
) -> Any:
    """IQMs and figures of the participant's reference T1w (``atlas``: the ``seg-`` entity)."""
    from neurolearn_cli.engine.io import load_image, load_images
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.anatomical import anatomical_iqms
    from neurolearn_cli.qc.masks import air_mask, artifact_mask, head_mask
    from neurolearn_cli.qc.report import ImageQC
    from neurolearn_cli.smri import workflow as smri

    device = context.device
    outputs = smri.current_outputs(participant, context, template.name, atlas)
    roles = ["preproc", "biasfield", "mask", "dseg", *(f"probseg_{t}" for t in smri.TISSUES)]
    loaded = dict(zip(roles, load_images([outputs[r] for r in roles], device), strict=True))
    corrected, bias = loaded["preproc"], loaded["biasfield"]
    brain = loaded["mask"].data > 0.5
    dseg = loaded["dseg"].data
    probabilities = {t.lower(): loaded[f"probseg_{t}"].data for t in smri.TISSUES}
    to_t1w = read_transform(outputs["xfm_from_template"]).to(device)
    # priors on every PRIOR_STRIDE-th T1w voxel: the overlap is a ratio of sums over the
    # brain, estimated as well from 1 voxel in 8, and warping the priors is qc's costliest step
    coarse = corrected.grid.strided(PRIOR_STRIDE)
    warped = resample(template.priors(), coarse, to_t1w).data
    priors = {name: warped[..., index] for index, name in enumerate(("gm", "wm", "csf"))}
    raw = corrected.data * bias.data  # the preprocessed T1w before bias correction
    head = head_mask(raw) | brain
    air = air_mask(raw, head, brain, corrected.affine.cpu().numpy())
    artifacts = artifact_mask(raw, air, head, corrected.spacing)
    iqms = anatomical_iqms(
        corrected.data,
        corrected.spacing,
        brain,
        probabilities,
        head,
        air,
        artifacts,
        bias=bias.data,
        priors=priors,
        prior_stride=PRIOR_STRIDE,
    )
    mni = load_image(outputs["mni_preproc"], device)
    anat_figures = [
        _figure(
            "Brain mask and tissue segmentation",
            figures.mosaic(corrected.data.cpu().numpy(), brain.cpu().numpy(), dseg.cpu().numpy()),
        ),
        _figure(
            "Normalization to MNI152NLin2009aSym",
            figures.normalization_check(mni.data.cpu().numpy(), template.t1w.data.cpu().numpy()),
            "Template edges over the normalized T1w",
        ),
    ]
    first = participant.t1w[0]
    return ImageQC(
        bids_name=bids_name(first), figures=anat_figures, iqms=iqms, metadata=first.metadata
    )


FMRI_FIGURE_TITLES = {
    "figure_brainmask": "BOLD reference and brain mask",
    "figure_coreg": "Coregistration (WM boundary)",
    "figure_carpetplot": "Carpet plot",
}


def fmri_outputs(run: BoldRun, context: StageContext, template: str, atlas: str) -> dict[str, Path]:
    """The fmri stage's paths for ``run``, by role, from its own planned entities."""
    from neurolearn_cli.fmri.pipeline import parse_space
    from neurolearn_cli.fmri.workflow import planned_entities

    spaces = [parse_space(spec) for spec in context.config.output_spaces]
    entities = planned_entities(run, spaces, atlas, template)
    return {role: context.writer.path(e) for role, e in entities.items()}


def confound_figures(table: pd.DataFrame, repetition_time: float, dummies: int) -> list[Any]:
    """Report figures from the fmri stage's confounds table: motion traces, confound correlations.

    The correlation figure is left out when the table has no varying global signal.
    """
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.confounds import REFERENCE, confound_correlations, top_correlates

    fd = table["framewise_displacement"].to_numpy(dtype=float)
    made = [
        _figure(
            "Head motion",
            figures.motion_traces(table[MOTION_COLUMNS].to_numpy(float), fd, repetition_time),
        )
    ]
    try:
        matrix = confound_correlations(table, skip=dummies)
    except ValueError:
        return made
    strongest = ", ".join(f"{name} (r = {r:.2f})" for name, r in top_correlates(matrix))
    made.append(
        _figure(
            "Confound correlations",
            figures.confounds_correlation(matrix, REFERENCE),
            f"Pearson correlations among the {len(matrix)} confounds most correlated with "
            f"{REFERENCE}, after {dummies} non-steady-state volume(s); strongest: {strongest}",
        )
    )
    return made


def _bold_section(run: BoldRun, outputs: dict[str, Path], context: StageContext) -> Any:
    """IQMs and figures of one BOLD run; ``outputs`` are the fmri stage's paths for it.

    The raw series is read here once: the IQMs are defined on the acquired
    grid (ghosting along the phase-encoding axis, smoothness), which the fmri
    stage's resampled outputs no longer have. The non-steady-state count, the
    FD trace and the figures come from the fmri stage's outputs when present.
    """
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.fmri.masking import intensity_mask
    from neurolearn_cli.fmri.nonsteady import detect_nonsteady
    from neurolearn_cli.qc.confounds import nonsteady_count
    from neurolearn_cli.qc.functional import functional_iqms
    from neurolearn_cli.qc.report import ImageQC

    bold = load_image(run.image.path, context.device)
    func_figures = []
    if outputs["confounds"].is_file():
        table = pd.read_csv(outputs["confounds"], sep="\t", na_values="n/a")
        dummies = nonsteady_count(table)
        func_figures.extend(confound_figures(table, run.repetition_time, dummies))
        # displacements between steady-state volumes only (NaN entries are dropped)
        fd_steady = table["framewise_displacement"].to_numpy(float)[dummies + 1 :]
    else:
        context.log.info(
            "%s: no fmri confounds for %s; FD-based IQMs are NaN",
            run.image.entities.get("subject"),
            run.image.path.name,
        )
        dummies = detect_nonsteady(bold.data, context.config.dummy_scans)
        fd_steady = np.array([])
    mask = intensity_mask(bold.data[..., dummies:].median(dim=-1).values)
    for role, title in FMRI_FIGURE_TITLES.items():
        if outputs[role].is_file():
            func_figures.append(_figure(title, outputs[role].read_bytes()))
    iqms = functional_iqms(
        bold.data, mask, bold.spacing, run.repetition_time, fd_steady, dummy_trs=dummies
    )
    return ImageQC(
        bids_name=bids_name(run.image), figures=func_figures, iqms=iqms, metadata=run.image.metadata
    )


def run_participant(participant: ParticipantPlan, context: StageContext) -> None:
    """IQM JSONs and the participant report (the ``qc`` stage, participant level)."""
    from neurolearn_cli.qc.report import (
        ParticipantReport,
        dependency_versions,
        methods_text,
        render_participant_report,
    )
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.template import load_template
    from neurolearn_cli.smri.workflow import TEMPLATE_RESOLUTION_MM, atlas_entity

    template = load_template(context.device, resolution=TEMPLATE_RESOLUTION_MM)
    config = context.config
    atlas = atlas_entity(load_atlas(context.device, config.atlas, config.atlas_labels).name)
    writer, anat, func, modalities = context.writer, [], [], []
    if participant.t1w:
        section = _t1w_section(participant, context, template, atlas)
        writer.write_json(
            writer.path(iqm_entities(participant.t1w[0], "T1w")), _iqm_record(section)
        )
        anat.append(section)
        modalities.append("T1w")
    for run in participant.bold:
        outputs = fmri_outputs(run, context, template.name, atlas)
        section = _bold_section(run, outputs, context)
        writer.write_json(writer.path(iqm_entities(run.image, "bold")), _iqm_record(section))
        func.append(section)
    if participant.bold:
        modalities.append("bold")
    methods = methods_text(modalities, dependency_versions(), device=str(context.device))
    report = ParticipantReport(participant=participant.label, anat=anat, func=func, methods=methods)
    writer.write_text(
        context.config.output_dir / f"{participant.subject}.html", render_participant_report(report)
    )
    atomic.write_text(context.config.logs_dir / "CITATION.md", methods)


def _iqm_record(section: Any) -> dict[str, Any]:
    """An IQM JSON as MRIQC writes it: the measures (non-finite as null) and the source's name."""
    iqms = section.iqms
    clean = {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in iqms.items()
    }
    return {**clean, "bids_name": section.bids_name}


def _failures(dataset: DatasetPlan, logs_dir: Path) -> dict[str, str]:
    """Participants without results, and why (from the status files; none recorded means killed)."""
    failures = {}
    for participant in dataset.participants:
        status_path = logs_dir / "status" / f"{participant.subject}.json"
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            failures[participant.label] = "no outcome recorded (not run, or the job was killed)"
            continue
        if status.get("status") != "done":
            failures[participant.label] = f"{status.get('status')}: {status.get('reason', '')}"
    return failures


def run_group(dataset: DatasetPlan, context: StageContext) -> None:
    """Group IQM tables and reports with outliers (the ``qc`` stage, group level)."""
    from neurolearn_cli.qc.group import group_table
    from neurolearn_cli.qc.report import render_group_report

    output_dir, writer = context.config.output_dir, context.writer
    failures = _failures(dataset, context.config.logs_dir)
    for modality, datatype in (("T1w", "anat"), ("bold", "func")):
        records = [
            json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(output_dir.glob(f"sub-*/**/{datatype}/sub-*_{modality}.json"))
            if "desc-" not in path.name and "space-" not in path.name
        ]
        if not records:
            context.log.info("group qc: no %s IQMs found", modality)
            continue
        table = group_table(records)
        writer.write_table(output_dir / f"group_{modality}.tsv", table)
        writer.write_text(
            output_dir / f"group_{modality}.html", render_group_report(table, modality, failures)
        )
        context.log.info(
            "group qc: %d %s images, report %s",
            len(table),
            modality,
            output_dir / f"group_{modality}.html",
        )

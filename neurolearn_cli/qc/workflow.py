"""The qc stage: IQMs and ``sub-<label>.html`` per participant, group tables and reports.

Participant level reads the smri outputs (running smri first when they are
missing) and the fmri outputs when present; BOLD IQMs are computed on the raw
series with an intensity mask of the BOLD reference, so they exist with or
without the fmri stage. IQM JSONs go where MRIQC puts them
(``sub-01/anat/sub-01_T1w.json``).
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


def _t1w_section(participant: ParticipantPlan, context: StageContext) -> Any:
    """IQMs and figures of the participant's reference T1w."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.anatomical import anatomical_iqms
    from neurolearn_cli.qc.masks import air_mask, artifact_mask, head_mask
    from neurolearn_cli.qc.report import ImageQC
    from neurolearn_cli.smri import workflow as smri
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.template import load_template

    device = context.device
    template = load_template(device, resolution=smri.TEMPLATE_RESOLUTION_MM)
    atlas = load_atlas(device, context.config.atlas, context.config.atlas_labels)
    outputs = smri.planned_outputs(
        participant, context.writer, template.name, smri.atlas_entity(atlas.name)
    )
    if not context.writer.is_current(outputs.values()):
        context.log.info("%s: smri outputs missing; running smri first", participant.subject)
        smri.run_participant(participant, context)
    corrected = load_image(outputs["preproc"], device)
    bias = load_image(outputs["biasfield"], device)
    brain = load_image(outputs["mask"], device).data > 0.5
    dseg = load_image(outputs["dseg"], device).data
    probabilities = {
        t.lower(): load_image(outputs[f"probseg_{t}"], device).data for t in smri.TISSUES
    }
    to_t1w = read_transform(outputs["xfm_from_template"]).to(device)
    priors = {
        name: resample(getattr(template, name), corrected.grid, to_t1w).data
        for name in ("gm", "wm", "csf")
    }
    raw = corrected.data * bias.data  # the conformed T1w before bias correction
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
    return ImageQC(bids_name=bids_name(first), figures=anat_figures, iqms=iqms, metadata=first.metadata)


def _bold_section(run: BoldRun, participant: ParticipantPlan, context: StageContext) -> Any:
    """IQMs and figures of one BOLD run."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.fmri.masking import intensity_mask
    from neurolearn_cli.fmri.nonsteady import detect_nonsteady
    from neurolearn_cli.fmri.workflow import figure_paths, run_entities
    from neurolearn_cli.qc import figures
    from neurolearn_cli.qc.functional import functional_iqms
    from neurolearn_cli.qc.report import ImageQC

    bold = load_image(run.image.path, context.device)
    dummies = detect_nonsteady(bold.data, context.config.dummy_scans)
    steady = bold.data[..., dummies:]
    mask = intensity_mask(steady.median(dim=-1).values)
    confounds_path = context.writer.path(
        {**run_entities(run), "desc": "confounds", "suffix": "timeseries", "extension": ".tsv"}
    )
    func_figures = []
    if confounds_path.is_file():
        table = pd.read_csv(confounds_path, sep="\t", na_values="n/a")
        fd = table["framewise_displacement"].to_numpy(dtype=float)
        func_figures.append(
            _figure(
                "Head motion",
                figures.motion_traces(
                    table[MOTION_COLUMNS].to_numpy(float), fd, run.repetition_time
                ),
            )
        )
        fd_steady = np.nan_to_num(fd[dummies:])
    else:
        context.log.info(
            "%s: no fmri confounds for %s; FD-based IQMs are NaN",
            participant.subject,
            run.image.path.name,
        )
        fd_steady = np.full(steady.shape[-1], np.nan)
    for path in figure_paths(participant, context.writer)[run.image.path.name]:
        if path.is_file():
            title = {
                "brainmask": "BOLD reference and brain mask",
                "coreg": "Coregistration (WM boundary)",
                "carpetplot": "Carpet plot",
            }[path.name.split("desc-")[1].split("_")[0]]
            func_figures.append(_figure(title, path.read_bytes()))
    iqms = functional_iqms(
        steady, mask, bold.spacing, run.repetition_time, fd_steady, dummy_trs=dummies
    )
    return ImageQC(bids_name=bids_name(run.image), figures=func_figures, iqms=iqms, metadata=run.image.metadata)


def run_participant(participant: ParticipantPlan, context: StageContext) -> None:
    """IQM JSONs and the participant report (the ``qc`` stage, participant level)."""
    from neurolearn_cli.qc.report import (
        ParticipantReport,
        dependency_versions,
        methods_text,
        render_participant_report,
    )

    writer, anat, func, modalities = context.writer, [], [], []
    if participant.t1w:
        section = _t1w_section(participant, context)
        writer.write_json(writer.path(iqm_entities(participant.t1w[0], "T1w")), _iqm_record(section))
        anat.append(section)
        modalities.append("T1w")
    for run in participant.bold:
        section = _bold_section(run, participant, context)
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
    clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in iqms.items()}
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

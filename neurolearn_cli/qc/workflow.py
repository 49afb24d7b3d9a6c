"""The qc stage: IQMs and ``sub-<label>.html`` per participant, group tables and reports.

Reads, calls :mod:`neurolearn_cli.qc.pipeline`, writes. The participant level
reads the smri outputs and, per BOLD run, the raw series and the fmri outputs,
finding them by the stages' own planned paths (the runner has run those stages
first when their outputs were not current). Every output is named from
entities and written through the derivatives writer, so it is in the manifest
that ``--resume`` and ``neurolearn verify`` check. IQM JSONs go where MRIQC
puts them (``sub-01/anat/sub-01_T1w.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neurolearn_cli.dataset.plan import BoldRun, DatasetPlan, ImageInput, ParticipantPlan
from neurolearn_cli.derivatives import raw_entities, read_sidecar, sidecar_of
from neurolearn_cli.stages import ParticipantContext, StageContext

#: Modalities of the group tables, with the datatype folder of their IQM JSONs.
MODALITIES = (("T1w", "anat"), ("bold", "func"))
#: The surfaces stage's mesh the thickness map is drawn on: the inflated one, smooth, so that the four views show
#: the cortex in the sulci too, as FreeSurfer's and fMRIPrep's maps do.
THICKNESS_MAP_SURFACE = "inflated"
#: ``logs/CITATION.md``.
CITATION = {"extension": ".md"}


def iqm_entities(image: ImageInput, suffix: str) -> dict[str, Any]:
    """MRIQC's IQM file: the source's entities, no ``desc-``, ``.json``."""
    datatype = "anat" if suffix == "T1w" else "func"
    return {
        **raw_entities(image.entities),
        "datatype": datatype,
        "suffix": suffix,
        "extension": ".json",
    }


def report_entities(participant: ParticipantPlan) -> dict[str, Any]:
    """The participant report: ``sub-<label>.html`` at the derivatives root."""
    return {"subject": participant.label, "extension": ".html"}


def planned_outputs(participant: ParticipantPlan, context: ParticipantContext) -> list[Path]:
    """Paths of the participant-level qc outputs: the IQM JSONs (T1w, each BOLD run) and the report."""
    entities = [iqm_entities(participant.t1w[0], "T1w")] if participant.t1w else []
    entities += [iqm_entities(run.image, "bold") for run in participant.bold]
    return [context.writer.path(e) for e in [*entities, report_entities(participant)]]


def outputs_current(participant: ParticipantPlan, context: ParticipantContext) -> bool:
    """Whether every qc output is recorded under ``context``'s digest (the runner's check before qc runs)."""
    return context.writer.is_current(planned_outputs(participant, context))


def bids_name(image: ImageInput) -> str:
    """Source file name without extension (``sub-01_task-rest_bold``)."""
    return image.path.name.split(".")[0]


def _t1w_section(participant: ParticipantPlan, context: ParticipantContext) -> Any:
    """Read the smri outputs, compute the reference T1w's IQMs and figures."""
    from neurolearn_cli.engine.io import load_image, load_images
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.qc.pipeline import anatomical_qc, surface_qc
    from neurolearn_cli.qc.report import ImageQC
    from neurolearn_cli.smri import workflow as smri
    from neurolearn_cli.smri.conform import conform_t1w

    device = context.device
    outputs = smri.planned_outputs(participant, context)
    roles = ["preproc", "biasfield", "mask", "dseg", *(f"probseg_{t}" for t in smri.TISSUES)]
    loaded = dict(zip(roles, load_images([outputs[r] for r in roles], device), strict=True))
    priors_template, priors, transform = _iqm_priors(context)
    result = anatomical_qc(
        loaded["preproc"],
        loaded["biasfield"],
        loaded["mask"],
        loaded["dseg"],
        {t: loaded[f"probseg_{t}"] for t in smri.TISSUES},
        _normalized(outputs, context),
        priors,
        read_transform(outputs[transform]).to(device),
        conformed=conform_t1w(
            [load_image(image.path, device) for image in participant.t1w],
            [str(image.path) for image in participant.t1w],
        ),
        skull_stripped=read_sidecar(outputs["preproc"]).get("SkullStripped") is True,
    )
    figures, iqms = list(result.figures), dict(result.iqms)
    hemispheres = _surfaces(participant, context)
    if hemispheres is not None:
        surfaces = surface_qc(loaded["preproc"], hemispheres, THICKNESS_MAP_SURFACE)
        figures += surfaces.figures
        iqms |= surfaces.iqms
    first = participant.t1w[0]
    return ImageQC(bids_name=bids_name(first), figures=figures, iqms=iqms, metadata=first.metadata,
                   provenance={"tpm_template": priors_template})


def _surfaces_recorded(participant: ParticipantPlan, context: ParticipantContext) -> bool:
    """Whether the surfaces stage recorded every output under its current digest and did not fail in this run
    (False: not run, or failed)."""
    from neurolearn_cli.surfaces import workflow as surfaces

    if "surfaces" not in context.fingerprints or "surfaces" in context.failed_stages:
        return False
    writer = context.writer
    recorded = writer.recorded(context.stage_digest("surfaces"))
    return all(writer.relative(path) in recorded for path in surfaces.planned_outputs(participant, context).values())


def _surfaces(participant: ParticipantPlan, context: ParticipantContext) -> Any:
    """Both hemispheres as the surfaces stage wrote them (:class:`~neurolearn_cli.qc.surfaces.HemisphereQC`
    by hemisphere); None where it has not recorded every output under its current digest (not run, or failed)."""
    from neurolearn_cli.qc.surfaces import HemisphereQC
    from neurolearn_cli.surfaces import workflow as surfaces
    from neurolearn_cli.surfaces.gifti import read_mesh, read_shape

    if not _surfaces_recorded(participant, context):
        return None
    outputs = surfaces.planned_outputs(participant, context)
    hemispheres = {}
    for hemisphere in surfaces.HEMISPHERES:
        white, pial = (read_sidecar(outputs[f"{s}_{hemisphere}"]) for s in ("white", "pial"))
        white_crossings, pial_crossings = white.get("SelfIntersectingFaces"), pial.get("SelfIntersectingFaces")
        hemispheres[hemisphere] = HemisphereQC(
            white=read_mesh(outputs[f"white_{hemisphere}"]), pial=read_mesh(outputs[f"pial_{hemisphere}"]),
            display=read_mesh(outputs[f"{THICKNESS_MAP_SURFACE}_{hemisphere}"]),
            thickness=read_shape(outputs[f"thickness_{hemisphere}"]),
            euler_before=white.get("EulerCharacteristicBeforeCorrection"),
            voxels_cut=white.get("VoxelsCutByTopologyCorrection"),
            intersections=None if white_crossings is None or pial_crossings is None
            else white_crossings + pial_crossings)
    return hemispheres


def _iqm_priors(context: ParticipantContext) -> tuple[str, Any, str]:
    """The tissue priors the ``tpm_overlap_*`` IQMs compare with: (template, priors, role of its T1w-ward transform).

    Those of the first template of ``--output-spaces`` when the TemplateFlow
    home holds its GM, WM and CSF priors (the template the run normalized
    to, as MRIQC compares with the template it normalizes to); else the
    bundled template's, whose normalization every run has.
    """
    from neurolearn_cli.smri.workflow import TEMPLATE_RESOLUTION_MM
    from neurolearn_cli.spaces import first_template, standard_spaces
    from neurolearn_cli.templateflow import load_priors

    space = first_template(context.config.output_spaces)
    if space is not None and space in standard_spaces(context.config.output_spaces):
        priors = load_priors(context.templates[(space.name, space.cohort)], TEMPLATE_RESOLUTION_MM, context.device)
        if priors is not None:
            return space.template_label, priors, f"xfm_from_{space.template_label}"
    return context.template.name, context.template.priors(), "xfm_from_template"


def _normalized(outputs: dict[str, Path], context: ParticipantContext) -> dict[str, Any]:
    """Per template the T1w was normalized to, the normalized T1w and the template's T1w on its grid."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.spaces import standard_spaces
    from neurolearn_cli.templateflow import templateflow_home

    device, template = context.device, context.template
    normalized = {template.name: (load_image(outputs["mni_preproc"], device), template.t1w)}
    home = templateflow_home(context.config.templateflow_dir)
    for space in standard_spaces(context.config.output_spaces):
        if space.template_label not in normalized:  # one figure per template, on its first space's grid
            grid_file = read_sidecar(outputs[f"preproc_{space}"])["SpatialReference"]
            normalized[space.template_label] = (load_image(outputs[f"preproc_{space}"], device),
                                                load_image(home / grid_file, device))
    return normalized


def _bold_section(run: BoldRun, context: ParticipantContext) -> Any:
    """Read the raw series and the fmri outputs of ``run``, compute its IQMs and figures."""
    import pandas as pd

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.fmri.workflow import run_outputs
    from neurolearn_cli.qc.pipeline import FMRI_FIGURE_TITLES, functional_qc
    from neurolearn_cli.qc.report import ImageQC

    outputs = run_outputs(run, context)
    confounds = pd.read_csv(outputs["confounds"], sep="\t", na_values="n/a")
    fmri_figures = {role: outputs[role].read_bytes() for role in FMRI_FIGURE_TITLES if outputs[role].is_file()}
    bold = load_image(run.image.path, context.device)
    result = functional_qc(bold, run.repetition_time, confounds, fmri_figures,
                           fd_threshold=context.config.fd_spike_threshold)
    return ImageQC(bids_name=bids_name(run.image), figures=result.figures, iqms=result.iqms,
                   metadata=run.image.metadata)


def _anat_facts(participant: ParticipantPlan, context: ParticipantContext) -> Any:
    """The participant's smri facts, read from the smri stage's planned outputs (None without a T1w)."""
    from neurolearn_cli.boilerplate.gather import anat_facts
    from neurolearn_cli.smri import workflow as smri
    from neurolearn_cli.spaces import standard_spaces

    if not participant.t1w:
        return None
    outputs = smri.planned_outputs(participant, context)
    return anat_facts(participant.label, sidecar_of(outputs["preproc"]), sidecar_of(outputs["morph"]),
                      context.template.name, tuple(str(s) for s in standard_spaces(context.config.output_spaces)))


def _surface_facts(participant: ParticipantPlan, context: ParticipantContext) -> Any:
    """The participant's surfaces facts, where the surfaces stage recorded its outputs (else None)."""
    from neurolearn_cli.boilerplate.gather import surface_facts
    from neurolearn_cli.surfaces import workflow as surfaces

    if not _surfaces_recorded(participant, context):
        return None
    outputs = surfaces.planned_outputs(participant, context)
    return surface_facts(participant.label, [sidecar_of(outputs[f"white_{h}"]) for h in surfaces.HEMISPHERES],
                         [sidecar_of(outputs[f"pial_{h}"]) for h in surfaces.HEMISPHERES], outputs["volume_morph"])


def _bold_facts(run: BoldRun, context: ParticipantContext) -> Any:
    """One run's fmri facts, read from the fmri stage's planned outputs (None where it wrote none)."""
    from neurolearn_cli.boilerplate.gather import bold_facts
    from neurolearn_cli.fmri.workflow import produced_spaces, run_outputs, surface_role
    from neurolearn_cli.spaces import surface_spaces, volume_spaces
    from neurolearn_cli.surfaces.template import HEMISPHERES

    outputs = run_outputs(run, context)
    sidecars = {str(space): sidecar_of(outputs[f"bold_{space}"])
                for space in volume_spaces(context.config.output_spaces)}
    surfaces = {(str(space), hemisphere): sidecar_of(outputs[surface_role(space, hemisphere)])
                for space in surface_spaces(produced_spaces(context)) for hemisphere in HEMISPHERES}
    connectivity = outputs.get("pearsoncorrelation")
    return bold_facts(run.image.entities["subject"], bids_name(run.image), sidecars, outputs["confounds"],
                      None if connectivity is None else sidecar_of(connectivity), surfaces)


def run_participant(participant: ParticipantPlan, context: ParticipantContext) -> None:
    """IQM JSONs and the participant report: summary, images, methods (the ``qc`` stage, participant level)."""
    from neurolearn_cli.boilerplate.facts import RunFacts
    from neurolearn_cli.boilerplate.gather import software
    from neurolearn_cli.boilerplate.methods import methods
    from neurolearn_cli.boilerplate.summary import participant_summary, run_summary
    from neurolearn_cli.qc.pipeline import iqm_record
    from neurolearn_cli.qc.report import ParticipantReport, render_participant_report

    writer, anat, func = context.writer, [], []
    if participant.t1w:
        section = _t1w_section(participant, context)
        writer.write_json(writer.path(iqm_entities(participant.t1w[0], "T1w")),
                          iqm_record(section.iqms, section.bids_name, section.provenance))
        anat.append(section)
    for run in participant.bold:
        section = _bold_section(run, context)
        writer.write_json(writer.path(iqm_entities(run.image, "bold")), iqm_record(section.iqms, section.bids_name))
        func.append(section)
    anat_facts = _anat_facts(participant, context)
    surface_facts = _surface_facts(participant, context)
    runs = [facts for run in participant.bold if (facts := _bold_facts(run, context)) is not None]
    boilerplate = methods(RunFacts(software(context.device), anat=(anat_facts,) if anat_facts else (),
                                   surfaces=(surface_facts,) if surface_facts else (),
                                   bold=tuple(runs), qc_t1w=len(anat), qc_bold=len(func)))
    report = ParticipantReport(
        participant=participant.label,
        summary=participant_summary(participant.label, anat_facts, runs, context.config.ignore, surface_facts,
                                    context.failed_stages.get("surfaces")),
        runs={facts.name: run_summary(facts) for facts in runs},
        anat=anat,
        func=func,
        methods=boilerplate,
        errors=tuple(context.failed_stages.values()),
    )
    writer.write_text(writer.path(report_entities(participant)),
                      render_participant_report(report))


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


def _has_images(dataset: DatasetPlan, modality: str) -> bool:
    """Whether any participant of ``dataset`` has an image of ``modality`` (``T1w`` or ``bold``).

    A modality whose every participant failed still gets its group page, so the failures are listed.
    """
    return any(participant.t1w if modality == "T1w" else participant.bold for participant in dataset.participants)


def iqm_records(output_dir: Path, modality: str, datatype: str) -> list[dict[str, Any]]:
    """The per-image IQM JSONs of one modality (``T1w`` in ``anat``, ``bold`` in ``func``) in OUTPUT_DIR."""
    return [
        json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(output_dir.glob(f"sub-*/**/{datatype}/sub-*_{modality}.json"))
        if "desc-" not in path.name and "space-" not in path.name
    ]


def write_citation(context: StageContext) -> Path:
    """``logs/CITATION.md``: the methods boilerplate of every stage whose outputs are in OUTPUT_DIR.

    Written by each group stage (qc, then mvpa), so it also covers the
    analysis the same run has just made.
    """
    from neurolearn_cli.boilerplate import gather
    from neurolearn_cli.boilerplate.facts import RunFacts
    from neurolearn_cli.boilerplate.methods import methods

    output_dir = context.config.output_dir
    assessed = {modality: len(iqm_records(output_dir, modality, datatype)) for modality, datatype in MODALITIES}
    facts = RunFacts(
        gather.software(context.device),
        anat=tuple(gather.discover_anat(output_dir)),
        surfaces=tuple(gather.discover_surfaces(output_dir)),
        bold=tuple(gather.discover_bold(output_dir)),
        qc_t1w=assessed["T1w"],
        qc_bold=assessed["bold"],
        analyses=tuple(gather.discover_analyses(output_dir)),
    )
    return context.writer.write_text(context.writer.path(CITATION), methods(facts).markdown())


def run_group(dataset: DatasetPlan, context: StageContext) -> None:
    """Group IQM tables and reports with outliers, and ``logs/CITATION.md`` (the ``qc`` stage, group level).

    ``CITATION.md`` covers the smri, fmri and qc outputs in OUTPUT_DIR and the
    mvpa analyses already there; the mvpa stage, which comes after, rewrites it
    with its own analysis.
    """
    from neurolearn_cli.qc.group import group_table, missing_reasons
    from neurolearn_cli.qc.group_report import render_group_report

    output_dir, writer = context.config.output_dir, context.writer
    failures = _failures(dataset, context.config.logs_dir)
    for modality, datatype in MODALITIES:
        records = iqm_records(output_dir, modality, datatype)
        if not records and not (failures and _has_images(dataset, modality)):
            context.log.info("group qc: no %s IQMs found", modality)
            continue
        table = group_table(records)
        if records:
            writer.write_table(writer.path({"suffix": modality, "extension": ".tsv"}), table)
        report = writer.write_text(writer.path({"suffix": modality, "extension": ".html"}),
                                   render_group_report(table, modality, failures, missing_reasons(records)))
        context.log.info("group qc: %d %s images, report %s", len(table), modality, report)
    write_citation(context)

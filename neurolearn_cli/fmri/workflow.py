"""The fmri stage for one participant: read BOLD runs and smri outputs, run the pipeline, write derivatives.

The runner runs smri first when its outputs are missing or stale (and the
surfaces stage, for a surface output space). Each BOLD run is skipped when
all its outputs are recorded with the same inputs, settings and version;
:func:`outputs_current` tells the runner whether every run is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurolearn_cli.dataset.plan import BoldRun, ParticipantPlan
from neurolearn_cli.derivatives import raw_entities, raw_source
from neurolearn_cli.errors import InputError, ProcessingError
from neurolearn_cli.heartbeat import heartbeat
from neurolearn_cli.spaces import (
    SURFACE_NATIVE,
    OutputSpace,
    first_template,
    standard_spaces,
    surface_spaces,
    volume_spaces,
)
from neurolearn_cli.stages import ParticipantContext
from neurolearn_cli.surfaces.template import HEMISPHERES, TemplateSphere, template_spheres

if TYPE_CHECKING:
    from neurolearn_cli.templateflow import TemplateFiles

FIGURES = ("brainmask", "coreg", "carpetplot")


def run_entities(run: BoldRun) -> dict[str, Any]:
    """Entities every output of a run inherits (subject, session, task, run, ...)."""
    return {**raw_entities(run.image.entities), "datatype": "func"}


def surface_role(space: OutputSpace, hemisphere: str) -> str:
    """The role of a run's series on one hemisphere in surface space ``space`` (``surface_fsnative_L``)."""
    return f"surface_{space}_{hemisphere}"


def planned_entities(run: BoldRun, spaces: Sequence[OutputSpace], atlas: str) -> dict[str, dict[str, Any]]:
    """Entities of every file a run produces, by role (a role per space: ``bold_<space>``; per surface space and
    hemisphere: :func:`surface_role`)."""
    base = run_entities(run)
    entities: dict[str, dict[str, Any]] = {
        "boldref": {**base, "desc": "hmc", "suffix": "boldref", "extension": ".nii.gz"},
        "confounds": {**base, "desc": "confounds", "suffix": "timeseries", "extension": ".tsv"},
        "hmc": {
            **base,
            "from": "orig",
            "to": "boldref",
            "mode": "image",
            "desc": "hmc",
            "suffix": "xfm",
            "extension": ".txt",
        },
        "coreg": {
            **base,
            "from": "boldref",
            "to": "T1w",
            "mode": "image",
            "desc": "coreg",
            "suffix": "xfm",
            "extension": ".txt",
        },
    }
    for space in surface_spaces(spaces):
        for hemisphere in HEMISPHERES:
            entities[surface_role(space, hemisphere)] = {**base, "hemi": hemisphere, **space.entities,
                                                         "suffix": "bold", "extension": ".func.gii"}
    for space in volume_spaces(spaces):
        named = {**base, **space.entities}
        entities[f"bold_{space}"] = {**named, "desc": "preproc", "suffix": "bold", "extension": ".nii.gz"}
        entities[f"boldref_{space}"] = {**named, "suffix": "boldref", "extension": ".nii.gz"}
        entities[f"mask_{space}"] = {**named, "desc": "brain", "suffix": "mask", "extension": ".nii.gz"}
    parcel_space = first_template(spaces)
    if parcel_space is not None:
        for stat, suffix in (
            ("mean", "timeseries"),
            ("pearsoncorrelation", "relmat"),
            ("partialcorrelation", "relmat"),
        ):
            entities[stat] = {**base, **parcel_space.entities, "seg": atlas, "stat": stat, "suffix": suffix,
                              "extension": ".tsv"}
    for figure in FIGURES:
        entities[f"figure_{figure}"] = figure_entities(run, figure)
    return entities


def figure_entities(run: BoldRun, figure: str) -> dict[str, Any]:
    """Entities of one of a run's figures (``sub-01/figures/..._desc-<figure>_bold.svg``)."""
    return {**run_entities(run), "datatype": "figures", "desc": figure, "suffix": "bold", "extension": ".svg"}


def surface_templates(context: ParticipantContext) -> tuple[dict[OutputSpace, dict[str, TemplateSphere]],
                                                             dict[OutputSpace, str]]:
    """The surface template spaces asked for whose spheres are on disk, and why each of the others is skipped."""
    from neurolearn_cli.templateflow import templateflow_home

    home = templateflow_home(context.config.templateflow_dir)
    found: dict[OutputSpace, dict[str, TemplateSphere]] = {}
    skipped: dict[OutputSpace, str] = {}
    for space in surface_spaces(context.config.output_spaces):
        if space.name != SURFACE_NATIVE:
            spheres = template_spheres(space, home)
            if isinstance(spheres, str):
                skipped[space] = f"output space {space} skipped: {spheres}"
            else:
                found[space] = spheres
    return found, skipped


def produced_spaces(context: ParticipantContext) -> tuple[OutputSpace, ...]:
    """The output spaces the stage writes: all those asked for but the surface templates without their spheres."""
    _, skipped = surface_templates(context)
    return tuple(space for space in context.config.output_spaces if space not in skipped)


def run_outputs(run: BoldRun, context: ParticipantContext) -> dict[str, Path]:
    """Every file the stage writes for ``run``, by role (read by the qc stage)."""
    from neurolearn_cli.smri.workflow import atlas_entity

    entities = planned_entities(run, produced_spaces(context), atlas_entity(context.atlas.name))
    return {role: context.writer.path(e) for role, e in entities.items()}


#: Roles of the parcel time series and connectivity outputs, skipped for runs too short to denoise.
CONNECTIVITY_ROLES = ("mean", "pearsoncorrelation", "partialcorrelation")
#: Sidecar key of the preprocessed BOLD giving why connectivity was skipped (absent when it was not).
CONNECTIVITY_SKIPPED = "ConnectivitySkipped"


def _run_current(run: BoldRun, context: ParticipantContext) -> bool:
    """Whether the run's outputs are recorded under ``context``'s fingerprint; connectivity may be skipped.

    The preprocessed BOLD's sidecar, written with this fingerprint, records a
    skipped connectivity, so resume neither reruns the run for those files
    nor trusts ones left by other settings.
    """
    outputs = run_outputs(run, context)
    required = {role: path for role, path in outputs.items() if role not in CONNECTIVITY_ROLES}
    if not context.writer.is_current(required.values()):
        return False
    optional = [outputs[role] for role in CONNECTIVITY_ROLES if role in outputs]
    if not optional or context.writer.is_current(optional):
        return True
    preproc = next(path for role, path in required.items() if role.startswith("bold_"))  # a volume space
    sidecar = json.loads(preproc.with_name(preproc.name.replace(".nii.gz", ".json")).read_text(encoding="utf-8"))
    return CONNECTIVITY_SKIPPED in sidecar


def outputs_current(participant: ParticipantPlan, context: ParticipantContext) -> bool:
    """Whether every output of every BOLD run is current (the scheduler's check)."""
    return all(_run_current(run, context) for run in participant.bold)


def _fieldmap(run: BoldRun, device: Any, log: Any, subject: str) -> Any:
    """Load the run's chosen SDC estimator inputs (:mod:`neurolearn_cli.fmri.sdcplan`); None if none."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.fmri.pipeline import Fieldmap, PepolarFieldmap
    from neurolearn_cli.fmri.sdcplan import PhasediffChoice, choose_estimator

    choice, notes = choose_estimator(run.fieldmaps, run.image)
    for note in notes:  # each names a fieldmap the data hold that cannot be used
        log.warning("%s: %s", subject, note)
    if choice is None:
        return None
    if isinstance(choice, PhasediffChoice):
        return Fieldmap(
            load_image(choice.phasediff.path, device),
            load_image(choice.magnitude.path, device),
            choice.phasediff.metadata,
            str(choice.phasediff.path),
        )
    second = choice.second
    return PepolarFieldmap(
        load_image(choice.first.path, device),
        choice.first.metadata,
        str(choice.first.path),
        None if second is None else load_image(second.path, device),
        None if second is None else second.metadata,
    )


def _anatomy(participant: ParticipantPlan, context: ParticipantContext) -> Any:
    """Read smri's T1w-space images and transforms (the runner has run smri first when they were stale)."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.fmri.pipeline import Anatomy, TemplateSpace
    from neurolearn_cli.smri import workflow as smri
    from neurolearn_cli.smri.template import template_grid
    from neurolearn_cli.spaces import TEMPLATE_RESOLUTIONS
    from neurolearn_cli.templateflow import standard_grids

    if not participant.t1w:
        raise InputError(participant.subject, "no T1w image: the fmri stage needs smri's outputs of one")
    device, template = context.device, context.template
    outputs = smri.planned_outputs(participant, context)
    templates = {template.name: TemplateSpace(
        read_transform(outputs["xfm_to_template"]).to(device),
        {res: template_grid(device, int(size)) for res, size in TEMPLATE_RESOLUTIONS[template.name].items()})}
    standard = standard_spaces(context.config.output_spaces)
    for space in standard:
        templates[space.template_label] = TemplateSpace(
            read_transform(outputs[f"xfm_to_{space.template_label}"]).to(device),
            standard_grids(context.templates[(space.name, space.cohort)], device))
    return Anatomy(
        t1w=load_image(outputs["preproc"], device),
        mask=load_image(outputs["mask"], device),
        tissues={t: load_image(outputs[f"probseg_{t}"], device) for t in smri.TISSUES},
        templates=templates,
        atlas_template=context.atlas.via or template.name,
        atlas_to_t1w=read_transform(outputs[f"xfm_from_{context.atlas.via}" if context.atlas.via
                                            else "xfm_from_template"]).to(device),
        lesion=load_image(outputs["lesion"], device) if "lesion" in outputs else None,
        surfaces=_cortical_surfaces(participant, context) if surface_spaces(context.config.output_spaces) else {},
    )


def registered_sphere_entities(participant: ParticipantPlan, hemisphere: str) -> dict[str, Any]:
    """The surfaces stage's sphere registered to fsaverage (fMRIPrep's ``hemi-L_desc-reg_sphere.surf.gii``)."""
    return {"subject": participant.label, "datatype": "anat", "hemi": hemisphere, "desc": "reg", "suffix": "sphere",
            "extension": ".surf.gii"}


def _cortical_surfaces(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, Any]:
    """Per hemisphere, the surfaces stage's white and pial meshes and the weights to each surface template found.

    Raises
    ------
    ProcessingError
        A surface template is asked for but the surfaces stage wrote no
        registered sphere, or a template's spheres do not match.
    """
    from neurolearn_cli.fmri.surface import CorticalSurfaces
    from neurolearn_cli.surfaces import workflow as surfaces
    from neurolearn_cli.surfaces.gifti import read_mesh
    from neurolearn_cli.surfaces.resample import barycentric_weights, project_unproject

    meshes = surfaces.planned_outputs(participant, context)
    found, _ = surface_templates(context)
    cortex = {}
    for hemisphere in HEMISPHERES:
        to_templates = {}
        if found:
            path = context.writer.path(registered_sphere_entities(participant, hemisphere))
            if not path.is_file():
                raise ProcessingError(f"surface output spaces: the surfaces stage wrote no {path.name} (the sphere "
                                      f"registered to fsaverage) to reach {', '.join(map(str, found))}")
            registered = read_mesh(path)
        for space, spheres in found.items():
            sphere = spheres[hemisphere]
            points = registered.vertices
            if sphere.project_to is not None and sphere.unproject_from is not None:
                project_to, unproject_from = read_mesh(sphere.project_to), read_mesh(sphere.unproject_from)
                if len(project_to.vertices) != len(unproject_from.vertices):
                    raise ProcessingError(f"output space {space}: {sphere.project_to.name} and "
                                          f"{sphere.unproject_from.name} are not one mesh")
                points = project_unproject(points, project_to, unproject_from.vertices)
            to_templates[space] = barycentric_weights(read_mesh(sphere.sphere).vertices, registered.with_vertices(points))
        cortex[hemisphere] = CorticalSurfaces(read_mesh(meshes[f"white_{hemisphere}"]),
                                              read_mesh(meshes[f"pial_{hemisphere}"]), to_templates)
    return cortex


def spatial_references(spaces: Sequence[OutputSpace],
                       found: Mapping[tuple[str, str | None], TemplateFiles]) -> dict[OutputSpace, dict[str, Any]]:
    """Per template space, the sidecar keys saying which template it is and where it came from."""
    standard = standard_spaces(spaces)
    references: dict[OutputSpace, dict[str, Any]] = {}
    for space in spaces:
        if space in standard:
            files = found[(space.name, space.cohort)]
            grid = files.relative(files.resolutions[space.resolution].t1w) if space.resolution else space.name
            references[space] = {"SpatialReference": grid, "TemplateSource": "local TemplateFlow home (read from "
                                 "disk, never downloaded)"}
        elif space.is_template:
            references[space] = {"SpatialReference": space.name}
    return references


def run_participant(participant: ParticipantPlan, context: ParticipantContext) -> None:
    """Functional preprocessing of every BOLD run of one participant (the ``fmri`` stage)."""
    from neurolearn_cli.engine.io import load_image, read_header
    from neurolearn_cli.fmri.pipeline import BoldOptions, preprocess_bold
    from neurolearn_cli.smri.workflow import atlas_entity

    if not participant.bold:
        context.log.info("%s: no BOLD runs; fmri skipped", participant.subject)
        return
    config, log = context.config, context.log
    for run in participant.bold:  # before any work, so a bad option leaves nothing half-written
        if config.dummy_scans is not None and config.dummy_scans >= run.n_volumes:
            raise InputError(run.image.path, f"--dummy-scans {config.dummy_scans} leaves none of its "
                                             f"{run.n_volumes} volumes")
    anatomy, atlas = _anatomy(participant, context), context.atlas
    seg = atlas_entity(atlas.name)
    options = BoldOptions(
        dummy_scans=config.dummy_scans,
        ignore=config.ignore,
        slice_time_ref=config.slice_time_ref,
        fd_threshold=config.fd_spike_threshold,
        dvars_threshold=config.dvars_spike_threshold,
        output_spaces=config.output_spaces,
    )
    references = spatial_references(config.output_spaces, context.templates)
    _, skipped = surface_templates(context)
    for note in skipped.values():
        log.warning("%s: %s", participant.subject, note)
    spaces = produced_spaces(context)
    surface_sources = _surface_sources(participant, context) if surface_spaces(spaces) else {}
    for run in participant.bold:
        entities = planned_entities(run, spaces, seg)
        if _run_current(run, context):
            log.info("%s: %s is up to date", participant.subject, run.image.path.name)
            continue
        log.info("%s: preprocessing %s", participant.subject, run.image.path.name)
        with heartbeat(log, f"{participant.subject}: {run.image.path.name}"):
            bold = load_image(run.image.path, context.device)
            sbref = load_image(run.sbref.path, context.device) if run.sbref is not None else None
            result = preprocess_bold(
                bold,
                run.image.metadata,
                run.repetition_time,
                anatomy,
                source=str(run.image.path),
                sbref=sbref,
                fieldmap=_fieldmap(run, context.device, log, participant.subject),
                atlas_labels=atlas.labels,
                atlas_table=atlas.table,
                options=options,
            )
            for note in result.notes:
                log.info("%s: %s: %s", participant.subject, run.image.path.name, note)
            if run.fieldmaps and result.sdc_method == "none" and "fieldmaps" not in options.ignore:
                log.warning("%s: %s: a fieldmap is intended for this run but was not used: no distortion "
                            "correction (reason in the report's summary)", participant.subject, run.image.path.name)
            _write_run(run, result, entities, context, read_header(run.image.path), atlas, references,
                       list(skipped.values()), surface_sources)


def _write_run(
    run: BoldRun,
    result: Any,
    entities: dict[str, dict[str, Any]],
    context: ParticipantContext,
    header: Any,
    atlas: Any,
    references: dict[OutputSpace, dict[str, Any]],
    skipped: list[str],
    surface_sources: dict[str, list[str]],
) -> None:
    from neurolearn_cli.fmri.pipeline import DENOISING_STRATEGY
    from neurolearn_cli.fmri.sdcplan import choose_estimator

    writer = context.writer
    source = raw_source(run.image.relpath)
    timing = {
        "RepetitionTime": run.repetition_time,
        "SliceTimingCorrected": result.slice_timing_reference is not None,
        "NumberOfVolumesDiscardedByScanner": 0,
        "NonSteadyStateVolumes": result.n_nonsteady,
        "SusceptibilityDistortionCorrection": result.sdc_method,
        "CoregistrationMethod": result.coregistration.method,
        "CoregistrationCost": result.coregistration.cost,
        # what was skipped and why, and the outlier criteria: read back by the methods boilerplate
        "ProcessingNotes": [*choose_estimator(run.fieldmaps, run.image)[1], *result.notes, *skipped],
        "MotionOutlierThresholds": {"framewise_displacement": context.config.fd_spike_threshold,
                                    "std_dvars": context.config.dvars_spike_threshold},
        "NonSteadyStateVolumesFrom": "detected" if context.config.dummy_scans is None else "--dummy-scans",
    }
    if result.connectivity_skipped is not None:
        timing[CONNECTIVITY_SKIPPED] = result.connectivity_skipped
    if result.slice_timing_reference is not None:
        timing["StartTime"] = result.slice_timing_reference
    writer.write_image(entities["boldref"], result.boldref, {"Sources": [source]})
    writer.write_transform(entities["hmc"], result.hmc)
    writer.write_transform(entities["coreg"], result.coregistration.transform)
    for output in result.spaces:
        meta = {
            "Sources": [source],
            "SkullStripped": False,
            **timing,
            **references.get(output.space, {}),
        }
        writer.write_image(entities[f"bold_{output.space}"], output.bold, meta, header=header)
        reference = references.get(output.space, {})
        writer.write_image(entities[f"boldref_{output.space}"], output.boldref, {"Sources": [source], **reference})
        writer.write_image(entities[f"mask_{output.space}"], output.mask,
                           {"Type": "Brain", "Sources": [source], **reference}, labels=True)
    _write_surfaces(run, result, entities, context, timing, surface_sources)
    writer.write_tsv(entities["confounds"], result.confounds.table, result.confounds.metadata)
    if result.connectivity is not None:
        meta = {
            "Atlas": atlas.name,
            "AtlasSpace": atlas.space,
            "Note": atlas.note,
            "Sources": [source],
            "ConfoundStrategy": list(DENOISING_STRATEGY),
        }
        writer.write_tsv(entities["mean"], result.connectivity.timeseries, meta)
        writer.write_tsv(entities["pearsoncorrelation"], _square(result.connectivity.pearson), meta)
        writer.write_tsv(entities["partialcorrelation"], _square(result.connectivity.partial), meta)
    for name, data in result.figures.items():
        writer.write_bytes(writer.path(entities[f"figure_{name}"]), data)


def _square(matrix: Any) -> Any:
    """A square matrix DataFrame with its row names as the first column (XCP-D's relmat layout)."""
    return matrix.rename_axis("Node").reset_index()


def _surface_sources(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, list[str]]:
    """Per hemisphere, the surfaces the BOLD is sampled between, as sidecar ``Sources`` (BIDS URIs)."""
    from neurolearn_cli.surfaces import workflow as surfaces

    meshes = surfaces.planned_outputs(participant, context)
    return {h: [f"bids::{context.writer.relative(meshes[f'{s}_{h}'])}" for s in ("white", "pial")] for h in HEMISPHERES}


def _write_surfaces(run: BoldRun, result: Any, entities: dict[str, dict[str, Any]], context: ParticipantContext,
                    timing: dict[str, Any], surface_sources: dict[str, list[str]]) -> None:
    """The GIFTI time series of every surface space and hemisphere, with sidecars saying how they were sampled."""
    from neurolearn_cli.fmri.surface import DEPTHS, missing_vertices
    from neurolearn_cli.surfaces.gifti import timeseries_gifti

    writer = context.writer
    for output in result.surfaces:
        path = writer.path(entities[surface_role(output.space, output.hemisphere)])
        sampling = output.sampling
        writer.write_bytes(path, timeseries_gifti(output.series, output.hemisphere, run.repetition_time))
        writer.write_sidecar(path, {
            "Sources": [raw_source(run.image.relpath), *surface_sources[output.hemisphere]],
            **{key: timing[key] for key in ("RepetitionTime", "SliceTimingCorrected", "StartTime",
                                            "SusceptibilityDistortionCorrection") if key in timing},
            "SamplingDepths": list(DEPTHS),
            "SamplesKept": sampling.kept,
            "SamplesOutsideBrain": sampling.outside,
            "SamplesUnreliable": sampling.unreliable,
            "VerticesMissing": missing_vertices(output.series),
        })

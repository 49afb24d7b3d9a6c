"""Run a configuration: plan, then run each participant's stages, then summarize.

Exit codes (DESIGN.md): 0 all done; 1 some participant failed in processing;
2 bad usage or bad input. Usage errors, a non-BIDS directory and unknown
participant labels raise before any work. A participant with bad input is
skipped; one that fails does not stop the others (unless
``--stop-on-first-crash``). 2 outranks 1.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import platform
import signal
import sys
import traceback
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurolearn_cli import __version__, atomic
from neurolearn_cli.config import AnalysisLevel, RunConfig
from neurolearn_cli.dataset.plan import DatasetPlan, ParticipantPlan
from neurolearn_cli.derivatives import (
    DerivativesWriter,
    build_relpath,
    check_output_dir,
    ensure_dataset_description,
    fingerprint,
    sha256_file,
)
from neurolearn_cli.errors import InputError, ProcessingError, UsageError, failure_reason
from neurolearn_cli.heartbeat import heartbeat
from neurolearn_cli.logs import get_logger, setup_logging

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.process import BaseProcess

    from neurolearn_cli.stages import ParticipantContext
    from neurolearn_cli.templateflow import TemplateFiles

#: Settings that do not change outputs, left out of the resume fingerprint.
NON_OUTPUT_SETTINGS = {
    "bids_dir", "output_dir", "work_dir", "nprocs", "omp_nthreads", "mem_gb", "resume", "stop_on_first_crash",
    "dry_run", "verbosity", "debug", "bids_database_dir", "skip_bids_validation", "stages", "participant_label",
    "templateflow_dir",  # where the templates are: their files' bytes are fingerprinted instead
}
#: Settings only the group-level pattern analysis reads.
MVPA_SETTINGS = {"spec", "features", "target", "model", "cv", "inner_cv", "group_by", "permutations", "name",
                 "derivatives"}
#: Settings only the functional stage (and the qc that reads its outputs) reads (smri reads the
#: TemplateFlow spaces of ``output_spaces``: :func:`stage_fingerprints`).
FMRI_SETTINGS = {"dummy_scans", "ignore", "slice_time_ref", "fd_spike_threshold",
                 "dvars_spike_threshold", "task"}
#: Participant stages that read only the T1w images (and lesion masks) of a participant's inputs.
ANATOMICAL_STAGES = ("smri", "surfaces")
#: Per participant stage, the settings it never reads (so changing them keeps its outputs under --resume).
#: A stage not listed here is fingerprinted on every output-shaping setting.
STAGE_UNREAD_SETTINGS = {
    "smri": FMRI_SETTINGS | MVPA_SETTINGS,
    "surfaces": FMRI_SETTINGS | MVPA_SETTINGS,
    "fmri": MVPA_SETTINGS,
    "qc": MVPA_SETTINGS,
}


@dataclass(frozen=True)
class Outcome:
    """What happened to one participant."""

    label: str
    status: str  # done | skipped | failed
    reason: str = ""

    @property
    def exit_code(self) -> int:
        """2 for bad input, 1 for a processing failure, 0 when done."""
        return {"done": 0, "skipped": 2, "failed": 1}[self.status]


def versions() -> dict[str, str]:
    """Versions of neurolearn, Python and the libraries that shape the outputs."""
    import bids
    import nibabel
    import numpy
    import torch

    return {
        "neurolearn": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "nibabel": nibabel.__version__, "pybids": bids.__version__,
    }


def output_settings(config: RunConfig, unread: Collection[str] = ()) -> dict[str, Any]:
    """The options that shape outputs, less those in ``unread``, for the resume fingerprint."""
    skip = NON_OUTPUT_SETTINGS | set(unread)
    return {k: v for k, v in config.model_dump(mode="json").items() if k not in skip}


def participant_inputs(participant: ParticipantPlan, *, anatomical_only: bool = False) -> list[Path]:
    """Input files of a participant (images, sidecars, events, fieldmaps), or only its T1w images and lesion mask."""
    images = list(participant.t1w) + ([participant.lesion] if participant.lesion is not None else [])
    if not anatomical_only:
        images += [run.image for run in participant.bold]
        images += [run.sbref for run in participant.bold if run.sbref is not None]
        images += [image for run in participant.bold for fmap in run.fieldmaps for image in fmap.images]
    files = {image.path for image in images}
    if not anatomical_only:
        files |= {run.events for run in participant.bold if run.events is not None}
    for image in images:
        name = image.path.name
        stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else image.path.stem
        sidecar = image.path.with_name(stem + ".json")
        if sidecar.is_file():
            files.add(sidecar)
    return sorted(files)


def stage_fingerprints(config: RunConfig, participant: ParticipantPlan,
                       templates: Mapping[tuple[str, str | None], TemplateFiles]) -> dict[str, str]:
    """Per participant stage, the digest of the inputs and settings it reads.

    smri and surfaces (:data:`ANATOMICAL_STAGES`) read only the T1w images and,
    of the output spaces, the TemplateFlow ones; every stage reads the atlas files and the files of the TemplateFlow
    templates requested. A stage's digest changes when anything it reads
    changes, and only then; the device counts by its kind (``auto`` and
    ``cpu`` are the same on a machine without CUDA). ``templates`` are the TemplateFlow home's
    (:func:`~neurolearn_cli.templateflow.scan_home`).
    """
    from neurolearn_cli.engine.device import resolve_device
    from neurolearn_cli.spaces import atlas_space, atlas_template, standard_spaces
    from neurolearn_cli.stages import PARTICIPANT_STAGES

    standard = standard_spaces(config.output_spaces)
    registered = {(space.name, space.cohort) for space in standard}
    via = atlas_template(atlas_space(config.atlas, config.atlas_space), templates)
    registered |= {(via, None)} if via is not None else set()
    shared = [Path(path) for path in (config.atlas, config.atlas_labels) if path is not None]
    shared += sorted({path for key in registered for path in templates[key].paths()})
    hashes = {path: sha256_file(path) for path in participant_inputs(participant) + shared}
    device_kind = resolve_device(config.device).type  # which CUDA device of a kind does not change the bytes
    digests = {}
    for stage in PARTICIPANT_STAGES:
        anatomical = stage in ANATOMICAL_STAGES
        inputs = participant_inputs(participant, anatomical_only=anatomical) + shared
        settings = output_settings(config, STAGE_UNREAD_SETTINGS.get(stage, set()))
        settings["device"] = device_kind  # as resolved: auto on a machine without CUDA writes what --device cpu writes
        if anatomical:  # of the output spaces, the anatomical stages read only the TemplateFlow ones
            settings["output_spaces"] = [str(space) for space in standard]
        digests[stage] = fingerprint(inputs, settings, hashes)
    return digests


def _write_status(config: RunConfig, outcome: Outcome) -> None:
    """Record a participant's outcome (read by the group report)."""
    payload = {"participant_id": f"sub-{outcome.label}", "status": outcome.status, "reason": outcome.reason}
    atomic.write_json(config.logs_dir / "status" / f"sub-{outcome.label}.json", payload)


def participant_context(config: RunConfig, dataset: DatasetPlan, participant: ParticipantPlan,
                        device: Any) -> ParticipantContext:
    """The context of a participant's stages: its writer, per-stage fingerprints, the template, the atlas
    and the TemplateFlow home's templates.

    The template and the atlas are loaded, and the TemplateFlow home listed, once here, for every stage.
    """
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.template import load_template
    from neurolearn_cli.smri.workflow import TEMPLATE_RESOLUTION_MM
    from neurolearn_cli.spaces import atlas_space, atlas_template
    from neurolearn_cli.stages import ParticipantContext
    from neurolearn_cli.templateflow import scan_home, templateflow_home

    writer = DerivativesWriter(config.output_dir, participant.subject, "", resume=config.resume)
    space = atlas_space(config.atlas, config.atlas_space)
    templates = scan_home(templateflow_home(config.templateflow_dir))
    via = atlas_template(space, templates)
    return ParticipantContext(config=config, device=device, dataset=dataset, writer=writer, log=get_logger(),
                              fingerprints=stage_fingerprints(config, participant, templates),
                              template=load_template(device, resolution=TEMPLATE_RESOLUTION_MM),
                              atlas=load_atlas(device, config.atlas, config.atlas_labels, space=space, via=via),
                              templates=templates)


def run_stage(stage: str, participant: ParticipantPlan, context: ParticipantContext) -> None:
    """Run ``stage`` for ``participant`` unless it has nothing to do (no inputs for it) or its outputs are current.

    Asked at the stage's turn, after its needs ran: its digest covers the
    bytes they recorded (:meth:`~neurolearn_cli.stages.StageContext.stage_digest`).
    """
    from neurolearn_cli.stages import STAGE_INPUTS, STAGE_READS, load_currency_check, load_stage

    if stage in STAGE_INPUTS and not STAGE_INPUTS[stage][1](participant):
        context.log.info("%s: %s: nothing to do (%s)", participant.subject, stage, STAGE_INPUTS[stage][0])
        return
    stage_context = context.for_stage(stage)
    check = load_currency_check(stage)
    # a stage that reads one which failed in this run reruns: what it shows of that stage is out of date
    read_failed = any(read in context.failed_stages for read in STAGE_READS.get(stage, ()))
    if check is not None and not read_failed and check(participant, stage_context):
        context.log.info("%s: %s outputs are up to date", participant.subject, stage)
        return
    if stage not in context.config.selected_stages:
        context.log.info("%s: %s outputs missing or stale; running %s first", participant.subject, stage, stage)
    context.log.info("%s: %s", participant.subject, stage)
    with heartbeat(context.log, f"{participant.subject}: {stage}"):
        load_stage(stage, "participant")(participant, stage_context)


def run_participant(config: RunConfig, dataset: DatasetPlan, participant: ParticipantPlan) -> Outcome:
    """Run the scheduled participant stages for one participant; never raises for its own problems."""
    from neurolearn_cli.engine.device import configure_determinism, resolve_device

    log = get_logger()
    if participant.problems:
        for problem in participant.problems:
            log.error(problem)
        outcome = Outcome(participant.label, "skipped", participant.problems[0])
        _write_status(config, outcome)
        return outcome
    configure_determinism(config.seed, config.omp_nthreads)
    device = resolve_device(config.device)
    try:
        atomic.remove_temporaries(config.output_dir / participant.subject)
        atomic.remove_temporaries(config.logs_dir, name=f"{participant.subject}.json")
        context = participant_context(config, dataset, participant, device)
        failed = run_stages(participant, context)
    except InputError as error:
        log.error("sub-%s skipped: %s", participant.label, error)
        outcome = Outcome(participant.label, "skipped", str(error))
    except Exception as error:  # one participant's failure must not stop the others
        if config.debug:
            raise
        log.debug("sub-%s traceback:\n%s", participant.label, traceback.format_exc())
        reason = failure_reason(error)
        log.error("sub-%s failed: %s", participant.label, reason)
        outcome = Outcome(participant.label, "failed", reason)
    else:
        outcome = Outcome(participant.label, "failed", "; ".join(failed.values())) if failed else \
            Outcome(participant.label, "done")
    _write_status(config, outcome)
    return outcome


def run_stages(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, str]:
    """Run the scheduled stages in order; return the one-line reasons of those that failed but let others run.

    A stage of :data:`~neurolearn_cli.stages.CONTINUE_AFTER_FAILURE` that
    fails is logged and recorded; the stages after it run with the reason in
    their context (the report shows it), except those that need it.
    """
    from neurolearn_cli.stages import CONTINUE_AFTER_FAILURE, stage_needs, stage_order

    failed: dict[str, str] = {}
    for stage in stage_order(context.config.selected_stages, context.config):
        blocked = [need for need in stage_needs(stage, context.config) if need in failed]
        if blocked:
            context.log.error("%s: %s not run: %s failed", participant.subject, stage, blocked[0])
            continue
        try:
            run_stage(stage, participant, dataclasses.replace(context, failed_stages=dict(failed)))
        except ProcessingError as error:
            if stage not in CONTINUE_AFTER_FAILURE:
                raise
            context.log.error("%s: %s failed: %s", participant.subject, stage, error)
            failed[stage] = str(error)
    return failed


def _worker(config: RunConfig, dataset: DatasetPlan, participant: ParticipantPlan, log_file: Path,
            connection: Connection) -> None:
    """Run one participant in its own process and send its outcome to the parent."""
    setup_logging(config.verbosity, log_file)
    connection.send(run_participant(config, dataset, participant))


def worker_death(exitcode: int | None) -> str:
    """Why a worker ended without an outcome, from its exit code (minus the signal that killed it)."""
    if exitcode == -signal.SIGKILL:
        return (f"worker killed by signal {signal.SIGKILL.value}, possibly out of memory: "
                "lower --nprocs or raise --mem-gb")
    if exitcode is not None and exitcode < 0:
        return f"worker killed by signal {-exitcode}"
    return f"worker exited with code {exitcode}"


def _collect(config: RunConfig, receiver: Connection, process: BaseProcess, participant: ParticipantPlan) -> Outcome:
    """The outcome a worker sent or, when it died first, a failure saying how (its status written here)."""
    try:
        outcome: Outcome | None = receiver.recv()
    except (EOFError, OSError):  # the worker died before sending (or while sending) its outcome
        outcome = None
    receiver.close()
    process.join()
    if outcome is None:
        outcome = Outcome(participant.label, "failed", worker_death(process.exitcode))
        get_logger().error("sub-%s failed: %s", participant.label, outcome.reason)
        _write_status(config, outcome)
    return outcome


#: Bytes of working memory per input voxel, measured on the stages (float32 copies, pyramids, autograd).
T1W_BYTES_PER_VOXEL = 160
BOLD_BYTES_PER_VOXEL = 24
BASE_MEMORY_GB = 1.5  # interpreter, torch, template


def estimate_memory_gb(participant: ParticipantPlan) -> float:
    """Rough peak memory of one participant, from its image sizes."""
    def voxels(shape: tuple[int, ...]) -> int:
        return int(np.prod(shape)) if shape else 0

    t1w = max((voxels(image.shape[:3]) for image in participant.t1w), default=0) * T1W_BYTES_PER_VOXEL
    bold = max((voxels(run.image.shape) for run in participant.bold), default=0) * BOLD_BYTES_PER_VOXEL
    return BASE_MEMORY_GB + max(t1w, bold) / 1e9


def can_start(needed_gb: float, running_gb: list[float], nprocs: int, mem_gb: float | None) -> bool:
    """Whether a participant needing ``needed_gb`` may start beside those running.

    A participant whose estimate alone exceeds ``mem_gb`` still runs, alone.
    """
    if len(running_gb) >= nprocs:
        return False
    return not running_gb or mem_gb is None or sum(running_gb) + needed_gb <= mem_gb


def run_participants(config: RunConfig, dataset: DatasetPlan, log_file: Path) -> list[Outcome]:
    """Run every planned participant, ``--nprocs`` at a time within ``--mem-gb``, with a progress bar.

    With ``--nprocs`` above 1, each participant runs in a process of its own,
    so a worker killed (e.g. by the kernel, out of memory) or crashed fails
    that participant only.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from neurolearn_cli.logs import STDERR

    participants = list(dataset.participants)
    outcomes: list[Outcome] = []
    columns = (TextColumn("[bold]participants"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=STDERR, transient=True, disable=config.verbosity < 0) as progress:
        task = progress.add_task("participants", total=len(participants))
        if config.nprocs == 1 or len(participants) == 1:
            for participant in participants:
                outcome = run_participant(config, dataset, participant)
                outcomes.append(outcome)
                progress.advance(task)
                if outcome.status == "failed" and config.stop_on_first_crash:
                    break
            return outcomes
        estimates = {p.label: estimate_memory_gb(p) for p in participants}
        running: dict[Connection, tuple[SpawnProcess, ParticipantPlan]] = {}
        context = multiprocessing.get_context("spawn")
        try:
            while participants or running:
                while participants and can_start(estimates[participants[0].label],
                                                 [estimates[p.label] for _, p in running.values()],
                                                 config.nprocs, config.mem_gb):
                    participant = participants.pop(0)
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(target=_worker, name=f"neurolearn-{participant.subject}",
                                              args=(config, dataset, participant, log_file, sender))
                    process.start()
                    sender.close()  # the worker holds the only writing end: its death ends the pipe
                    running[receiver] = (process, participant)
                ready = wait(list(running))
                for receiver in [r for r in running if r in ready]:
                    process, participant = running.pop(receiver)
                    outcomes.append(_collect(config, receiver, process, participant))
                    progress.advance(task)
                if config.stop_on_first_crash and any(o.status == "failed" for o in outcomes):
                    participants.clear()
        finally:  # interrupted (Ctrl-C) or failed here: leave no worker behind
            for process, _ in running.values():
                process.terminate()
                process.join()
    return sorted(outcomes, key=lambda o: o.label)


def run_group(config: RunConfig, dataset: DatasetPlan) -> list[Outcome]:
    """Run the selected group-level stages."""
    from neurolearn_cli.engine.device import configure_determinism, resolve_device
    from neurolearn_cli.stages import StageContext, load_stage

    configure_determinism(config.seed, config.omp_nthreads)
    device = resolve_device(config.device)
    writer = DerivativesWriter(config.output_dir, "group", fingerprint([], output_settings(config)), resume=False)
    context = StageContext(config=config, device=device, dataset=dataset, writer=writer, log=get_logger())
    outcomes = []
    for stage in config.selected_stages:
        get_logger().info("group: %s", stage)
        try:
            with heartbeat(get_logger(), f"group: {stage}"):
                load_stage(stage, "group")(dataset, context)
        except (InputError, UsageError) as error:  # bad input or options (e.g. mvpa without a target): exit 2
            get_logger().error("group %s: %s", stage, error)
            outcomes.append(Outcome(f"group {stage}", "skipped", str(error)))
        except Exception as error:  # a failed group stage must not stop the others
            if config.debug:
                raise
            get_logger().debug("group %s traceback:\n%s", stage, traceback.format_exc())
            reason = failure_reason(error)
            get_logger().error("group %s failed: %s", stage, reason)
            outcomes.append(Outcome(f"group {stage}", "failed", reason))
        else:
            outcomes.append(Outcome(f"group {stage}", "done"))
    return outcomes


def require_surfaces(config: RunConfig, dataset: DatasetPlan) -> None:
    """Refuse a surface output space whose surfaces the run would not make: the surfaces stage is opt-in.

    fmri samples the BOLD on the surfaces stage's meshes; the runner keeps
    them current as any need, once they exist. When the run neither selects
    the surfaces stage nor finds its outputs for every participant with BOLD
    runs, it stops before any work.

    Raises
    ------
    UsageError
        One line naming the space, the participant and what to select.
    """
    from neurolearn_cli.spaces import surface_spaces
    from neurolearn_cli.stages import stage_order
    from neurolearn_cli.surfaces.workflow import planned_entities

    spaces = surface_spaces(config.output_spaces)
    if not spaces or "surfaces" in config.selected_stages or "fmri" not in stage_order(config.selected_stages, config):
        return
    for participant in dataset.participants:
        if participant.problems or not participant.bold or not participant.t1w:
            continue
        for entities in planned_entities(participant).values():
            relpath = build_relpath(entities)
            if not (config.output_dir / relpath).is_file():
                raise UsageError(f"output space {spaces[0]} samples the BOLD on the cortical surfaces, which the "
                                 f"surfaces stage has not made for {participant.subject} ({relpath} is missing): "
                                 "select it (--stages smri,surfaces,fmri) or run it first")


def save_run_record(config: RunConfig, argv: list[str], device: Any, run_id: str) -> Path:
    """Save the config, command line, versions, device, seed and run id under ``logs/``."""
    record = {
        "run_id": run_id,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command_line": ["neurolearn", *argv],
        "versions": versions(),
        "device": str(device),
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
    }
    return atomic.write_json(config.logs_dir / f"config-{run_id}.json", record)


def execute(config: RunConfig, argv: list[str]) -> int:
    """Plan and run ``config``; return the exit code."""
    from neurolearn_cli.engine.threads import configure_threads

    threading = configure_threads(config.nprocs, config.omp_nthreads)  # before torch loads
    from neurolearn_cli.cli.display import print_plan, print_summary
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.engine.device import resolve_device
    from neurolearn_cli.stages import require_available, unavailable

    level = config.analysis_level.value
    log = setup_logging(config.verbosity)
    device = resolve_device(config.device)
    if not config.dry_run:
        require_available(config.selected_stages, level)
        check_output_dir(config.output_dir)
    dataset = plan_dataset(
        config.bids_dir,
        participant_labels=config.participant_label,
        sessions=config.session_label,
        tasks=config.task,
        filters=config.bids_filters,
        validate=not config.skip_bids_validation,
        database_dir=config.bids_database_dir,
        require_participants=set(config.selected_stages) != {"mvpa"},  # mvpa alone reads participants.tsv
    )
    if config.analysis_level is AnalysisLevel.participant:
        require_surfaces(config, dataset)
    if config.dry_run:
        print_plan(dataset, config, unavailable(config.selected_stages, level))
        return 0
    run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
    log_file = config.logs_dir / f"neurolearn-{run_id}.log"
    log = setup_logging(config.verbosity, log_file)
    ensure_dataset_description(config.output_dir, config.bids_dir)
    save_run_record(config, argv, device, run_id)
    log.info("neurolearn %s: %s level, stages %s, device %s, run %s", __version__, level,
             ",".join(config.selected_stages), device, run_id)
    log.info("%s", threading)
    if config.analysis_level is AnalysisLevel.participant:
        outcomes = run_participants(config, dataset, log_file)
    else:
        outcomes = run_group(config, dataset)
    print_summary(outcomes, config.output_dir, config.analysis_level)
    code = max((o.exit_code for o in outcomes), default=0)
    log.info("finished with exit code %d; log: %s", code, log_file)
    sys.stderr.flush()
    return code

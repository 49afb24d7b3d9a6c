"""``neurolearn slurm BIDS_DIR OUTPUT_DIR``: write (and submit) a SLURM job array."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def check_partition(partition: str | None, cpus: int, mem_gb: int, time: str) -> None:
    """Refuse a request no node of the partition (sbatch's: ``SBATCH_PARTITION``, else the default) can run.

    Where ``sinfo`` is absent or fails (scripts written for another machine),
    warn that the request was not checked and go on.
    """
    from neurolearn_cli.slurm_partition import (
        PartitionsUnknown,
        check_request,
        read_partitions,
        request_time,
    )

    request_time(time)
    try:
        partitions = read_partitions()
    except PartitionsUnknown as reason:
        typer.echo(f"neurolearn: warning: {reason}: not checked whether the partition can run tasks of "
                   f"{cpus} CPUs, {mem_gb} GB and {time}", err=True)
        return
    check_request(partitions, partition or os.environ.get("SBATCH_PARTITION"), cpus, mem_gb, time)


def slurm_command(
    bids_dir: Annotated[Path, typer.Argument(help="Root of the BIDS dataset.", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Derivatives directory.", show_default=False)],
    extra: Annotated[list[str] | None, typer.Argument(help="Options for each job, after '--' (e.g. -- --stages smri,qc).", show_default=False)] = None,
    participant_label: Annotated[list[str] | None, typer.Option(help="Participants (default: all).")] = None,
    stages: Annotated[list[str] | None, typer.Option(help="Participant-level stages of each array task.")] = None,
    partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    time: Annotated[str, typer.Option(help="Time limit per task (HH:MM:SS).")] = "04:00:00",
    mem_gb: Annotated[int, typer.Option(min=1, help="Memory per task, GB.")] = 16,
    cpus: Annotated[int, typer.Option(min=1, help="CPUs per task (its torch threads).")] = 4,
    container: Annotated[Path | None, typer.Option(help="Singularity/Apptainer image to run in.")] = None,
    submit: Annotated[bool, typer.Option("--submit", help="Submit with sbatch (group job afterany the array).")] = False,
    skip_bids_validation: Annotated[bool, typer.Option("--skip-bids-validation")] = False,
) -> None:
    """Write a job array with one participant per task and a group job that runs after it.

    The request is checked against the partition first (``sinfo``): one that
    no node can ever run is an error (exit 2); without ``sinfo`` a warning.
    """
    from neurolearn_cli import atomic
    from neurolearn_cli.config import strip_sub_prefix
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.errors import InputError
    from neurolearn_cli.slurm import SlurmSettings, group_script, participant_script
    from neurolearn_cli.slurm import submit as submit_jobs

    bids_dir, output_dir = bids_dir.resolve(), output_dir.resolve()
    if container is not None and not container.is_file():
        raise InputError(container, "container image not found")
    check_partition(partition, cpus, mem_gb, time)
    labels = tuple(strip_sub_prefix(label) for label in participant_label or ())
    plan = plan_dataset(bids_dir, participant_labels=labels, validate=not skip_bids_validation)
    settings = SlurmSettings(cpus=cpus, mem_gb=mem_gb, time=time, partition=partition,
                             container=container.resolve() if container else None)
    options = list(extra or [])
    if skip_bids_validation:
        options.append("--skip-bids-validation")
    scripts = output_dir / "logs" / "slurm"
    stage_options = ["--stages", ",".join(stages)] if stages else []
    labels_planned = [p.label for p in plan.participants]
    participant_path = atomic.write_text(scripts / "participant.sbatch",
                                         participant_script(labels_planned, bids_dir, output_dir, settings, options + stage_options))
    group_path = atomic.write_text(scripts / "group.sbatch", group_script(bids_dir, output_dir, settings, options))
    typer.echo(f"job array for {len(plan.participants)} participant(s): {participant_path}")
    typer.echo(f"group job: {group_path}")
    if submit:
        array_id, group_id = submit_jobs(participant_path, group_path)
        typer.echo(f"submitted array {array_id} and group job {group_id} (afterany:{array_id})")

"""Rich tables for the terminal: the ``--dry-run`` plan and the end-of-run summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from neurolearn_cli.config import AnalysisLevel, RunConfig
from neurolearn_cli.dataset.plan import BoldRun, DatasetPlan

STDOUT = Console(soft_wrap=False, width=160)


def _bold_description(run: BoldRun) -> str:
    notes = [f"TR {run.repetition_time:g} s", f"{run.n_volumes} vols"]
    shape = "x".join(str(n) for n in run.image.shape[:3])
    notes.append(shape)
    notes.append("SliceTiming" if run.has_slice_timing else "no SliceTiming")
    if run.fieldmaps:
        notes.append("fmap: " + ",".join(f.kind for f in run.fieldmaps))
    if run.sbref is not None:
        notes.append("sbref")
    if run.events is not None:
        notes.append("events")
    return f"{run.image.path.name} ({', '.join(notes)})"


def print_plan(dataset: DatasetPlan, config: RunConfig, unavailable: Sequence[str], console: Console = STDOUT) -> None:
    """Print participants, sessions, runs, key metadata and what will be produced."""
    stages = ", ".join(f"{s} (not available yet)" if s in unavailable else s for s in config.selected_stages)
    table = Table(title=f"neurolearn plan: {dataset.name} ({config.analysis_level.value} level)", show_lines=True)
    for column in ("participant", "sessions", "T1w", "BOLD runs", "status"):
        table.add_column(column, overflow="fold")
    for participant in dataset.participants:
        t1w = "\n".join(f"{i.path.name} ({'x'.join(map(str, i.shape))}, "
                        f"{'x'.join(f'{z:.2g}' for z in i.zooms[:3])} mm)" for i in participant.t1w) or "-"
        if participant.lesion is not None:
            t1w += f"\nlesion mask: {participant.lesion.path.name}"
        bold = "\n".join(_bold_description(run) for run in participant.bold) or "-"
        status = "skip: " + "; ".join(participant.problems) if participant.problems else "ready"
        table.add_row(participant.subject, ", ".join(participant.sessions) or "-", t1w, bold, status)
    console.print(table)
    console.print(f"stages: {stages}")
    console.print(f"outputs: {config.output_dir}/sub-<label>/ (BIDS-Derivatives), reports sub-<label>.html, logs in {config.logs_dir}")


def print_summary(outcomes: Sequence[Any], output_dir: Path, level: AnalysisLevel = AnalysisLevel.participant,
                  console: Console | None = None) -> None:
    """Print a table of every skipped or failed participant (or group stage) and why, then where outputs are."""
    console = console or Console(stderr=True)
    unit, column = ("participants", "participant") if level is AnalysisLevel.participant else ("group stages", "stage")
    problems = [o for o in outcomes if o.status != "done"]
    done = len(outcomes) - len(problems)
    if problems:
        table = Table(title=f"{unit} not completed")
        table.add_column(column)
        table.add_column("status")
        table.add_column("reason", overflow="fold")
        for outcome in problems:
            table.add_row(outcome.label, outcome.status, outcome.reason)
        console.print(table)
    console.print(f"{done} of {len(outcomes)} {unit} completed; outputs in {output_dir}")

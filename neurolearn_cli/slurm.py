"""SLURM job arrays: one participant per array task, then a group job that always runs.

The scripts are plain text built from the plan, so they can be read, edited and
submitted by hand; :func:`submit` chains them with ``--dependency=afterany``,
so the group report is written (listing failed participants) even when some
tasks fail.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from neurolearn_cli.errors import NeurolearnError, UsageError


@dataclass(frozen=True)
class SlurmSettings:
    """Resources for each array task (and the group job)."""

    cpus: int = 4
    mem_gb: int = 16
    time: str = "04:00:00"
    partition: str | None = None
    container: Path | None = None


def command_prefix(bids_dir: Path, output_dir: Path, container: Path | None) -> str:
    """How a job starts neurolearn: this Python's module, or the Singularity image's runscript."""
    if container is None:
        return f"{shlex.quote(sys.executable)} -m neurolearn_cli"
    binds = f"-B {shlex.quote(f'{bids_dir}:{bids_dir}:ro')} -B {shlex.quote(f'{output_dir}:{output_dir}')}"
    return f"apptainer run --cleanenv {binds} {shlex.quote(str(container))}"


def _header(name: str, settings: SlurmSettings, log_pattern: Path) -> list[str]:
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --cpus-per-task={settings.cpus}",
        f"#SBATCH --mem={settings.mem_gb}G",
        f"#SBATCH --time={settings.time}",
        f"#SBATCH --output={log_pattern}",
    ]
    if settings.partition:
        lines.append(f"#SBATCH --partition={settings.partition}")
    return lines


def participant_script(labels: list[str], bids_dir: Path, output_dir: Path, settings: SlurmSettings,
                       extra: list[str]) -> str:
    """The array script: task ``i`` runs participant ``labels[i]`` with ``cpus`` torch threads."""
    logs = output_dir / "logs" / "slurm"
    prefix = command_prefix(bids_dir, output_dir, settings.container)
    options = " ".join(shlex.quote(option) for option in extra)
    lines = _header("neurolearn-participant", settings, logs / "participant-%A_%a.out")
    lines.insert(2, f"#SBATCH --array=0-{len(labels) - 1}")
    lines += [
        "set -euo pipefail",
        f"labels=({' '.join(shlex.quote(label) for label in labels)})",
        'label="${labels[$SLURM_ARRAY_TASK_ID]}"',
        f"{prefix} {shlex.quote(str(bids_dir))} {shlex.quote(str(output_dir))} participant "
        f'--participant-label "$label" --nprocs 1 --omp-nthreads {settings.cpus} {options}'.rstrip(),
    ]
    return "\n".join(lines) + "\n"


def group_script(bids_dir: Path, output_dir: Path, settings: SlurmSettings, extra: list[str]) -> str:
    """The group job, run after the whole array whatever its outcome."""
    logs = output_dir / "logs" / "slurm"
    prefix = command_prefix(bids_dir, output_dir, settings.container)
    options = " ".join(shlex.quote(option) for option in extra)
    lines = _header("neurolearn-group", settings, logs / "group-%j.out")
    lines += [
        "set -euo pipefail",
        f"{prefix} {shlex.quote(str(bids_dir))} {shlex.quote(str(output_dir))} group --omp-nthreads {settings.cpus} {options}".rstrip(),
    ]
    return "\n".join(lines) + "\n"


def submit(participant_path: Path, group_path: Path) -> tuple[str, str]:
    """Submit the array, then the group job with ``afterany`` on it; return both job ids."""
    def sbatch(*args: str) -> str:
        try:
            result = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, check=True)
        except FileNotFoundError:
            raise UsageError("--submit: sbatch is not on PATH (is SLURM installed here?)") from None
        except subprocess.CalledProcessError as error:
            raise NeurolearnError(f"sbatch failed: {error.stderr.strip() or error.stdout.strip()}") from None
        return result.stdout.strip().split(";")[0]

    array_id = sbatch(str(participant_path))
    group_id = sbatch(f"--dependency=afterany:{array_id}", str(group_path))
    return array_id, group_id

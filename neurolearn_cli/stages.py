"""The registry of stages and what a stage receives.

A participant stage is a plain function ``run(participant, context)``; a group
stage is ``run(dataset, context)``. Both are named here as ``module:function``
so that importing the registry stays cheap. A stage that is not registered is
reported as "not available yet" (exit 2) rather than faked.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.plan import DatasetPlan
from neurolearn_cli.derivatives import DerivativesWriter
from neurolearn_cli.errors import UsageError

#: Participant-level stages, in the order they run.
PARTICIPANT_STAGES: dict[str, str] = {
    "smri": "neurolearn_cli.smri.workflow:run_participant",
    "fmri": "neurolearn_cli.fmri.workflow:run_participant",
    "qc": "neurolearn_cli.qc.workflow:run_participant",
}

#: Group-level stages, in the order they run.
GROUP_STAGES: dict[str, str] = {
    "qc": "neurolearn_cli.qc.workflow:run_group",
    "mvpa": "neurolearn_cli.mvpa.workflow:run_group",
}


@dataclass(frozen=True)
class StageContext:
    """What every stage gets: the run's config, device, dataset plan, writer and logger.

    ``fingerprints`` maps each participant stage to the digest of the inputs
    and settings it reads; :meth:`for_stage` gives the context whose writer
    records under that digest.
    """

    config: RunConfig
    device: Any
    dataset: DatasetPlan
    writer: DerivativesWriter
    log: logging.Logger
    fingerprints: Mapping[str, str] = field(default_factory=dict)

    def for_stage(self, stage: str) -> StageContext:
        """This context with a writer that checks and records outputs under ``stage``'s fingerprint."""
        if stage not in self.fingerprints:
            return self
        return dataclasses.replace(self, writer=self.writer.with_fingerprint(self.fingerprints[stage]))


def unavailable(stages: tuple[str, ...], level: str) -> list[str]:
    """Stages among ``stages`` that have no implementation at ``level``."""
    registry = PARTICIPANT_STAGES if level == "participant" else GROUP_STAGES
    return [stage for stage in stages if stage not in registry]


def require_available(stages: tuple[str, ...], level: str) -> None:
    """Raise :class:`UsageError` for the first stage not available at ``level``."""
    missing = unavailable(stages, level)
    if missing:
        raise UsageError(f"stage {missing[0]} is not available yet at the {level} level")


def load_stage(name: str, level: str) -> Callable[..., Any]:
    """Import and return the function implementing stage ``name`` at ``level``."""
    registry = PARTICIPANT_STAGES if level == "participant" else GROUP_STAGES
    module_name, _, function = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), function)

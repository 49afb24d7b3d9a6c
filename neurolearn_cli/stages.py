"""The registry of stages and what a stage receives.

A participant stage is a plain function ``run(participant, context)``; a group
stage is ``run(dataset, context)``. Both are named here as ``module:function``
so that importing the registry stays cheap. A stage that is not registered is
reported as "not available yet" (exit 2) rather than faked.

A participant stage declares the stages whose outputs it reads
(:data:`STAGE_NEEDS`, and :data:`SETTING_NEEDS` for what it reads only under
some settings: fmri reads the surfaces for a surface output space); the runner visits the selected stages and the stages
they need in registry order (:func:`stage_order`) and, at its turn, after its
needs ran, skips a stage whose outputs are current (:data:`STAGE_CURRENT`).
A stage only reads its dependencies' outputs, by their planned paths, and
never runs them; those outputs' recorded hashes are part of its digest
(:meth:`StageContext.stage_digest`), so a need that wrote other bytes makes
it stale.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.plan import DatasetPlan, ParticipantPlan
from neurolearn_cli.derivatives import DerivativesWriter, fingerprint
from neurolearn_cli.errors import UsageError
from neurolearn_cli.spaces import surface_spaces

if TYPE_CHECKING:
    from neurolearn_cli.smri.parcellation import Atlas
    from neurolearn_cli.smri.template import Template
    from neurolearn_cli.templateflow import TemplateFiles

#: Participant-level stages, in the order they run.
PARTICIPANT_STAGES: dict[str, str] = {
    "smri": "neurolearn_cli.smri.workflow:run_participant",
    "surfaces": "neurolearn_cli.surfaces.workflow:run_participant",
    "fmri": "neurolearn_cli.fmri.workflow:run_participant",
    "qc": "neurolearn_cli.qc.workflow:run_participant",
}

#: Per participant stage, the stages whose outputs it reads (each registered before it).
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "smri": (),
    "surfaces": ("smri",),
    "fmri": ("smri",),
    "qc": ("smri", "fmri"),  # fmri: the confounds and figures of each BOLD run
}

#: Per participant stage, the stages whose outputs it reads where they are recorded, without needing them
#: (qc measures and shows the surfaces when the opt-in surfaces stage made them).
STAGE_READS: dict[str, tuple[str, ...]] = {
    "qc": ("surfaces",),
}

#: Per participant stage, the stages it reads only under some settings: (need, whether the run's config asks for it).
SETTING_NEEDS: dict[str, tuple[tuple[str, Callable[[RunConfig], bool]], ...]] = {
    "fmri": (("surfaces", lambda config: bool(surface_spaces(config.output_spaces))),),  # BOLD on the surfaces
}

#: Participant stages with nothing to do for a participant who lacks their inputs, and what is lacking.
STAGE_INPUTS: dict[str, tuple[str, Callable[[ParticipantPlan], bool]]] = {
    "fmri": ("no BOLD run", lambda participant: bool(participant.bold)),
}

#: Participant stages whose failure fails the participant but lets the stages that do not need them run
#: (the surfaces: smri's volumes, the fmri outputs and the report with the reason are still made).
CONTINUE_AFTER_FAILURE = ("surfaces",)

#: Per participant stage, ``outputs_current(participant, context)``: whether its outputs are all current.
#: A stage not listed here always runs.
STAGE_CURRENT: dict[str, str] = {
    "smri": "neurolearn_cli.smri.workflow:outputs_current",
    "surfaces": "neurolearn_cli.surfaces.workflow:outputs_current",
    "fmri": "neurolearn_cli.fmri.workflow:outputs_current",
    "qc": "neurolearn_cli.qc.workflow:outputs_current",
}

#: Group-level stages, in the order they run.
GROUP_STAGES: dict[str, str] = {
    "qc": "neurolearn_cli.qc.workflow:run_group",
    "mvpa": "neurolearn_cli.mvpa.workflow:run_group",
}


_Context = TypeVar("_Context", bound="StageContext")


@dataclass(frozen=True)
class StageContext:
    """What every stage gets: the run's config, device, dataset plan, writer and logger.

    ``fingerprints`` maps each participant stage to the digest of the raw
    inputs and settings it reads; :meth:`for_stage` gives the context whose
    writer records under :meth:`stage_digest`. A group stage gets this; a
    participant stage gets a :class:`ParticipantContext`.
    """

    config: RunConfig
    device: Any
    dataset: DatasetPlan
    writer: DerivativesWriter
    log: logging.Logger
    fingerprints: Mapping[str, str] = field(default_factory=dict)

    def stage_digest(self, stage: str) -> str:
        """``stage``'s fingerprint and the hashes the manifest records now for its needs' outputs
        (and for those of :data:`STAGE_READS` that are recorded).

        So a stage whose needs rewrote their outputs with other bytes is not
        current, even when its own inputs and settings are unchanged. Ask it at
        the stage's turn, after its needs ran.
        """
        reads = {need: self.writer.recorded(self.stage_digest(need))
                 for need in stage_needs(stage, self.config) if need in self.fingerprints}
        reads |= {other: recorded for other in STAGE_READS.get(stage, ()) if other in self.fingerprints
                  and other not in reads and (recorded := self.writer.recorded(self.stage_digest(other)))}
        if not reads:
            return self.fingerprints[stage]
        return fingerprint((), {"stage": self.fingerprints[stage], "reads": reads})

    def for_stage(self: _Context, stage: str) -> _Context:
        """This context with a writer that checks and records outputs under :meth:`stage_digest`."""
        if stage not in self.fingerprints:
            return self
        return dataclasses.replace(self, writer=self.writer.with_fingerprint(self.stage_digest(stage)))


@dataclass(frozen=True, kw_only=True)
class ParticipantContext(StageContext):
    """What a participant stage gets: a :class:`StageContext` with the template, the atlas and the TemplateFlow home.

    The runner loads the template and the atlas, and lists the TemplateFlow
    home's templates (``templates``, keyed by name and cohort), once per
    participant, for every stage; ``failed_stages`` holds the one-line reason
    of each stage of :data:`CONTINUE_AFTER_FAILURE` that failed before this one.
    """

    template: Template
    atlas: Atlas
    templates: Mapping[tuple[str, str | None], TemplateFiles] = field(default_factory=dict)
    failed_stages: Mapping[str, str] = field(default_factory=dict)


def unavailable(stages: tuple[str, ...], level: str) -> list[str]:
    """Stages among ``stages`` that have no implementation at ``level``."""
    registry = PARTICIPANT_STAGES if level == "participant" else GROUP_STAGES
    return [stage for stage in stages if stage not in registry]


def require_available(stages: tuple[str, ...], level: str) -> None:
    """Raise :class:`UsageError` for the first stage not available at ``level``."""
    missing = unavailable(stages, level)
    if missing:
        raise UsageError(f"stage {missing[0]} is not available yet at the {level} level")


def _import(target: str) -> Callable[..., Any]:
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)


def load_stage(name: str, level: str) -> Callable[..., Any]:
    """Import and return the function implementing stage ``name`` at ``level``."""
    registry = PARTICIPANT_STAGES if level == "participant" else GROUP_STAGES
    return _import(registry[name])


def load_currency_check(name: str) -> Callable[..., bool] | None:
    """Import ``outputs_current(participant, context)`` of participant stage ``name``; None if it has none."""
    return _import(STAGE_CURRENT[name]) if name in STAGE_CURRENT else None


def stage_needs(stage: str, config: RunConfig | None = None) -> tuple[str, ...]:
    """The stages whose outputs ``stage`` reads: always (:data:`STAGE_NEEDS`) and under ``config``'s settings."""
    needs = STAGE_NEEDS.get(stage, ())
    if config is None:
        return needs
    return needs + tuple(need for need, asks in SETTING_NEEDS.get(stage, ()) if asks(config) and need not in needs)


def stage_order(selected: Collection[str], config: RunConfig | None = None) -> list[str]:
    """The ``selected`` participant stages and, recursively, the stages they need (under ``config``), in registry order.

    Each is visited once, after its needs; whether it runs is decided at its
    turn (its outputs may be current, or made stale by a need that ran).
    """
    wanted, pending = set(selected), list(selected)
    while pending:
        for need in stage_needs(pending.pop(), config):
            if need not in wanted:
                wanted.add(need)
                pending.append(need)
    return [stage for stage in PARTICIPANT_STAGES if stage in wanted]

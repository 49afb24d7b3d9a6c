"""The participant HTML report (the group report is :mod:`~neurolearn_cli.qc.group_report`).

The participant page opens with the run's summary and closes with the
methods boilerplate (:mod:`neurolearn_cli.boilerplate`). Pages are rendered
by jinja2 from templates inside the package with
autoescaping on for every template, so labels, metadata and error messages
from the data are escaped. Figures are embedded as base64 ``data:`` URIs: one
self-contained file, no external CSS, scripts or fonts.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

from neurolearn_cli import __version__
from neurolearn_cli.boilerplate.document import Boilerplate
from neurolearn_cli.qc.iqm_catalog import IQMGroup, iqm_groups, modality_of
from neurolearn_cli.qc.measures import Measure

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("neurolearn_cli.qc", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class ReportFigure:
    """A figure to embed: a title, image bytes and their MIME type, an optional caption."""

    title: str
    data: bytes
    mime: str = "image/png"
    caption: str = ""

    @property
    def uri(self) -> str:
        """The figure as a ``data:`` URI."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class ImageQC:
    """One image's section: its BIDS name, figures, IQMs, JSON metadata and what the IQMs were measured against."""

    bids_name: str
    figures: Sequence[ReportFigure] = ()
    iqms: Mapping[str, Measure] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def iqm_groups(self) -> list[IQMGroup]:
        """The IQMs grouped for display, with units, meanings and MRIQC's links (:mod:`~neurolearn_cli.qc.iqm_catalog`)."""
        return iqm_groups(self.iqms, modality_of(self.bids_name))


@dataclass(frozen=True)
class ParticipantReport:
    """What ``sub-<label>.html`` shows.

    Attributes
    ----------
    participant : str
        Participant label, without ``sub-``.
    summary : sequence of (str, str)
        The participant's summary rows (:func:`~neurolearn_cli.boilerplate.summary.participant_summary`).
    runs : mapping
        BOLD name -> that run's summary rows (:func:`~neurolearn_cli.boilerplate.summary.run_summary`).
    anat, func : sequence of ImageQC
        One entry per T1w and per BOLD run.
    methods : Boilerplate or None
        The methods text of what ran (:func:`~neurolearn_cli.boilerplate.methods.methods`).
    errors : sequence of str
        Problems met while processing this participant.
    """

    participant: str
    summary: Sequence[tuple[str, str]] = ()
    runs: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    anat: Sequence[ImageQC] = ()
    func: Sequence[ImageQC] = ()
    methods: Boilerplate | None = None
    errors: Sequence[str] = ()


def render_participant_report(report: ParticipantReport) -> str:
    """The participant's self-contained HTML page."""
    template = _ENVIRONMENT.get_template("participant.html.j2")
    return template.render(
        report=report,
        dumps=lambda payload: json.dumps(payload, indent=2, sort_keys=True, default=str),
        version=__version__,
    )

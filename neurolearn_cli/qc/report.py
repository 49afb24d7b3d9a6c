"""Participant and group HTML reports, and the methods text behind them.

Pages are rendered by jinja2 from templates inside the package with
autoescaping on for every template, so labels, metadata and error messages
from the data are escaped. Figures are embedded as base64 ``data:`` URIs: one
self-contained file, no external CSS, scripts or fonts.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import jinja2
import pandas as pd

from neurolearn_cli import __version__
from neurolearn_cli.qc.figures import strip_box
from neurolearn_cli.qc.group import flag_outliers, iqm_columns

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("neurolearn_cli.qc", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_PARTICIPANT_ID = re.compile(r"sub-[A-Za-z0-9]+")
DEPENDENCIES = ("torch", "numpy", "scipy", "nibabel", "nilearn", "matplotlib", "jinja2")
REFERENCES = (
    "Esteban O, et al. MRIQC: Advancing the automatic prediction of image quality in MRI from unseen sites. "
    "PLoS ONE 12(9):e0184661, 2017. doi:10.1371/journal.pone.0184661",
    "Power JD, et al. Spurious but systematic correlations in functional connectivity MRI networks arise from "
    "subject motion. NeuroImage 59(3):2142-2154, 2012. doi:10.1016/j.neuroimage.2011.10.018",
    "Nichols TE. Notes on creating a standardized version of DVARS. arXiv:1704.01469, 2017.",
    "Dietrich O, et al. Measurement of signal-to-noise ratios in MR images: influence of multichannel coils, "
    "parallel imaging, and reconstruction filters. JMRI 26(2):375-385, 2007. doi:10.1002/jmri.20969",
    "Mortamet B, et al. Automatic quality assessment in structural brain magnetic resonance imaging. "
    "MRM 62(2):365-372, 2009. doi:10.1002/mrm.21992",
    "Atkinson D, et al. Automatic correction of motion artifacts in magnetic resonance images using an entropy "
    "focus criterion. IEEE TMI 16(6):903-910, 1997. doi:10.1109/42.650886",
    "Giannelli M, et al. Characterization of Nyquist ghost in EPI-fMRI acquisition sequences implemented on two "
    "clinical 1.5 T MR scanners. MRM 63(4):1119-1124, 2010. doi:10.1002/mrm.22286",
    "Cox RW. AFNI: software for analysis and visualization of functional magnetic resonance neuroimages. "
    "Comput Biomed Res 29(3):162-173, 1996. doi:10.1006/cbmr.1996.0014",
    "Paszke A, et al. PyTorch: an imperative style, high-performance deep learning library. NeurIPS 2019.",
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
    """One image's section: its BIDS name, figures, IQMs and JSON metadata."""

    bids_name: str
    figures: Sequence[ReportFigure] = ()
    iqms: Mapping[str, float] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParticipantReport:
    """What ``sub-<label>.html`` shows.

    Attributes
    ----------
    participant : str
        Participant label, without ``sub-``.
    anat, func : sequence of ImageQC
        One entry per T1w and per BOLD run.
    methods : str
        Methods paragraphs (blank-line separated), from :func:`methods_text`.
    errors : sequence of str
        Problems met while processing this participant.
    """

    participant: str
    anat: Sequence[ImageQC] = ()
    func: Sequence[ImageQC] = ()
    methods: str = ""
    errors: Sequence[str] = ()


def _format(value: Any) -> str:
    """IQM values: floats with 4 significant digits (``n/a`` when not finite), anything else as is."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.4g}" if math.isfinite(value) else "n/a"


def _report_link(participant_id: str) -> str | None:
    """``sub-<label>.html`` for a valid BIDS participant id, else None (no link is made)."""
    return f"{participant_id}.html" if _PARTICIPANT_ID.fullmatch(str(participant_id)) else None


def _paragraphs(text: str) -> list[str]:
    return [block.strip() for block in text.split("\n\n") if block.strip()]


def render_participant_report(report: ParticipantReport) -> str:
    """The participant's self-contained HTML page."""
    template = _ENVIRONMENT.get_template("participant.html.j2")
    return template.render(
        report=report,
        methods=_paragraphs(report.methods),
        format=_format,
        dumps=lambda payload: json.dumps(payload, indent=2, sort_keys=True, default=str),
        version=__version__,
    )


def render_group_report(table: pd.DataFrame, modality: str, failures: Mapping[str, str]) -> str:
    """The group's self-contained HTML page for one modality (``T1w`` or ``bold``).

    Parameters
    ----------
    table : DataFrame
        The group table (:func:`~neurolearn_cli.qc.group.group_table`).
    modality : str
        Shown in the title.
    failures : mapping
        ``participant label -> reason`` for participants without results.
    """
    outliers = flag_outliers(table)
    flagged = set(zip(outliers["bids_name"], outliers["iqm"], strict=True))
    plots = []
    for name in iqm_columns(table):
        rows = table[table[name].notna()]
        if len(rows) < 2:
            continue
        marks = [(bids, name) in flagged for bids in rows["bids_name"]]
        plots.append(
            ReportFigure(title=name, data=strip_box(rows[name].to_numpy(float), name, marks))
        )
    rows = [
        {**row, "href": _report_link(row["participant_id"])} for row in outliers.to_dict("records")
    ]
    template = _ENVIRONMENT.get_template("group.html.j2")
    return template.render(
        modality=modality,
        n_images=len(table),
        n_participants=table["participant_id"].nunique() if len(table) else 0,
        plots=plots,
        outliers=rows,
        failures=sorted(failures.items()),
        format=_format,
        version=__version__,
    )


def dependency_versions(packages: Sequence[str] = DEPENDENCIES) -> dict[str, str]:
    """Installed versions of ``packages`` (``unknown`` where not installed)."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


def methods_text(
    modalities: Sequence[str],
    versions: Mapping[str, str],
    fd_threshold: float = 0.2,
    device: str = "cpu",
) -> str:
    """Methods paragraphs (Markdown) for reports and ``logs/CITATION.md``.

    Parameters
    ----------
    modalities : sequence of str
        ``"T1w"`` and/or ``"bold"``: the images that were assessed.
    versions : mapping
        Package versions (e.g. :func:`dependency_versions`).
    fd_threshold : float
        FD threshold (mm) used for ``fd_num``/``fd_perc``.
    device : str
        The device the computations ran on.
    """
    libraries = ", ".join(f"{name} {ver}" for name, ver in sorted(versions.items()))
    paragraphs = [
        f"Image quality was assessed with neurolearn {__version__}, whose image-quality metrics (IQMs) "
        "follow the names and definitions of MRIQC [1], computed with PyTorch [9] on "
        f"the {device}. Libraries: {libraries}."
    ]
    if "T1w" in modalities:
        paragraphs.append(
            "For each T1w image, the head was masked by Otsu thresholding and morphology, and the air "
            "background above the bottom of the brain was taken as the noise reference; artifactual air "
            "voxels were detected as in Mortamet et al. [5]. IQMs: tissue SNR and Dietrich's background SNR "
            "[4], CNR, CJV, EFC [6], FBER, WM-to-max ratio, QI1, smoothness (FWHM from first differences, "
            "as AFNI's 3dFWHMx [8]), intracranial volume fractions, residual partial-volume error, overlap "
            "with template tissue priors, bias-field summaries and per-tissue intensity summaries."
        )
    if "bold" in modalities:
        paragraphs.append(
            "For each BOLD run, after discarding non-steady-state volumes, IQMs were: temporal SNR, DVARS "
            f"(raw, standardized and voxel-wise standardized [3]), framewise displacement [2] (mean, and "
            f"number and percentage of volumes above {fd_threshold:g} mm), global correlation, "
            "ghost-to-signal ratios along both in-plane axes [7], AFNI-style outlier ratio and quality "
            "index [8], EFC, FBER, SNR, smoothness and intensity summaries."
        )
    references = "\n".join(f"[{k}] {ref}" for k, ref in enumerate(REFERENCES, start=1))
    return "\n\n".join([*paragraphs, "References\n" + references]) + "\n"

"""What each IQM is: its group, unit, one-line meaning and MRIQC's definition.

One table for every page that shows IQMs (the participant report's IQM
tables, the group report's plots and outliers) and for the group outlier
rules, which need a measure's resolution: one count for counts (``fd_num``,
``size_x``), one volume for ``fd_perc``. Groups follow MRIQC's documentation
(noise, information theory, artifacts, then motion, temporal, tissue and
spatial measures, intensity summaries, acquisition). Links point to MRIQC's
definition of the same measure; where ours is computed differently, the
module docstrings of :mod:`~neurolearn_cli.qc.anatomical` and
:mod:`~neurolearn_cli.qc.functional` say how.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from neurolearn_cli.qc.functional import FD_THRESHOLD_MM
from neurolearn_cli.qc.measures import Measure, Missing

MRIQC_PAGES = {
    "T1w": "https://mriqc.readthedocs.io/en/latest/iqms/t1w.html",
    "bold": "https://mriqc.readthedocs.io/en/latest/iqms/bold.html",
}
#: Display order of the groups.
GROUPS = (
    "Noise",
    "Information theory",
    "Artifacts",
    "Motion",
    "Temporal",
    "Tissue and spatial",
    "Intensity summaries",
    "Acquisition",
    "Surfaces",
    "Other",
)
_HEMISPHERES = {"L": "left", "R": "right"}
_TISSUES = {"csf": "CSF", "gm": "GM", "wm": "WM"}
_REGIONS = {**_TISSUES, "bg": "the air background", "fg": "the brain mask"}
_STATISTICS = {
    "mean": ("a.u.", "mean intensity"),
    "median": ("a.u.", "median intensity"),
    "stdv": ("a.u.", "standard deviation of the intensities"),
    "mad": ("a.u.", "normalised median absolute deviation of the intensities"),
    "k": ("", "excess kurtosis of the intensities"),
    "p05": ("a.u.", "5th percentile of the intensities"),
    "p95": ("a.u.", "95th percentile of the intensities"),
    "n": ("voxels", "number of voxels"),
}


@dataclass(frozen=True)
class IQMInfo:
    """One IQM: display group, unit (empty when dimensionless), meaning, MRIQC anchor and resolution.

    ``step`` is the smallest difference two images can show (1 for counts);
    ``per_volume`` marks a percentage of a run's volumes, whose step is one
    volume (:data:`None` ``step``: continuous).
    """

    name: str
    group: str
    unit: str
    meaning: str
    anchor: str | None = None
    step: float | None = None
    per_volume: bool = False

    def url(self, modality: str) -> str | None:
        """MRIQC's definition of this measure for ``modality`` (``T1w`` or ``bold``), if it has one."""
        page = MRIQC_PAGES.get(modality)
        return f"{page}#{self.anchor}" if page and self.anchor else None


def _entries() -> dict[str, IQMInfo]:
    """The catalog, by IQM name."""
    entries = [
        IQMInfo("cjv", "Noise", "", "Coefficient of joint variation of GM and WM; lower is better (noise, bias, motion).", "iqms-cjv"),
        IQMInfo("cnr", "Noise", "", "Contrast-to-noise ratio of GM and WM; higher is better.", "iqms-cnr"),
        IQMInfo("snr", "Noise", "", "Signal-to-noise ratio within the brain mask of the mean EPI; higher is better.", "iqms-snr"),
        IQMInfo("tsnr", "Temporal", "", "Median temporal SNR (mean over time / sd over time) in the brain; higher is better.", "iqms-tsnr"),
        IQMInfo("dvars_nstd", "Temporal", "a.u.", "Mean DVARS: RMS of the volume-to-volume signal change (series scaled to 1000).", "iqms-dvars"),
        IQMInfo("dvars_std", "Temporal", "", "Mean standardised DVARS (1 expected without artifacts); lower is better.", "iqms-dvars"),
        IQMInfo("dvars_vstd", "Temporal", "", "Mean voxel-wise standardised DVARS; lower is better.", "iqms-dvars"),
        IQMInfo("gcor", "Temporal", "", "Global correlation: mean correlation between all brain voxel time series.", "iqms-gcor"),
        IQMInfo("efc", "Information theory", "", "Entropy focus criterion (fraction of maximum entropy): ghosting and blurring; lower is better.", "iqms-efc"),
        IQMInfo("fber", "Information theory", "", "Foreground-to-background energy ratio; higher is better.", "iqms-fber"),
        IQMInfo("qi_1", "Artifacts", "fraction", "Fraction of the air background taken by artifacts (Mortamet's QI1); 0 is best.", "iqms-qi"),
        IQMInfo("inu_med", "Artifacts", "", "Median of the bias field in the brain; close to 1 is better.", "iqms-inu"),
        IQMInfo("inu_range", "Artifacts", "", "Spread of the bias field in the brain (95th - 5th percentile); lower is better.", "iqms-inu"),
        IQMInfo("wm2max", "Artifacts", "", "Median WM intensity over the 99.95th percentile; expected in [0.6, 0.8].", "iqms-wm2max"),
        IQMInfo("gsr_x", "Artifacts", "", "Ghost-to-signal ratio along the first voxel axis; lower is better.", "iqms-gsr"),
        IQMInfo("gsr_y", "Artifacts", "", "Ghost-to-signal ratio along the second voxel axis; lower is better.", "iqms-gsr"),
        IQMInfo("aor", "Artifacts", "fraction", "Mean fraction of outlier voxels per volume (AFNI 3dToutcount); lower is better.", "iqms-aor"),
        IQMInfo("aqi", "Artifacts", "", "Mean quality index (1 - rank correlation with the median volume); lower is better.", "iqms-aqi"),
        IQMInfo("dummy_trs", "Acquisition", "volumes", "Non-steady-state volumes at the start, left out of every measure.", "iqms-dummy", step=1.0),
        IQMInfo("fd_mean", "Motion", "mm", "Mean framewise displacement (head motion between volumes); lower is better.", "iqms-fd"),
        IQMInfo("fd_num", "Motion", "volumes", f"Number of volumes with framewise displacement above {FD_THRESHOLD_MM:g} mm (MRIQC's default).", "iqms-fd", step=1.0),
        IQMInfo("fd_perc", "Motion", "%", f"Percentage of volumes with framewise displacement above {FD_THRESHOLD_MM:g} mm (MRIQC's default).", "iqms-fd", per_volume=True),
        IQMInfo("size_t", "Acquisition", "volumes", "Number of volumes in the run.", step=1.0),
        IQMInfo("spacing_tr", "Acquisition", "s", "Repetition time."),
    ]
    for tissue, label in _TISSUES.items():
        entries += [
            IQMInfo(f"snr_{tissue}", "Noise", "", f"Signal-to-noise ratio within {label}; higher is better.", "iqms-snr"),
            IQMInfo(f"snrd_{tissue}", "Noise", "", f"Dietrich's SNR of {label} against the air background noise; higher is better.", "iqms-snrd"),
            IQMInfo(f"icvs_{tissue}", "Tissue and spatial", "fraction", f"{label} fraction of the intracranial volume.", "iqms-icvs"),
            IQMInfo(f"rpve_{tissue}", "Tissue and spatial", "", f"Residual partial-volume error of the {label} map; lower is better.", "iqms-rpve"),
            IQMInfo(f"tpm_overlap_{tissue}", "Tissue and spatial", "", f"Overlap (fuzzy Jaccard) of the {label} map with the prior of the template the run normalized to (the JSON's provenance names it); higher is better.", "iqms-tpm"),
        ]
    entries += [
        IQMInfo("snr_total", "Noise", "", "Mean of the tissue SNRs; higher is better.", "iqms-snr"),
        IQMInfo("snrd_total", "Noise", "", "Mean of the tissue Dietrich SNRs; higher is better.", "iqms-snrd"),
    ]
    for axis in ("x", "y", "z"):
        entries += [
            IQMInfo(f"fwhm_{axis}", "Tissue and spatial", "voxels", f"Smoothness (FWHM) along {axis}; higher is blurrier.", "iqms-fwhm"),
            IQMInfo(f"size_{axis}", "Acquisition", "voxels", f"Grid size along {axis}.", step=1.0),
            IQMInfo(f"spacing_{axis}", "Acquisition", "mm", f"Voxel size along {axis}."),
        ]
    for hemisphere, side in _HEMISPHERES.items():
        entries += [
            IQMInfo(f"surf_handles_{hemisphere}", "Surfaces", "handles", f"Topological defects of the {side} white matter before correction: (2 - Euler characteristic) / 2 of its boundary (DeepPrep's surface QC); the correction cuts them, but many mean a noisy or badly segmented image.", step=1.0),
            IQMInfo(f"surf_thickness_{hemisphere}", "Surfaces", "mm", f"Mean cortical thickness of the {side} hemisphere (FreeSurfer's definition)."),
        ]
    entries += [
        IQMInfo("surf_voxels_cut", "Surfaces", "voxels", "White-matter voxels the topology correction left out to make both white surfaces genus 0; lower is better.", step=1.0),
        IQMInfo("surf_intersections", "Surfaces", "faces", "Self-intersecting faces of the white and pial surfaces of both hemispheres; 0 is expected.", step=1.0),
        IQMInfo("surf_thickness_asym", "Surfaces", "", "Left/right asymmetry of mean thickness, 2 (L - R) / (L + R); far from 0 points at a failed hemisphere."),
    ]
    entries.append(IQMInfo("fwhm_avg", "Tissue and spatial", "voxels", "Mean smoothness (FWHM) over the three axes; higher is blurrier.", "iqms-fwhm"))
    for region, where in _REGIONS.items():
        for statistic, (unit, what) in _STATISTICS.items():
            entries.append(
                IQMInfo(
                    f"summary_{region}_{statistic}",
                    "Intensity summaries",
                    unit,
                    f"{what[0].upper()}{what[1:]} in {where}.",
                    "iqms-summary",
                    step=1.0 if statistic == "n" else None,
                )
            )
    return {entry.name: entry for entry in entries}


CATALOG = _entries()


def describe(name: str) -> IQMInfo:
    """The catalog entry of ``name``; a measure not in the catalog is in group ``Other``, without unit or meaning."""
    return CATALOG.get(name) or IQMInfo(name, "Other", "", "")


def modality_of(bids_name: str) -> str:
    """``bold`` for a BOLD run's name (``..._bold``), else ``T1w``."""
    return "bold" if bids_name.endswith("_bold") else "T1w"


def format_value(value: Measure | None, info: IQMInfo | None = None) -> str:
    """A value as shown: counts as integers, other numbers with 4 significant digits, ``n/a`` when missing."""
    if value is None or isinstance(value, Missing):
        return "n/a"
    number = float(value)
    if not math.isfinite(number):
        return "n/a"
    if isinstance(value, int) or (info is not None and info.step == 1.0 and number.is_integer()):
        return str(int(number))
    return f"{number:.4g}"


@dataclass(frozen=True)
class IQMRow:
    """One IQM as a table row: its catalog entry, the value as text, why it is missing, MRIQC's link."""

    info: IQMInfo
    text: str
    reason: str | None
    url: str | None


@dataclass(frozen=True)
class IQMGroup:
    """A titled group of IQM rows."""

    title: str
    rows: list[IQMRow]


def iqm_groups(
    iqms: Mapping[str, Measure | None], modality: str, missing: Mapping[str, str] | None = None
) -> list[IQMGroup]:
    """An image's IQMs as rows grouped as :data:`GROUPS`, by name within a group.

    ``missing`` gives the reason of values that are ``None`` (read from an
    IQM JSON); a :class:`~neurolearn_cli.qc.measures.Missing` value carries its own.
    """
    reasons = missing or {}
    groups: dict[str, list[IQMRow]] = {}
    for name in sorted(iqms):
        value, info = iqms[name], describe(name)
        text = format_value(value, info)
        if isinstance(value, Missing):
            reason: str | None = value.reason
        elif text == "n/a":
            reason = reasons.get(name, "not computed" if value is None else "not a finite number")
        else:
            reason = None
        groups.setdefault(info.group, []).append(
            IQMRow(info, text, reason, info.url(modality))
        )
    return [IQMGroup(title, groups[title]) for title in GROUPS if title in groups]

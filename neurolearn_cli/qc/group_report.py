"""The group report of one modality: every image's IQMs as points, the outliers and the rule that flagged them.

Measures are grouped, titled and linked by :mod:`~neurolearn_cli.qc.iqm_catalog`;
outliers come from :func:`~neurolearn_cli.qc.group.flag_outliers`; each
measure is an inline SVG strip plot (:mod:`~neurolearn_cli.qc.group_figures`)
whose points name their image on hover and link to its participant's report.
The page is rendered with the participant report's jinja2 environment
(autoescaping on) and is self-contained.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli import __version__
from neurolearn_cli.qc.group import (
    MIN_IMAGES_TO_FLAG,
    RELATIVE_RESOLUTION,
    TUKEY_K,
    Z_THRESHOLD,
    flag_outliers,
    iqm_columns,
)
from neurolearn_cli.qc.group_figures import StripPlot, strip_plot
from neurolearn_cli.qc.iqm_catalog import GROUPS, IQMInfo, describe, format_value
from neurolearn_cli.qc.report import _ENVIRONMENT

_PARTICIPANT_ID = re.compile(r"sub-[A-Za-z0-9]+")


def report_link(participant_id: str) -> str | None:
    """``sub-<label>.html`` for a valid BIDS participant id, else None (no link is made)."""
    return f"{participant_id}.html" if _PARTICIPANT_ID.fullmatch(str(participant_id)) else None


@dataclass(frozen=True)
class MeasurePanel:
    """One IQM's panel: catalog entry, MRIQC link, its plot (None with fewer than 2 values), what is missing."""

    info: IQMInfo
    url: str | None
    plot: StripPlot | None
    summary: str
    missing: list[tuple[str, str]]


def _with_unit(text: str, info: IQMInfo) -> str:
    return f"{text} {info.unit}" if info.unit and text != "n/a" else text


def _panel(
    table: pd.DataFrame,
    name: str,
    modality: str,
    flagged: set[tuple[str, str]],
    outliers: pd.DataFrame,
    reasons: Mapping[tuple[str, str], str],
) -> MeasurePanel:
    """The panel of IQM ``name``: points for the finite values, reasons for the missing ones."""
    info = describe(name)
    values = table[name].astype(float)
    present = table[np.isfinite(values)]
    missing = [
        (str(bids), reasons.get((str(bids), name), "not computed"))
        for bids in table.loc[~np.isfinite(values), "bids_name"]
    ]
    summary = f"{len(present)} of {len(table)} images"
    if len(present) < 2:
        return MeasurePanel(info, info.url(modality), None, summary, missing)
    rows = outliers[outliers["iqm"] == name]
    fences = (
        (float(rows["low_fence"].iloc[0]), float(rows["high_fence"].iloc[0]))
        if len(rows)
        else (-np.inf, np.inf)
    )
    bids_names = [str(b) for b in present["bids_name"]]
    plot = strip_plot(
        present[name].to_numpy(float),
        titles=[f"{b}: {_with_unit(format_value(v, info), info)}" for b, v in zip(bids_names, present[name], strict=True)],
        labels=[str(p) for p in present["participant_id"]],
        flagged=[(b, name) in flagged for b in bids_names],
        hrefs=[report_link(str(p)) for p in present["participant_id"]],
        fences=fences,
    )
    return MeasurePanel(info, info.url(modality), plot, summary, missing)


def _flagged_by(row: Mapping[Hashable, Any]) -> str:
    """Which rule flagged an outlier, with the numbers that made it so."""
    rules = []
    if row["robust"]:
        rules.append(f"robust z = {row['robust_z']:.3g} (scale: {row['scale_rule']}, {row['scale']:.3g})")
    if row["tukey"]:
        rules.append(f"Tukey: outside [{row['low_fence']:.4g}, {row['high_fence']:.4g}]")
    return "; ".join(rules)


def _outlier_row(row: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
    """An outlier as the table shows it: the flag's fields, the IQM's entry, value with unit, rule, link."""
    info = describe(str(row["iqm"]))
    return {
        **row,
        "info": info,
        "value_text": _with_unit(format_value(float(row["value"]), info), info),
        "flagged_by": _flagged_by(row),
        "href": report_link(str(row["participant_id"])),
    }


def render_group_report(
    table: pd.DataFrame,
    modality: str,
    failures: Mapping[str, str],
    missing: Mapping[tuple[str, str], str] | None = None,
) -> str:
    """The group's self-contained HTML page for one modality (``T1w`` or ``bold``).

    Parameters
    ----------
    table : DataFrame
        The group table (:func:`~neurolearn_cli.qc.group.group_table`).
    modality : str
        Shown in the title; picks MRIQC's T1w or BOLD definitions for the links.
    failures : mapping
        ``participant label -> reason`` for participants without results.
    missing : mapping, optional
        ``(bids_name, iqm) -> reason`` of missing values
        (:func:`~neurolearn_cli.qc.group.missing_reasons`), shown on hover.
    """
    reasons = missing or {}
    outliers = flag_outliers(table)
    flagged = set(zip(outliers["bids_name"], outliers["iqm"], strict=True))
    panels: dict[str, list[MeasurePanel]] = {}
    for name in iqm_columns(table):
        panel = _panel(table, name, modality, flagged, outliers, reasons)
        panels.setdefault(panel.info.group, []).append(panel)
    rows = [_outlier_row(row) for row in outliers.to_dict("records")]
    template = _ENVIRONMENT.get_template("group.html.j2")
    return template.render(
        modality=modality,
        n_images=len(table),
        n_participants=table["participant_id"].nunique() if len(table) else 0,
        groups=[(title, panels[title]) for title in GROUPS if title in panels],
        outliers=rows,
        z_threshold=Z_THRESHOLD,
        tukey_k=TUKEY_K,
        min_images=MIN_IMAGES_TO_FLAG,
        relative_resolution=f"{RELATIVE_RESOLUTION:.0%}",
        failures=sorted(failures.items()),
        version=__version__,
    )

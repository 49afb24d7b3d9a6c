"""The project report's figures (base64 PNG): per-site IQMs, and features per site before and after ComBat."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402

from neurolearn_cli.mvpa.figures import encode_png  # noqa: E402

#: The T1w IQMs shown per site, where present: noise, contrast, artefact and smoothness measures.
KEY_IQMS = ("cjv", "cnr", "snr_total", "efc", "fber", "fwhm_avg", "inu_med", "qi_1")


def _per_site(axis: Axes, values: pd.Series, sites: pd.Series, order: list[str], title: str) -> None:
    """Box plot of ``values`` per site with the participants as jittered points."""
    groups = [values[sites == site].dropna().to_numpy(float) for site in order]
    axis.boxplot(groups, showfliers=False, widths=0.5)
    jitter = np.random.default_rng(0)
    for position, group in enumerate(groups, start=1):
        axis.scatter(position + jitter.uniform(-0.15, 0.15, group.size), group, s=9, alpha=0.6,
                     color=f"C{(position - 1) % 10}", zorder=3)
    axis.set_xticks(range(1, len(order) + 1), order, rotation=30, ha="right", parse_math=False)
    axis.set_title(title, fontsize=9, parse_math=False)


def iqm_figure(qc: pd.DataFrame, order: list[str]) -> str | None:
    """Per-site distributions of the key T1w IQMs of the participants whose run was done (None: no IQM)."""
    done = qc[qc["status"] == "done"]
    shown = [m for m in KEY_IQMS if m in done.columns and done[m].notna().any()]
    if not shown:
        return None
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.4 * rows), squeeze=False)
    for axis, measure in zip(axes.flat, shown, strict=False):
        _per_site(axis, done[measure], done["site"], order, measure)
    for axis in axes.flat[len(shown):]:
        axis.set_axis_off()
    figure.tight_layout()
    return encode_png(figure)


def most_site_dependent(features: pd.DataFrame, sites: pd.Series, count: int = 3) -> list[str]:
    """The ``count`` features whose between-site variance, relative to the within-site one, is largest."""
    def ratio(column: pd.Series) -> float:
        within = column.groupby(sites).var().mean()
        between = column.groupby(sites).mean().var()
        return float(between / within) if within > 0 else 0.0

    scores = {str(c): ratio(features[c]) for c in features.columns}
    return sorted(scores, key=lambda c: (-scores[c], c))[:count]


def harmonization_figure(raw: pd.DataFrame, harmonized: pd.DataFrame, sites: pd.Series, order: list[str],
                         name: str) -> str:
    """The most site-dependent features per site, raw (left) and after ComBat (right), on one scale per row."""
    shown = most_site_dependent(raw.loc[harmonized.index], sites.loc[harmonized.index])
    figure, axes = plt.subplots(len(shown), 2, figsize=(7.5, 2.3 * len(shown)), squeeze=False, sharey="row")
    for row, feature in enumerate(shown):
        _per_site(axes[row, 0], raw.loc[harmonized.index, feature], sites.loc[harmonized.index], order,
                  f"{name}: {feature}, raw")
        _per_site(axes[row, 1], harmonized[feature], sites.loc[harmonized.index], order,
                  f"{name}: {feature}, after ComBat")
    figure.tight_layout()
    return encode_png(figure)

"""The project report ``POOL_DIR/report.html``: one self-contained, escaped page for the whole consortium."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from neurolearn_cli.boilerplate.analysis import analysis_section
from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Boilerplate
from neurolearn_cli.boilerplate.facts import Analysis
from neurolearn_cli.boilerplate.project import pooling_section
from neurolearn_cli.mvpa.dataset import SITE_COLUMN
from neurolearn_cli.project import figures
from neurolearn_cli.project.model import Project

if TYPE_CHECKING:
    from neurolearn_cli.project.pool import PooledData


def methods(project: Project, pooled: PooledData, effects: pd.DataFrame, results: dict[str, dict[str, Any]]) -> Boilerplate:
    """The pooling paragraph, then each analysis' methods, with their references."""
    cite = Citations()
    measured = [(str(row["feature_set"]), float(row["site_auc_raw"]), float(row["site_auc_combat"]))
                for row in effects.to_dict("records") if row["site_auc_raw"] is not None
                and not pd.isna(row["site_auc_raw"])]
    sites = pooled.sites
    sections = [pooling_section(project.name, sites["site"].tolist(), sites["neurolearn"].tolist(),
                                int(sites["participants"].sum()), int(sites["excluded"].sum()),
                                bool(sites["pseudonymized"].all()), list(project.feature_sets), measured, cite,
                                [str(rule) for rule in project.qc_exclude], int(sites["excluded_by_rule"].sum()),
                                [f"{name} ({computed})" for name, computed in project.computed.items()])]
    for analysis in project.analyses:
        sections.append(analysis_section(Analysis(project.analysis_spec(analysis), results[analysis.name]), cite))
    return Boilerplate(tuple(sections), cite.references())


def _figures(pooled: PooledData, views: dict[str, pd.DataFrame]) -> list[tuple[str, str]]:
    order = pooled.sites["site"].tolist()
    shown = []
    iqms = figures.iqm_figure(pooled.qc, order)
    if iqms is not None:
        shown.append(("T1w image-quality metrics per site (participants whose processing was done); a site whose "
                      "scanner or protocol differs stands out", iqms))
    sites = pooled.participants[SITE_COLUMN]
    for name, harmonized in views.items():
        if harmonized.shape[1] and len(harmonized):
            shown.append((f"{name}: the three features that differ most between sites, raw (left) and after ComBat "
                          "fitted on all pooled participants, for display (right)",
                          figures.harmonization_figure(pooled.features[name], harmonized, sites, order, name)))
    return shown


def render_project_report(project: Project, project_bytes: bytes, pooled: PooledData, views: dict[str, pd.DataFrame],
                          effects: pd.DataFrame, results: dict[str, dict[str, Any]]) -> str:
    """The report as one HTML string; every value from the project or the bundles is escaped by jinja2."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("neurolearn_cli.project", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    analyses = [{"name": a.name, "features": a.features, "target": a.target.column, "model": a.model.name,
                 "metric": results[a.name]["metric"], "mean": results[a.name]["mean"],
                 "ci95": results[a.name]["ci95"], "p": results[a.name]["permutation_p"],
                 "n": results[a.name]["n_samples"], "link": f"mvpa/{a.name}/report.html"} for a in project.analyses]
    return environment.get_template("project.html.j2").render(
        project=project, project_yaml=project_bytes.decode("utf-8", errors="replace"),
        sites=pooled.sites.to_dict("records"), effects=effects.to_dict("records"),
        rules=[str(rule) for rule in project.qc_exclude], figures=_figures(pooled, views), analyses=analyses,
        methods=methods(project, pooled, effects, results))

"""The methods paragraph of one mvpa analysis, from its validated spec and its results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.facts import Analysis
from neurolearn_cli.boilerplate.wording import listing, plural
from neurolearn_cli.mvpa.models import REGISTRY
from neurolearn_cli.mvpa.spec import AnalysisSpec

MODELS = {
    "svm": "a linear support-vector machine",
    "logistic": "logistic regression",
    "ridge": "ridge regression",
    "lasso": "the lasso",
    "elasticnet": "the elastic net",
    "svr": "support-vector regression with an RBF kernel",
    "rf": "a random forest of 200 trees",
    "knn": "k-nearest neighbours",
    "lda": "shrinkage linear discriminant analysis",
    "mlp": "a one-hidden-layer perceptron (PyTorch)",
    "torch-linear": "a linear model fitted in PyTorch",
}
FEATURES = {
    "morph": "grey-matter volumes per parcel (smri morphometry)",
    "connectivity": "functional connectivity edges (fmri parcel correlations)",
    "iqm": "image-quality metrics (qc)",
    "table": "columns of a feature table",
}
#: What each morphometry ``stat`` holds, for a ``morph`` feature set that names them.
MORPH_STATS = {"gmvolume": "grey-matter volumes", "thickness": "mean cortical thickness"}
METRICS = {
    "roc_auc": "the area under the ROC curve",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "pearson_r": "Pearson's correlation of predicted and true values",
    "r2": "the coefficient of determination (R²)",
    "neg_mae": "the negative mean absolute error",
}


def _features(spec: AnalysisSpec, results: Mapping[str, Any]) -> str:
    features = spec.features
    what = FEATURES[features.kind]
    if features.kind == "morph" and features.stat != ("gmvolume",):
        what = listing([MORPH_STATS[stat] for stat in features.stat]) + " per parcel (smri and surfaces morphometry)"
    if features.kind == "iqm":
        what = f"{features.modality} {what}"
    if features.atlas:
        what += f" of the {features.atlas} atlas"
    if features.normalize == "tiv":
        what += ", each divided by the participant's total intracranial volume (proportional scaling)"
    sites = [str(site) for site in results.get("sites") or []]
    where = (f" from {plural(len(sites), 'site')} ({listing(sites)})" if sites else "")
    return (f"{results['n_features']} features, {what}, of {results['n_samples']} participants{where}, with "
            f"missing values handled by the '{features.missing}' rule")


def _steps(spec: AnalysisSpec, results: Mapping[str, Any], cite: Citations) -> list[str]:
    prep = spec.preprocessing
    steps = []
    if spec.features.missing == "mean":
        steps.append("mean imputation")
    if prep.nonzero_fraction is not None:
        steps.append(f"keeping features non-zero in more than {prep.nonzero_fraction:g} of the training rows")
    confounds = list(results.get("confounds") or prep.confounds)
    if prep.harmonize == "combat":
        kept = f", preserving {listing(confounds)}" if confounds else ""
        steps.append(f"empirical-Bayes ComBat harmonization of site effects {cite('combat', 'fortin')}{kept}")
    if confounds:
        steps.append(f"linear regression of the confounds {listing(confounds)}")
    if prep.scale:
        steps.append("standardization")
    if prep.selection is not None:
        steps.append(f"selection of the top {prep.selection.percentile:g} % of features by a univariate test"
                     if prep.selection.method == "anova" else
                     f"principal component analysis (n_components {prep.selection.n_components:g})")
    return steps


def _validation(spec: AnalysisSpec, results: Mapping[str, Any], cite: Citations) -> str:
    v = spec.validation
    stratified = results.get("task") == "classification"
    if v.outer == "loo":
        outer = "leave-one-participant-out outer folds (one pooled score)"
    elif v.outer == "logo":
        outer = f"leave-one-{v.group_by}-out outer folds"
    else:
        kind = "stratified " if stratified else ""
        grouped = f", never splitting a {v.group_by}" if v.group_by else ""
        outer = f"{v.outer} {kind}outer folds{grouped}"
    grid = spec.model.grid or REGISTRY[spec.model.name].grid.get(str(results.get("task")), {})
    searched = {k: values for k, values in grid.items() if k not in spec.model.params}
    search = (f"a random search of {v.n_iter} settings" if v.search == "random" else "a grid search")
    space = listing([f"{k} in {list(values)}" for k, values in searched.items()])
    metric = METRICS.get(str(results.get("metric")), str(results.get("metric")))
    return (f"Performance was estimated by nested cross-validation {cite('varoquaux')}: {outer}, and within each "
            f"training set, {v.inner} inner folds for {search}" + (f" over {space}" if space else "")
            + f", scored by {metric}.")


def analysis_section(analysis: Analysis, cite: Citations) -> Section:
    """Pattern analysis ``spec.name``: features, pipeline, validation, permutation test and bootstrap."""
    spec, results = analysis.spec, analysis.results
    model = MODELS.get(spec.model.name, spec.model.name)
    fixed = listing([f"{k} = {value}" for k, value in spec.model.params.items()])
    steps = _steps(spec, results, cite)
    text = [
        f"The {results.get('task')} of {spec.target.column} used {_features(spec, results)}. Each fold fitted, on "
        f"its training participants only, " + listing([*steps, f"{model} {cite('sklearn')}"])
        + (f" (fixed: {fixed})" if fixed else "") + ".",
        _validation(spec, results, cite),
    ]
    tests = []
    if spec.validation.permutations:
        tests.append(f"Significance was assessed by a permutation test {cite('ojala')}: the whole nested "
                     f"cross-validation was repeated on {spec.validation.permutations} random permutations of the "
                     "target (p = (1 + the number of permuted scores at least as good) / (1 + permutations)).")
    else:
        tests.append("No permutation test was run (permutations: 0).")
    if spec.validation.bootstrap and results.get("ci95"):
        tests.append(f"A 95 % confidence interval came from {spec.validation.bootstrap} bootstrap resamples of "
                     "the pooled out-of-fold predictions.")
    tests.append(f"Random seed: {spec.seed}.")
    text.append(" ".join(tests))
    return Section(f"Pattern analysis {spec.name} (mvpa)", tuple(text))

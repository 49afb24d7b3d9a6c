"""The analysis spec: a frozen, strictly validated description of one MVPA run.

A spec is read from YAML (or built from command-line options), validated once
by pydantic (unknown keys are refused) and saved beside the results, so the
same spec reproduces the same analysis. Example::

    name: dx_svm
    features: {kind: morph, atlas: schaefer100, sources: [siteA/derivatives, siteB/derivatives]}
    target: {column: diagnosis}
    model: {name: svm}
    preprocessing: {harmonize: combat, confounds: [age, sex], selection: {method: anova, percentile: 20}}
    validation: {outer: 5, inner: 5, group_by: site, permutations: 100}
    seed: 0

This is the between-participant spec (``mode: between``); decoding within
each participant (``mode: within``) has its own, in
:mod:`neurolearn_cli.mvpa.decoding.spec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neurolearn_cli.errors import InputError, SpecError
from neurolearn_cli.messages import plain_message

SpecT = TypeVar("SpecT", bound=BaseModel)

FeatureKind = Literal["morph", "connectivity", "iqm", "table"]
#: Morphometry a ``morph`` feature set reads: smri's per-parcel GM volume, the surfaces stage's mean thickness.
MorphStat = Literal["gmvolume", "thickness"]
ModelName = Literal[
    "svm", "logistic", "ridge", "lasso", "elasticnet", "svr", "rf", "knn", "lda", "mlp", "torch-linear"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Frozen):
    """Where the features come from.

    ``kind`` is ``morph``, ``connectivity`` or ``iqm`` (read from derivative
    directories, one per site) or ``table`` (TSV/CSV files with a
    ``participant_id`` column, one per site). ``missing`` says what a missing
    value means: ``error`` (refuse), ``zero`` (a missing value is 0) or
    ``mean`` (imputed with the training-fold mean, inside the folds).
    ``normalize: tiv`` divides morphometry volumes by the participant's
    intracranial volume (proportional scaling, so head size does not swamp
    regional differences); the ``TIV`` column itself is then left out.
    ``stat`` names the morphometry tables a ``morph`` set reads, one or a
    list: ``gmvolume`` (smri's GM volumes, the default) and ``thickness`` (the
    surfaces stage's mean thickness per parcel, as ``thickness_<parcel>`` columns).
    """

    kind: FeatureKind
    sources: list[Path] = Field(default_factory=list)
    sites: list[str] | None = None
    atlas: str | None = None
    atlas_image: Path | None = None
    atlas_labels: Path | None = None
    task: str | None = None
    modality: Literal["T1w", "bold"] = "T1w"
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    missing: Literal["error", "zero", "mean"] = "error"
    normalize: Literal["none", "tiv"] = "none"
    stat: tuple[MorphStat, ...] = ("gmvolume",)

    @field_validator("stat", mode="before")
    @classmethod
    def _one_or_more_stats(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _sites_match_sources(self) -> FeatureSpec:
        if self.sites is not None and len(self.sites) != len(self.sources):
            raise ValueError("needs one site name per source")
        if self.kind == "table" and not self.sources:
            raise ValueError("a table needs at least one source file")
        if self.normalize == "tiv" and self.kind != "morph":
            raise ValueError(f"normalize: tiv applies to morph features, not to {self.kind}")
        if self.stat != ("gmvolume",) and self.kind != "morph":
            raise ValueError(f"stat applies to morph features, not to {self.kind}")
        if not self.stat or len(set(self.stat)) != len(self.stat):
            raise ValueError("stat: name gmvolume, thickness or both, each once")
        if self.normalize == "tiv" and "gmvolume" not in self.stat:
            raise ValueError("normalize: tiv divides GM volumes: add gmvolume to stat")
        return self


class TargetSpec(_Frozen):
    """The participants.tsv column to predict, and the task (``auto`` detects it)."""

    column: str
    task: Literal["auto", "classification", "regression"] = "auto"


class ModelSpec(_Frozen):
    """The estimator, fixed parameters, and an optional grid replacing its default grid."""

    name: ModelName = "svm"
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = None


class SelectionSpec(_Frozen):
    """Feature selection inside the folds: univariate ANOVA percentile, or PCA."""

    method: Literal["anova", "pca"]
    percentile: Annotated[float, Field(gt=0, le=100)] = 10.0
    n_components: Annotated[float, Field(gt=0)] = 0.95


class PreprocessingSpec(_Frozen):
    """Per-fold preprocessing, in the order applied.

    ``nonzero_fraction`` keeps the features non-zero in more than that
    fraction of the training rows; ``harmonize: combat`` removes site effects
    (empirical-Bayes ComBat) preserving the ``confounds``, which are then
    regressed out; ``scale`` standardizes.
    """

    nonzero_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None
    harmonize: Literal["none", "combat"] = "none"
    confounds: list[str] = Field(default_factory=list)
    scale: bool = True
    selection: SelectionSpec | None = None


class ValidationSpec(_Frozen):
    """Nested cross-validation, permutation test and bootstrap settings.

    ``outer``: a fold count, ``logo`` (leave one group out) or ``loo``
    (leave one participant out). ``group_by``: a participants.tsv column (or
    ``site``) whose groups the folds never split.
    """

    outer: int | Literal["logo", "loo"] = 5
    inner: Annotated[int, Field(ge=2)] = 5
    group_by: str | None = None
    search: Literal["grid", "random"] = "grid"
    n_iter: Annotated[int, Field(ge=1)] = 20
    metric: Literal["auto", "pearson_r", "r2", "neg_mae", "roc_auc", "balanced_accuracy", "accuracy"] = "auto"
    permutations: Annotated[int, Field(ge=0)] = 100
    bootstrap: Annotated[int, Field(ge=0)] = 1000

    @field_validator("outer")
    @classmethod
    def _at_least_two_folds(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError("needs at least 2 folds")
        return value

    @model_validator(mode="after")
    def _logo_needs_groups(self) -> ValidationSpec:
        if self.outer == "logo" and not self.group_by:
            raise ValueError("outer: logo needs group_by")
        return self


class AnalysisSpec(_Frozen):
    """One MVPA analysis: features, target, model, preprocessing, validation, seed."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    mode: Literal["between"] = "between"
    features: FeatureSpec
    target: TargetSpec
    model: ModelSpec = ModelSpec()
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    validation: ValidationSpec = ValidationSpec()
    seed: int = 0


def validate_spec(model: type[SpecT], payload: Any, source: str | Path = "spec") -> SpecT:
    """Validate a mapping as a spec ``model``.

    Raises
    ------
    InputError
        When the payload is not a mapping.
    SpecError
        Naming the source and the first bad or unknown field, in one line.
    """
    if not isinstance(payload, dict):
        raise InputError(source, "the spec must be a mapping of fields")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "spec"
        problem = "unknown field" if first["type"] == "extra_forbidden" else plain_message(first["msg"])
        raise SpecError(source, field, problem) from None


def spec_from_dict(payload: Any, source: str | Path = "spec") -> AnalysisSpec:
    """Validate a mapping as an :class:`AnalysisSpec` (see :func:`validate_spec`)."""
    return validate_spec(AnalysisSpec, payload, source)


def read_yaml_spec(path: Path) -> Any:
    """The parsed YAML of a spec file; an unreadable file or bad YAML is an :class:`InputError` naming it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read the spec ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({str(exc).splitlines()[0]})") from None


def resolve_paths(spec: AnalysisSpec, base: Path) -> AnalysisSpec:
    """Make the spec's relative paths absolute, taken from ``base``."""
    features = spec.features
    absolute = {
        "sources": [base / p for p in features.sources],
        "atlas_image": None if features.atlas_image is None else base / features.atlas_image,
        "atlas_labels": None if features.atlas_labels is None else base / features.atlas_labels,
    }
    return spec.model_copy(update={"features": features.model_copy(update=absolute)})


def spec_to_yaml(spec: AnalysisSpec) -> str:
    """The spec as YAML text (paths as strings, keys in declaration order)."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)

"""The project file: one study's pinned local workflow, shared features and pooled analyses.

``project.yaml`` is validated once by pydantic (unknown keys are refused, as
in the analysis spec) and identified by the SHA-256 of its bytes: every site
bundle carries that digest, so a pool cannot mix bundles of two versions of
a project. Example::

    name: adni_like
    title: Grey-matter atrophy across three scanners
    neurolearn: ">=0.1,<0.2"
    workflow:
      stages: [smri, qc]
      options: {seed: 0, output_spaces: ["MNI152NLin2009aSym:res-2", T1w], ...}
      atlas: null          # the bundled atlas; or {sha256: ..., labels_sha256: ..., space: ...}
    feature_sets:
      morph: {kind: morph, normalize: tiv}
      iqm: {kind: iqm}
    computed:              # tables the pool computes from the feature sets (nothing more leaves a site)
      morph_and_iqm: {operation: concat, of: [morph, iqm]}
    share_columns: [age, sex, group]
    qc_exclude:            # participants left out of the pool by an IQM of their T1w
      - {iqm: cjv, above: 0.6}
    analyses:
      - {name: dx, features: morph, target: {column: group}, validation: {outer: logo, group_by: site}}
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neurolearn_cli import __version__
from neurolearn_cli.config import PARTICIPANT_STAGES, RunConfig
from neurolearn_cli.errors import UsageError
from neurolearn_cli.mvpa.spec import (
    AnalysisSpec,
    FeatureSpec,
    ModelSpec,
    PreprocessingSpec,
    TargetSpec,
    ValidationSpec,
    read_yaml_spec,
    validate_spec,
)
from neurolearn_cli.run import MVPA_SETTINGS, NON_OUTPUT_SETTINGS
from neurolearn_cli.stages import PARTICIPANT_STAGES as REGISTERED_STAGES

#: Run options a site chooses for itself: where things are, the device, and the atlas file (pinned by hash instead).
SITE_CHOICES = frozenset({"device", "atlas", "atlas_labels", "bids_filter_file", "bids_filters", "analysis_level"})
#: The run options a project pins: every option that changes a feature.
WORKFLOW_OPTIONS = tuple(name for name in RunConfig.model_fields
                         if name not in NON_OUTPUT_SETTINGS | MVPA_SETTINGS | SITE_CHOICES)
#: The folder of a pool (and of a bundle) holding one table per feature set.
FEATURES_FOLDER = "features"
_NAME = r"^[A-Za-z0-9_.-]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AtlasPin(_Frozen):
    """An atlas every site must use, by the SHA-256 of its image (and label table) file."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    labels_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    space: str | None = Field(None, pattern=r"^[A-Za-z0-9]+$")


class Workflow(_Frozen):
    """The local workflow: the participant stages and every option value that changes a feature."""

    stages: tuple[str, ...] = PARTICIPANT_STAGES
    options: dict[str, Any] = Field(default_factory=dict)
    atlas: AtlasPin | None = None

    @field_validator("stages")
    @classmethod
    def _participant_stages(cls, stages: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(stages) - set(REGISTERED_STAGES))
        if unknown or not stages:
            raise ValueError(f"choose participant stages from {', '.join(REGISTERED_STAGES)}")
        return stages

    @field_validator("options")
    @classmethod
    def _pinned_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(WORKFLOW_OPTIONS))
        if unknown:
            raise ValueError(f"{unknown[0]} is not a workflow option; choose from {', '.join(WORKFLOW_OPTIONS)}")
        return options


class QCRule(_Frozen):
    """Leave a participant out of the pooled analyses when an IQM of its T1w is above or below a bound.

    A participant whose IQM is missing is kept: nothing says it is bad.
    """

    iqm: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> QCRule:
        if self.above is None and self.below is None:
            raise ValueError(f"rule on '{self.iqm}' needs 'above' or 'below'")
        return self

    def __str__(self) -> str:
        """The rule in words, e.g. ``cjv above 0.6``."""
        bounds = [f"above {self.above:g}" if self.above is not None else "",
                  f"below {self.below:g}" if self.below is not None else ""]
        return f"{self.iqm} " + " or ".join(bound for bound in bounds if bound)


class ComputedSet(_Frozen):
    """A feature table the pool computes from the project's feature sets.

    ``concat``: the sets of ``of`` side by side, each column prefixed by its
    set's name (``morph_L_gm_01``); ``ratio``: ``of[0]`` divided by ``of[1]``
    column by column, over the columns they share (a zero or missing
    denominator gives a missing value). ``missing`` is the mvpa rule for
    missing values in the result.
    """

    operation: Literal["concat", "ratio"]
    of: list[str] = Field(min_length=2)
    missing: Literal["error", "zero", "mean"] = "error"

    def __str__(self) -> str:
        """The table in words, e.g. ``morph and iqm side by side``."""
        if self.operation == "ratio":
            return f"{self.of[0]} divided by {self.of[1]}, column by column"
        return " and ".join(self.of) + " side by side"

    @model_validator(mode="after")
    def _operands(self) -> ComputedSet:
        if len(set(self.of)) != len(self.of):
            raise ValueError("name each feature set once in 'of'")
        if self.operation == "ratio" and len(self.of) != 2:
            raise ValueError("a ratio takes two feature sets: [numerator, denominator]")
        return self


class ProjectAnalysis(_Frozen):
    """A pooled analysis: an mvpa spec whose ``features`` names one of the project's feature sets or computed tables."""

    name: str = Field(pattern=_NAME)
    features: str
    target: TargetSpec
    model: ModelSpec = ModelSpec()
    preprocessing: PreprocessingSpec = PreprocessingSpec()
    validation: ValidationSpec = ValidationSpec()
    seed: int = 0


class Project(_Frozen):
    """A collaborative project (see the module docstring for the file's layout)."""

    name: str = Field(pattern=_NAME)
    title: str = ""
    description: str = ""
    methods: str = ""
    neurolearn: str
    workflow: Workflow = Workflow()
    feature_sets: dict[str, FeatureSpec]
    computed: dict[str, ComputedSet] = Field(default_factory=dict)
    share_columns: list[str] = Field(default_factory=list)
    qc_exclude: list[QCRule] = Field(default_factory=list)
    analyses: list[ProjectAnalysis] = Field(default_factory=list)

    @field_validator("neurolearn")
    @classmethod
    def _version_range(cls, value: str) -> str:
        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            raise ValueError(f"'{value}' is not a version range such as '>=0.1,<0.2'") from None
        return value

    @field_validator("feature_sets")
    @classmethod
    def _sets_read_the_site(cls, sets: dict[str, FeatureSpec]) -> dict[str, FeatureSpec]:
        if not sets:
            raise ValueError("name at least one feature set")
        for name, spec in sets.items():
            if not (name.replace("_", "").replace("-", "").isalnum()):
                raise ValueError(f"'{name}': a feature set's name is letters, digits, - and _")
            if spec.kind == "table" or spec.sources or spec.sites:
                raise ValueError(f"'{name}': a feature set is morph, connectivity or iqm read from each site's "
                                 "OUTPUT_DIR, with no sources")
        return sets

    @field_validator("share_columns")
    @classmethod
    def _no_identifier_column(cls, columns: list[str]) -> list[str]:
        if "participant_id" in columns or "site" in columns:
            raise ValueError("participant_id and site are always shared (pseudonymized and named by the bundle)")
        return columns

    @model_validator(mode="after")
    def _analyses_fit(self) -> Project:
        names = [a.name for a in self.analyses]
        if len(set(names)) != len(names):
            raise ValueError("two analyses have the same name")
        for name, computed in self.computed.items():
            if name in self.feature_sets or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"computed '{name}': name it with letters, digits, - and _, apart from every "
                                 "feature set")
            unknown = [operand for operand in computed.of if operand not in self.feature_sets]
            if unknown:
                raise ValueError(f"computed '{name}' reads '{unknown[0]}', which is not in feature_sets "
                                 f"({', '.join(self.feature_sets)})")
        tables = [*self.feature_sets, *self.computed]
        for analysis in self.analyses:
            if analysis.features not in tables:
                raise ValueError(f"analysis '{analysis.name}' reads feature set '{analysis.features}', "
                                 f"which is not in feature_sets or computed ({', '.join(tables)})")
        return self

    def accepts(self, version: str) -> bool:
        """Whether neurolearn ``version`` is in the project's range."""
        return Version(version) in SpecifierSet(self.neurolearn)

    def require_version(self, version: str = __version__, where: str = "this neurolearn") -> None:
        """Raise :class:`UsageError` (one line, saying what is needed) for a version outside the range."""
        if not self.accepts(version):
            raise UsageError(f"project '{self.name}' needs neurolearn {self.neurolearn}; {where} is {version}")

    def site_features(self, name: str) -> FeatureSpec:
        """Feature set ``name`` as each site reads it: where the workflow makes surfaces, a ``morph`` set that
        names no ``stat`` reads the parcels' mean thickness beside their GM volume."""
        spec = self.feature_sets[name]
        if spec.kind == "morph" and "stat" not in spec.model_fields_set and "surfaces" in self.workflow.stages:
            return spec.model_copy(update={"stat": (*spec.stat, "thickness")})
        return spec

    def analysis_spec(self, analysis: ProjectAnalysis) -> AnalysisSpec:
        """The mvpa spec of ``analysis`` on the pool: its feature set's table, relative to the pool folder."""
        table = self.feature_sets.get(analysis.features) or self.computed[analysis.features]
        features = FeatureSpec(kind="table", sources=[Path(FEATURES_FOLDER) / f"{analysis.features}.tsv"],
                               missing=table.missing)
        return AnalysisSpec(name=analysis.name, features=features, target=analysis.target, model=analysis.model,
                            preprocessing=analysis.preprocessing, validation=analysis.validation,
                            seed=analysis.seed)


def project_sha256(path: Path) -> str:
    """SHA-256 of the project file's bytes: what a bundle names its project by."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_project(path: Path) -> Project:
    """Read and validate ``project.yaml``.

    Raises
    ------
    InputError
        The file is unreadable or not YAML.
    SpecError
        Naming the file and the first bad or unknown field.
    """
    return validate_spec(Project, read_yaml_spec(Path(path)), path)

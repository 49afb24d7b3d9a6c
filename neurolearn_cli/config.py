"""One frozen run configuration, validated once, saved with the outputs.

The command line and an optional ``--config-file`` (TOML or YAML holding the
same option names, with dashes or underscores) are merged here; the command
line wins. Every option has exactly one default, in :class:`RunConfig`.
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.messages import plain_message
from neurolearn_cli.spaces import (
    DEFAULT_OUTPUT_SPACES,
    OutputSpace,
    check_available,
    parse_output_space,
)
from neurolearn_cli.templateflow import scan_home, templateflow_home

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class AnalysisLevel(str, Enum):
    """BIDS-Apps analysis level."""

    participant = "participant"
    group = "group"


PARTICIPANT_STAGES = ("smri", "fmri", "qc")
GROUP_STAGES = ("qc", "mvpa")
ALL_STAGES = ("smri", "surfaces", "fmri", "qc", "mvpa")
IGNORABLE = ("fieldmaps", "slicetiming", "sbref")

#: An output space: parsed from fMRIPrep's spelling, saved (run record, fingerprints) in it.
OutputSpaceOption = Annotated[
    OutputSpace,
    BeforeValidator(lambda value: value if isinstance(value, OutputSpace) else parse_output_space(str(value))),
    PlainSerializer(str, return_type=str),
]


SELECTION = "Selection"
RESOURCES = "Resources and reproducibility"
BEHAVIOUR = "Run behaviour"
STAGE_OPTIONS = "smri / fmri options"
MVPA_OPTIONS = "mvpa options"


def option(default: Any, help: str, panel: str, *, short: str | None = None, **constraints: Any) -> Any:
    """A :class:`RunConfig` field that is also a command-line option.

    The command line is generated from these fields (:mod:`neurolearn_cli.cli.options`):
    the option's name, type, default, help text and help panel are declared here once.

    Parameters
    ----------
    default
        The option's one default.
    help : str
        Help text (the default is appended to it by the command line).
    panel : str
        The ``--help`` section the option is listed in.
    short : str, optional
        A one-letter alias such as ``-w``.
    **constraints
        pydantic constraints (``ge``, ``gt``, ...).
    """
    extra: dict[str, Any] = {"panel": panel, **({"short": short} if short else {})}
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def strip_sub_prefix(label: str) -> str:
    """Return a participant label without its ``sub-`` prefix."""
    return label[4:] if label.startswith("sub-") else label


def strip_ses_prefix(label: str) -> str:
    """Return a session label without its ``ses-`` prefix."""
    return label[4:] if label.startswith("ses-") else label


class RunConfig(BaseModel):
    """Every option of a neurolearn run (frozen; unknown keys are an error).

    Field names are the long option names with underscores. Stage-specific
    options live here too, so that the bare BIDS-App form accepts them all.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # positionals
    bids_dir: Path
    output_dir: Path
    analysis_level: AnalysisLevel = AnalysisLevel.participant
    # selection
    stages: tuple[str, ...] = option((), "Stages to run (bare form only), e.g. smri,fmri,qc.", SELECTION)
    participant_label: tuple[str, ...] = option((), "Participant labels, with or without sub-.", SELECTION)
    session_label: tuple[str, ...] = option((), "Session labels to process.", SELECTION)
    task: tuple[str, ...] = option((), "Tasks to process.", SELECTION)
    bids_filter_file: Path | None = option(None, "JSON file of BIDS entity filters (fMRIPrep format).", SELECTION)
    bids_filters: dict[str, dict[str, Any]] = Field(default_factory=dict)  # read from bids_filter_file
    skip_bids_validation: bool = option(False, "Skip dataset validation.", SELECTION)
    bids_database_dir: Path | None = option(None, "Cache directory for the pybids index.", SELECTION)
    # resources
    work_dir: Path | None = option(None, "Scratch directory.", RESOURCES, short="-w")
    nprocs: int = option(1, "Processes: participants at once, or mvpa's folds and permutations at once.",
                         RESOURCES, ge=1)
    omp_nthreads: int | None = option(None, "Torch threads per participant.", RESOURCES, ge=1)
    mem_gb: float | None = option(None, "Memory budget in GB.", RESOURCES, gt=0)
    device: str = option("auto", "auto, cpu, cuda or cuda:N.", RESOURCES)
    seed: int = option(0, "Random seed.", RESOURCES, ge=0)
    # behaviour
    templateflow_dir: Path | None = option(
        None, "Local TemplateFlow home holding the templates named in --output-spaces (default: "
        "$TEMPLATEFLOW_HOME, else ~/.cache/templateflow); nothing is downloaded.", BEHAVIOUR)
    output_spaces: tuple[OutputSpaceOption, ...] = option(
        tuple(parse_output_space(s) for s in DEFAULT_OUTPUT_SPACES),
        "Output spaces in fMRIPrep's syntax: a template (bundled or TemplateFlow), res-N or res-native, T1w, or a "
        "surface space (fsnative, fsaverage5, fsaverage, fsLR:den-32k; needs the surfaces stage).",
        BEHAVIOUR,
    )
    resume: bool = option(True, "Keep outputs made from the same inputs and settings.", BEHAVIOUR)
    stop_on_first_crash: bool = option(False, "Stop at the first failing participant.", BEHAVIOUR)
    dry_run: bool = option(False, "Print the plan and exit.", BEHAVIOUR)
    verbosity: int = 0  # the command line's -v and -q counts
    debug: bool = option(False, "Show tracebacks.", BEHAVIOUR)
    # smri / fmri
    atlas: Path | None = option(None, "Parcellation in template space (default: the bundled one).", STAGE_OPTIONS)
    atlas_labels: Path | None = option(None, "Label table (TSV: index, name) for --atlas.", STAGE_OPTIONS)
    atlas_space: str | None = option(None, "Template --atlas is defined on (default: its file name's tpl- or space- "
                                     "entity, else MNI152NLin2009aSym).", STAGE_OPTIONS, pattern=r"^[A-Za-z0-9]+$")
    dummy_scans: int | None = option(None, "Non-steady-state volumes (default: detected).", STAGE_OPTIONS, ge=0)
    ignore: tuple[str, ...] = option((), f"Steps to skip: {', '.join(IGNORABLE)}.", STAGE_OPTIONS)
    slice_time_ref: float = option(0.5, "Slice-timing reference, fraction of TR.", STAGE_OPTIONS, ge=0.0, le=1.0)
    fd_spike_threshold: float = option(0.5, "FD threshold for motion outliers, mm.", STAGE_OPTIONS, gt=0)
    dvars_spike_threshold: float = option(1.5, "std DVARS threshold for motion outliers.", STAGE_OPTIONS, gt=0)
    # mvpa (group level)
    spec: Path | None = option(None, "Analysis spec (YAML); the options below override its fields.", MVPA_OPTIONS)
    features: str | None = option(None, "morph, connectivity, iqm, or a TSV/CSV path with participant_id.",
                                  MVPA_OPTIONS)
    target: str | None = option(None, "participants.tsv column to predict.", MVPA_OPTIONS)
    model: str | None = option(None, "svm, logistic, ridge, lasso, elasticnet, svr, rf, knn, lda, mlp or "
                               "torch-linear.", MVPA_OPTIONS)
    cv: str | None = option(None, "Outer folds K (the spec's default: 5), logo (leave one group out) or loo.",
                            MVPA_OPTIONS)
    inner_cv: int | None = option(None, "Inner folds K that choose the hyperparameters (the spec's default: 5).",
                                  MVPA_OPTIONS, ge=2)
    group_by: str | None = option(None, "Column (or 'site') whose groups the folds never split.", MVPA_OPTIONS)
    permutations: int | None = option(None, "Permutations of the outer score (the spec's default: 100).",
                                      MVPA_OPTIONS, ge=0)
    name: str | None = option(None, "Analysis folder name (default <target>_<model>).", MVPA_OPTIONS)
    derivatives: tuple[Path, ...] = option((), "Derivative folders to read morph, connectivity or iqm features "
                                           "from, one per site (default OUTPUT_DIR).", MVPA_OPTIONS)

    @field_validator("participant_label", mode="after")
    @classmethod
    def _strip_sub(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(strip_sub_prefix(label) for label in labels))

    @field_validator("session_label", mode="after")
    @classmethod
    def _strip_ses(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(strip_ses_prefix(label) for label in labels))

    @field_validator("task", mode="after")
    @classmethod
    def _strip_task(cls, tasks: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(t[5:] if t.startswith("task-") else t for t in tasks)

    @field_validator("templateflow_dir", mode="after")
    @classmethod
    def _existing_home(cls, path: Path | None) -> Path | None:
        if path is not None and not path.expanduser().is_dir():
            raise ValueError(f"{path} is not a directory")
        return path

    @field_validator("output_spaces", mode="after")
    @classmethod
    def _available_spaces(cls, spaces: tuple[OutputSpace, ...], info: ValidationInfo) -> tuple[OutputSpace, ...]:
        """Distinct spaces, each offered by the bundled template or the TemplateFlow home (checked before any work)."""
        home = templateflow_home(info.data.get("templateflow_dir"))
        templates = scan_home(home)
        for space in spaces:
            check_available(space, templates, home)
        return tuple(dict.fromkeys(spaces))

    @field_validator("ignore", mode="after")
    @classmethod
    def _known_ignores(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(values) - set(IGNORABLE))
        if unknown:
            raise ValueError(f"unknown value(s) {', '.join(unknown)}; choose from {', '.join(IGNORABLE)}")
        return values

    @field_validator("stages", mode="after")
    @classmethod
    def _known_stages(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(values) - set(ALL_STAGES))
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(ALL_STAGES)}")
        return values

    @field_validator("device")
    @classmethod
    def _device_syntax(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
            return value
        raise ValueError("expected auto, cpu, cuda or cuda:N")

    @model_validator(mode="after")
    def _distinct_directories(self) -> RunConfig:
        bids, out = self.bids_dir.resolve(), self.output_dir.resolve()
        if bids == out:
            raise ValueError(f"OUTPUT_DIR {self.output_dir} is the BIDS directory; choose another")
        if bids in out.parents and out.relative_to(bids).parts[0] != "derivatives":
            raise ValueError(f"OUTPUT_DIR {self.output_dir} is inside the BIDS directory but not under derivatives/")
        return self

    @property
    def selected_stages(self) -> tuple[str, ...]:
        """Stages this run executes: ``--stages`` or the level's default."""
        if self.stages:
            return self.stages
        if self.analysis_level is AnalysisLevel.participant:
            return PARTICIPANT_STAGES
        wants_mvpa = self.spec is not None or self.target is not None
        return GROUP_STAGES if wants_mvpa else ("qc",)

    @property
    def logs_dir(self) -> Path:
        """Where logs, the saved config and provenance go."""
        return self.output_dir / "logs"


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a flat dict with underscore keys.

    Raises
    ------
    InputError
        When the file is missing, unparsable, or not a mapping.
    """
    if not path.is_file():
        raise InputError(path, "config file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise InputError(path, "config file must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise InputError(path, f"cannot parse config file ({exc})") from None
    except Exception as exc:  # yaml.YAMLError and friends
        if isinstance(exc, InputError):
            raise
        raise InputError(path, f"cannot parse config file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(path, "config file must hold a mapping of option names to values")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def read_bids_filters(path: Path) -> dict[str, dict[str, Any]]:
    """Read fMRIPrep's ``--bids-filter-file`` JSON (query name -> entity filters)."""
    if not path.is_file():
        raise InputError(path, "BIDS filter file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"BIDS filter file is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(path, 'BIDS filter file must map query names (e.g. "t1w", "bold") to entity filters')
    return data


def build_config(cli_values: dict[str, Any], explicit: set[str], config_file: Path | None) -> RunConfig:
    """Merge the config file and the command line into a validated :class:`RunConfig`.

    Parameters
    ----------
    cli_values : dict
        Every option's value as parsed from the command line (defaults included);
        None and empty lists mean "not given" and leave the default.
    explicit : set of str
        Names of options the user typed; these override the config file.
    config_file : Path or None
        Optional TOML/YAML file.

    Raises
    ------
    UsageError
        One line naming the first bad option.
    """
    values = {k: v for k, v in cli_values.items() if v is not None and not (isinstance(v, (list, tuple)) and not v)}
    if config_file is not None:
        from_file = read_config_file(config_file)
        for key, value in from_file.items():
            if key not in explicit:
                values[key] = value
    if values.get("bids_filter_file"):
        values["bids_filters"] = read_bids_filters(Path(values["bids_filter_file"]))
    try:
        return RunConfig(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        names = [str(p) for p in error["loc"] if isinstance(p, str)]
        message = plain_message(error["msg"])
        if not names:
            raise UsageError(message) from None
        option = "--" + "-".join(names).replace("_", "-")
        if error["type"] == "extra_forbidden":
            where = f" in {config_file}" if config_file else ""
            raise UsageError(f"unknown option {option}{where}") from None
        raise UsageError(f"{option}: {message}") from None

"""Query a BIDS dataset with pybids and turn it into a :class:`DatasetPlan`.

Selection follows fMRIPrep: ``--participant-label`` (with or without ``sub-``),
``--session-label``, ``--task`` and ``--bids-filter-file`` (query name ->
entity filters, e.g. ``{"t1w": {"acquisition": "tfl"}, "bold": {"run": 1}}``).
Unknown participant labels stop the run, listing the available ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nibabel as nib

from neurolearn_cli.dataset.intendedfor import resolve_intended_for
from neurolearn_cli.dataset.plan import (
    BoldRun,
    DatasetPlan,
    FieldmapInput,
    ImageInput,
    ParticipantPlan,
)
from neurolearn_cli.dataset.validation import (
    broken_sidecars,
    check_dataset_description,
    invalid_file_names,
    nifti_problem,
    slice_timing_problem,
)
from neurolearn_cli.errors import InputError, UsageError
from neurolearn_cli.logs import get_logger

NIFTI_EXTENSIONS = [".nii", ".nii.gz"]
ENTITY_KEYS = ("subject", "session", "task", "acquisition", "ceagent", "reconstruction", "direction", "run", "echo", "part")


def index_dataset(bids_dir: Path, database_dir: Path | None = None, ignore: Collection[Path] = ()) -> Any:
    """Index ``bids_dir`` with pybids (optionally cached in ``database_dir``), leaving out the files in ``ignore``."""
    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.layout.validation import DEFAULT_LOCATIONS_TO_IGNORE

    indexer = BIDSLayoutIndexer(validate=False, ignore=[*DEFAULT_LOCATIONS_TO_IGNORE, *map(str, ignore)])
    kwargs: dict[str, Any] = {"validate": False, "derivatives": False, "indexer": indexer}
    if database_dir is not None:
        database_dir.mkdir(parents=True, exist_ok=True)
        kwargs["database_path"] = str(database_dir)
    try:
        return BIDSLayout(str(bids_dir), **kwargs)
    except Exception as exc:  # pybids raises several types for broken trees
        raise InputError(bids_dir, f"cannot index BIDS dataset ({exc.__class__.__name__}: {exc})") from None


def resolve_participants(available: list[str], requested: tuple[str, ...], bids_dir: Path) -> list[str]:
    """Return the requested labels (all when none requested); unknown labels are an error."""
    if not available:
        raise InputError(bids_dir, "no participants (sub-* folders with images) found")
    if not requested:
        return sorted(available)
    unknown = [label for label in requested if label not in available]
    if unknown:
        raise UsageError(
            f"--participant-label: unknown participant(s) {', '.join(unknown)} in {bids_dir}; "
            f"available: {', '.join(sorted(available))}"
        )
    return list(requested)


def _image_input(layout: Any, bids_file: Any) -> ImageInput:
    path = Path(bids_file.path)
    entities = {k: v for k, v in bids_file.get_entities().items() if k in ENTITY_KEYS + ("suffix", "datatype")}
    try:
        image = nib.load(str(path))
        if not isinstance(image, nib.spatialimages.SpatialImage):
            raise ValueError(f"not a volume image ({type(image).__name__})")
        shape = tuple(int(n) for n in image.header.get_data_shape())
        zooms = tuple(float(z) for z in image.header.get_zooms())
    except Exception:  # reported by the validation step, with the reason
        shape, zooms = (), ()
    return ImageInput(path=path, entities=entities, metadata=dict(layout.get_metadata(str(path))), shape=shape, zooms=zooms)


def _query(layout: Any, label: str, config_filters: dict[str, Any], name: str, base: dict[str, Any]) -> list[Any]:
    query = {**base, **config_filters.get(name, {})}
    query.update(subject=label, extension=NIFTI_EXTENSIONS, return_type="object")
    return sorted(layout.get(**query), key=lambda f: f.path)


def _intended_for_paths(image: ImageInput, bids_dir: Path) -> set[Path]:
    """The absolute paths a fieldmap's ``IntendedFor`` names (see :func:`resolve_intended_for`)."""
    name = image.path.name
    sidecar = image.path.with_name((name[: -len(".nii.gz")] if name.endswith(".nii.gz") else image.path.stem) + ".json")
    root = bids_dir.absolute()  # as pybids indexes it
    relpath = image.path.relative_to(root).as_posix()
    targets = resolve_intended_for(image.metadata.get("IntendedFor") or [], relpath, sidecar)
    for target in targets:
        if not (root / target).exists():
            get_logger().warning("%s: IntendedFor names %s, which is not in the dataset: this fieldmap "
                                 "corrects no run there", sidecar, target)
    return {(root / target).resolve() for target in targets}


def _identifiers(value: Any) -> set[str]:
    """A ``B0FieldIdentifier`` or ``B0FieldSource`` value (a string or a list of them) as a set."""
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return {str(v) for v in values if str(v)}


@dataclass(frozen=True)
class _PlannedFieldmap:
    """A fieldmap with the BOLD runs its ``IntendedFor`` names and its ``B0FieldIdentifier`` values."""

    fieldmap: FieldmapInput
    targets: set[Path]
    identifiers: set[str]


def _fieldmaps_for(bold: ImageInput, fieldmaps: list[_PlannedFieldmap]) -> tuple[FieldmapInput, ...]:
    """The run's fieldmaps: by its ``B0FieldSource`` when that names any (BIDS 1.7), else by ``IntendedFor``."""
    sources = _identifiers(bold.metadata.get("B0FieldSource"))
    by_source = tuple(f.fieldmap for f in fieldmaps if f.identifiers & sources)
    if by_source:
        return by_source
    resolved = bold.path.resolve()
    return tuple(f.fieldmap for f in fieldmaps if resolved in f.targets)


def _fieldmaps(layout: Any, label: str, filters: dict[str, Any], bids_dir: Path) -> list[_PlannedFieldmap]:
    """Collect phase-difference, direct field and reverse-PE fieldmaps with their targets.

    Raises
    ------
    InputError
        For an ``IntendedFor`` that is not a path or leaves the dataset, naming the sidecar.
    """
    found = []
    for suffix, kind in (("phasediff", "phasediff"), ("fieldmap", "fieldmap"), ("epi", "epi")):
        for bids_file in _query(layout, label, filters, "fmap", {"suffix": suffix, "datatype": "fmap"}):
            main = _image_input(layout, bids_file)
            companions = []
            if kind in ("phasediff", "fieldmap"):
                entities = {k: v for k, v in bids_file.get_entities().items() if k in ("session", "acquisition", "run")}
                for magnitude in ("magnitude1", "magnitude2", "magnitude"):
                    companions += [
                        _image_input(layout, f)
                        for f in layout.get(subject=label, suffix=magnitude, datatype="fmap",
                                            extension=NIFTI_EXTENSIONS, return_type="object", **entities)
                    ]
            found.append(_PlannedFieldmap(
                FieldmapInput(kind=kind, images=(main, *companions)),
                _intended_for_paths(main, bids_dir),
                _identifiers(main.metadata.get("B0FieldIdentifier")),
            ))
    return found


def _lesion_for(layout: Any, label: str, base: dict[str, Any], t1w: tuple[ImageInput, ...],
                validate: bool) -> tuple[ImageInput | None, list[str]]:
    """The participant's lesion mask (``anat/*_label-lesion_roi``, BIDS and fMRIPrep) and its problems.

    The mask is in T1w space; with several (one per session), only one T1w
    space exists after the T1w runs are merged, so more than one is a problem.
    """
    candidates = layout.get(subject=label, suffix="roi", datatype="anat", extension=NIFTI_EXTENSIONS,
                            return_type="object", **base)  # pybids' raw config has no ``label`` entity
    found = [_image_input(layout, f) for f in sorted(candidates, key=lambda f: f.path)
             if "_label-lesion_roi." in Path(f.path).name]
    if not found:
        return None, []
    if not t1w:
        return None, [f"{found[0].path}: a lesion mask without a T1w image"]
    if len(found) > 1:
        return None, [f"{found[1].path}: more than one lesion mask (label-lesion_roi); neurolearn merges the "
                      f"T1w runs into one T1w space, so give one mask in it"]
    problem = nifti_problem(found[0].path, ndim=3, full_check=validate)
    return found[0], [problem] if problem else []


def _events_for(bold_path: Path) -> Path | None:
    name = bold_path.name
    for extension in (".nii.gz", ".nii"):
        if name.endswith(extension):
            events = bold_path.with_name(name[: -len(extension)].removesuffix("_bold") + "_events.tsv")
            return events if events.is_file() else None
    return None


def _sbref_for(layout: Any, bold: ImageInput) -> ImageInput | None:
    entities = {k: v for k, v in bold.entities.items() if k in ENTITY_KEYS}
    matches = layout.get(suffix="sbref", extension=NIFTI_EXTENSIONS, return_type="object", **entities)
    return _image_input(layout, matches[0]) if len(matches) == 1 else None


def plan_participant(layout: Any, label: str, *, sessions: tuple[str, ...], tasks: tuple[str, ...],
                     filters: dict[str, Any], bids_dir: Path, validate: bool) -> ParticipantPlan:
    """Plan one participant: its T1w images, BOLD runs (with TR, volumes, events, fieldmaps) and problems."""
    base: dict[str, Any] = {"session": list(sessions)} if sessions else {}
    t1w = tuple(_image_input(layout, f) for f in _query(layout, label, filters, "t1w",
                                                        {**base, "suffix": "T1w", "datatype": "anat"}))
    bold_query = {**base, "suffix": "bold", "datatype": "func"}
    if tasks:
        bold_query["task"] = list(tasks)
    bold_images = [_image_input(layout, f) for f in _query(layout, label, filters, "bold", bold_query)]
    problems: list[str] = []
    try:
        fieldmaps = _fieldmaps(layout, label, filters, bids_dir) if bold_images else []
    except InputError as error:  # a bad fieldmap sidecar skips this participant only
        fieldmaps = []
        problems.append(str(error))
    if not t1w and not bold_images:
        problems.append(f"sub-{label}: no T1w or BOLD images match the selection")
    lesion, lesion_problems = _lesion_for(layout, label, base, t1w, validate)
    problems += lesion_problems
    for image in t1w:
        problem = nifti_problem(image.path, ndim=3, full_check=validate)
        if problem:
            problems.append(problem)
    runs = []
    for image in bold_images:
        problem = nifti_problem(image.path, ndim=4, full_check=validate)
        if problem:
            problems.append(problem)
            continue
        tr = image.metadata.get("RepetitionTime")
        if not isinstance(tr, (int, float)) or tr <= 0:
            problems.append(f"{image.path}: sidecar lacks a positive RepetitionTime")
            continue
        problem = slice_timing_problem(image.path, image.metadata, image.shape)
        if problem:
            problems.append(problem)
            continue
        runs.append(BoldRun(
            image=image,
            repetition_time=float(tr),
            n_volumes=int(image.shape[3]),
            events=_events_for(image.path),
            sbref=_sbref_for(layout, image),
            fieldmaps=_fieldmaps_for(image, fieldmaps),
        ))
    found_sessions = tuple(sorted({str(i.entities["session"]) for i in t1w + tuple(bold_images) if "session" in i.entities}))
    return ParticipantPlan(label=label, sessions=found_sessions, t1w=t1w, bold=tuple(runs), problems=tuple(problems),
                           lesion=lesion)


def _with_problems(participant: ParticipantPlan, problems: list[str]) -> ParticipantPlan:
    """``participant`` with ``problems`` found outside its plan (e.g. an unreadable sidecar) put first."""
    return replace(participant, problems=(*problems, *participant.problems)) if problems else participant


def plan_dataset(bids_dir: Path, *, participant_labels: tuple[str, ...] = (), sessions: tuple[str, ...] = (),
                 tasks: tuple[str, ...] = (), filters: dict[str, Any] | None = None,
                 validate: bool = True, database_dir: Path | None = None,
                 require_participants: bool = True) -> DatasetPlan:
    """Validate and query ``bids_dir``; return one plan per selected participant.

    Without ``require_participants`` (a group analysis that reads only
    ``participants.tsv``), a dataset without images gives an empty plan.

    Raises
    ------
    InputError
        When the directory is not a usable BIDS dataset (exit 2 before any work).
    UsageError
        For unknown participant labels.
    """
    description = check_dataset_description(bids_dir)
    if validate:
        invalid = invalid_file_names(bids_dir)
        if invalid:
            more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
            raise InputError(bids_dir / invalid[0], f"file name is not valid BIDS{more}; use --skip-bids-validation to ignore")
    broken = broken_sidecars(bids_dir)
    for path, problem in broken.items():
        if not path.relative_to(bids_dir).parts[0].startswith("sub-"):  # inherited by every participant
            raise InputError(path, problem.removeprefix(f"{path}: "))
    layout = index_dataset(bids_dir, database_dir, ignore=broken)
    subjects = list(layout.get_subjects())
    needed = require_participants or subjects or participant_labels
    labels = resolve_participants(subjects, participant_labels, bids_dir) if needed else []
    filters = filters or {}
    participants = tuple(
        _with_problems(plan_participant(layout, label, sessions=sessions, tasks=tasks, filters=filters,
                                        bids_dir=bids_dir, validate=validate),
                       [problem for path, problem in broken.items()
                        if path.relative_to(bids_dir).parts[0] == f"sub-{label}"])
        for label in labels
    )
    table = bids_dir / "participants.tsv"
    return DatasetPlan(bids_dir=bids_dir, name=str(description.get("Name")), participants=participants,
                       participants_table=table if table.is_file() else None)

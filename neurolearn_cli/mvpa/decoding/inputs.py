"""Find a participant's runs in the fmri derivatives and read their images, tables and the mask.

This module is the reading edge of decoding: paths come from BIDS entities
(the derivatives' own naming), images go to the run's device.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from neurolearn_cli.derivatives import build_relpath, raw_entities
from neurolearn_cli.engine.image import Grid, Image
from neurolearn_cli.errors import InputError, SpecError
from neurolearn_cli.mvpa.decoding.spec import DecodingSpec, MaskSpec


@dataclass(frozen=True)
class RunFiles:
    """One preprocessed run: the BOLD, its confounds, the raw events and the repetition time."""

    entities: dict[str, Any]
    bold: Path
    confounds: Path
    events: Path
    repetition_time: float


def _bold_pattern(spec: DecodingSpec) -> str:
    task = f"*_task-{spec.task}_" if spec.task else "*"
    res = f"_res-{spec.res}" if spec.res else ""
    return f"{task}*space-{spec.space}{res}_desc-preproc_bold.nii.gz"


def participants_with_runs(derivatives: Path, spec: DecodingSpec) -> list[str]:
    """Labels of the participants whose derivatives hold a run in the spec's task and space."""
    pattern = _bold_pattern(spec)
    return sorted(d.name[4:] for d in derivatives.glob("sub-*") if d.is_dir() and any(d.rglob(pattern)))


def _repetition_time(bold: Path) -> float:
    sidecar = bold.with_name(bold.name[: -len(".nii.gz")] + ".json")
    try:
        value = json.loads(sidecar.read_text(encoding="utf-8")).get("RepetitionTime")
    except (OSError, ValueError):
        value = None
    if value is None:
        import nibabel as nib

        image = nib.load(bold)
        if not isinstance(image, nib.spatialimages.SpatialImage):
            raise InputError(bold, f"not a volume image ({type(image).__name__})")
        value = float(image.header.get_zooms()[3])
    if not value or value <= 0:
        raise InputError(sidecar, "no RepetitionTime (and none in the image header)")
    return float(value)


def find_runs(derivatives: Path, bids_dir: Path, label: str, spec: DecodingSpec) -> list[RunFiles]:
    """The runs of participant ``label`` in the spec's task and space, sorted by name.

    Raises
    ------
    InputError
        No run found, or a run without its confounds or events file.
    """
    from bids.layout import parse_file_entities

    bolds = sorted((derivatives / f"sub-{label}").rglob(_bold_pattern(spec)))
    if spec.res is None:
        bolds = [b for b in bolds if "_res-" not in b.name]
    if not bolds:
        raise InputError(derivatives / f"sub-{label}", f"no preprocessed BOLD in space {spec.space}"
                         f"{f' res-{spec.res}' if spec.res else ''}{f' for task {spec.task}' if spec.task else ''}"
                         " (run neurolearn fmri first)")
    runs = []
    for bold in bolds:
        entities = raw_entities(parse_file_entities(str(bold), config=["bids", "derivatives"]))
        entities["datatype"] = "func"
        confounds = derivatives / build_relpath({**entities, "desc": "confounds", "suffix": "timeseries", "extension": ".tsv"})
        events = bids_dir / build_relpath({**entities, "suffix": "events", "extension": ".tsv"})
        for path in (confounds, events):
            if not path.is_file():
                raise InputError(path, f"file not found (needed to decode {bold.name})")
        runs.append(RunFiles(entities, bold, confounds, events, _repetition_time(bold)))
    return runs


def read_table(path: Path) -> pd.DataFrame:
    """A BIDS TSV where only ``n/a`` is missing (so a condition named ``null`` or ``NA`` stays a condition)."""
    try:
        return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(path, f"cannot read the table ({str(exc).splitlines()[0]})") from None


def _labels_of(spec: MaskSpec, table: pd.DataFrame) -> list[int]:
    """Atlas indices of ``spec.labels`` (names or indices); every parcel when none are listed."""
    if spec.labels is None:
        return [int(i) for i in table["index"]]
    by_name = {str(n): int(i) for i, n in zip(table["index"], table["name"], strict=True)}
    indices = set(int(i) for i in table["index"])
    chosen = []
    for label in spec.labels:
        index = label if isinstance(label, int) else by_name.get(label)
        if index is None or index not in indices:
            raise SpecError(None, "mask.labels", f"no parcel '{label}' in the atlas")
        chosen.append(index)
    return chosen


def load_mask(spec: MaskSpec, grid: Grid) -> torch.Tensor:
    """The boolean mask on ``grid``: the non-zero voxels of ``spec.image``, or the chosen atlas parcels.

    Images on another grid are resampled (label-preserving) by world coordinates.

    Raises
    ------
    InputError
        An unreadable image, unknown labels, or a mask with no voxel on the grid.
    """
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.resample import resample_labels
    from neurolearn_cli.smri.parcellation import load_atlas

    source: Path | str
    if spec.image is not None:
        image = load_image(spec.image, grid.device)
        if image.data.dim() != 3:
            raise InputError(spec.image, "a mask must be a 3D image")
        labels, wanted, source = image.with_data((image.data != 0).float()), [1], spec.image
    else:
        atlas = load_atlas(grid.device, spec.atlas, spec.atlas_labels)
        labels, wanted, source = atlas.labels, _labels_of(spec, atlas.table), spec.atlas or atlas.name
    if labels.grid != grid:
        labels = resample_labels(labels, grid)
    mask = torch.isin(labels.data.round().long(), torch.tensor(wanted, device=grid.device))
    if not bool(mask.any()):
        raise InputError(source, "the mask holds no voxel of the BOLD grid")
    return mask


def load_bold(path: Path, device: torch.device) -> Image:
    """A 4D BOLD image on ``device``."""
    from neurolearn_cli.engine.io import load_image

    image = load_image(path, device)
    if image.data.dim() != 4:
        raise InputError(path, "expected a 4D BOLD image")
    return image

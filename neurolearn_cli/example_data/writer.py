"""Write the example dataset: directory checks, BIDS names, NIfTI headers, atomic files.

The dataset is written into a hidden staging directory next to the target and
renamed into place at the end, so an interrupted run leaves no partial dataset.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolearn_cli.atomic import write_json, write_nifti, write_text, write_tsv
from neurolearn_cli.errors import UsageError
from neurolearn_cli.example_data import metadata
from neurolearn_cli.example_data.anat import DSEG_LABELS
from neurolearn_cli.example_data.bold import ACTIVATION_LABELS
from neurolearn_cli.example_data.motion import MOTION_COLUMNS
from neurolearn_cli.example_data.participants import SITES, Site, named_site
from neurolearn_cli.example_data.protocol import BOLD, BoldProtocol
from neurolearn_cli.example_data.simulate import ParticipantData, simulate_participant
from neurolearn_cli.example_data.space import example_space

TRUTH_DIR = Path("derivatives") / "simulation"
_LOG = logging.getLogger(__name__)
#: Level 1 compresses the noisy int16 images 7x faster than level 6 for files about 8% larger.
FAST_GZIP = 1


def _is_previous_example(path: Path) -> bool:
    try:
        description = json.loads((path / "dataset_description.json").read_text(encoding="utf-8"))
        return description["GeneratedBy"][0]["Name"] == metadata.GENERATOR
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False


def _check_target(bids_dir: Path) -> None:
    """Refuse a file, or a non-empty directory that is not a previous example dataset."""
    if bids_dir.exists() and not bids_dir.is_dir():
        raise UsageError(f"{bids_dir}: exists and is not a directory")
    if bids_dir.is_dir() and any(bids_dir.iterdir()) and not _is_previous_example(bids_dir):
        raise UsageError(f"{bids_dir}: directory is not empty and is not a neurolearn example dataset")


def _image(data: np.ndarray, affine: np.ndarray, repetition_time: float | None = None) -> nib.Nifti1Image:
    """NIfTI with scanner-like header: stored dtype, q/sform code 1, mm and s, TR and dim_info for BOLD."""
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_data_dtype(data.dtype)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    header.set_xyzt_units("mm", "sec")
    if repetition_time is not None:
        header.set_zooms((*header.get_zooms()[:3], repetition_time))
        header.set_dim_info(freq=0, phase=1, slice=2)
    return image


def _write_participant(root: Path, data: ParticipantData, label: str, protocol: BoldProtocol, site: Site) -> None:
    """Raw T1w, BOLD and events of one participant (BOLD where simulated), and their ground truth."""
    anat, func = root / f"sub-{label}" / "anat", root / f"sub-{label}" / "func"
    truth = root / TRUTH_DIR / f"sub-{label}"
    write_nifti(anat / f"sub-{label}_T1w.nii.gz", _image(data.t1w, data.affine), compresslevel=FAST_GZIP)
    write_json(anat / f"sub-{label}_T1w.json", metadata.t1w_sidecar(site))
    write_nifti(truth / "anat" / f"sub-{label}_dseg.nii.gz", _image(data.dseg, data.affine), compresslevel=FAST_GZIP)
    if data.bold is None or data.events is None:
        return
    stem = f"sub-{label}_task-{protocol.task}"
    write_nifti(func / f"{stem}_bold.nii.gz", _image(data.bold.data, protocol.affine, protocol.repetition_time), compresslevel=FAST_GZIP)
    write_json(func / f"{stem}_bold.json", metadata.bold_sidecar(site, protocol))
    write_tsv(func / f"{stem}_events.tsv", data.events)
    write_nifti(truth / "func" / f"{stem}_desc-activation_dseg.nii.gz", _image(data.bold.activation, protocol.affine), compresslevel=FAST_GZIP)
    motion = pd.DataFrame(data.bold.motion, columns=list(MOTION_COLUMNS))
    write_tsv(truth / "func" / f"{stem}_desc-motion_timeseries.tsv", motion, float_format="%.6f")


def _write_dataset(root: Path, participants: int, seed: int, protocol: BoldProtocol, bold_participants: int,
                   scanner: Site | None) -> None:
    """Simulate and write every participant (a BOLD run for the first ``bold_participants``), then the dataset-level files.

    ``scanner`` puts every participant at that site (default: siteA and siteB in turn).
    """
    sites = SITES if scanner is None else {scanner.name: scanner}
    space = example_space()
    width = max(2, len(str(participants)))
    rows, truth_rows = [], []
    for index in range(1, participants + 1):
        data = simulate_participant(index, seed, space, protocol, with_bold=index <= bold_participants, scanner=scanner)
        person = data.participant
        label = person.label(width)
        _write_participant(root, data, label, protocol, sites[person.site])
        _LOG.info("example data: sub-%s written (%d of %d)", label, index, participants)
        rows.append({"participant_id": f"sub-{label}", "age": person.age, "sex": person.sex,
                     "site": person.site, "group": person.group})
        truth_rows.append({"participant_id": f"sub-{label}", "atrophy_severity": person.severity,
                           "nonsteady_volumes": None if data.bold is None else data.bold.nonsteady})
    _write_dataset_files(root, seed, protocol, pd.DataFrame(rows), pd.DataFrame(truth_rows), bold_participants, sites)


def _write_dataset_files(
    root: Path, seed: int, protocol: BoldProtocol, participants: pd.DataFrame, truth_participants: pd.DataFrame,
    bold_participants: int, sites: dict[str, Site],
) -> None:
    """Descriptions, README, participant tables and label tables of the raw and truth datasets."""
    write_json(root / "dataset_description.json", metadata.dataset_description(seed))
    write_text(root / "README", metadata.readme(seed, protocol, bold_participants, len(participants), sites))
    write_text(root / metadata.ANALYSIS_SPEC, metadata.analysis_spec())
    write_tsv(root / "participants.tsv", participants)
    write_json(root / "participants.json", metadata.participants_sidecar(sites))
    write_json(root / f"task-{protocol.task}_events.json", metadata.events_sidecar())
    truth = root / TRUTH_DIR
    write_json(truth / "dataset_description.json", metadata.truth_description(seed))
    write_tsv(truth / "participants.tsv", truth_participants)
    write_json(truth / "participants.json", metadata.truth_participants_sidecar())
    write_tsv(truth / "dseg.tsv", pd.DataFrame({"index": list(DSEG_LABELS.values()), "name": list(DSEG_LABELS)}))
    write_tsv(truth / "desc-activation_dseg.tsv",
              pd.DataFrame({"index": list(ACTIVATION_LABELS.values()), "name": list(ACTIVATION_LABELS)}))
    write_json(truth / f"task-{protocol.task}_desc-motion_timeseries.json", metadata.motion_sidecar())


def _swap_into_place(staging: Path, bids_dir: Path) -> None:
    """Rename the finished ``staging`` tree to ``bids_dir``, retiring what was there."""
    staging.chmod(0o755)  # mkdtemp creates it private; the dataset is meant to be shared
    if not bids_dir.exists():
        staging.rename(bids_dir)
        return
    retired = Path(tempfile.mkdtemp(dir=bids_dir.parent, prefix=f".{bids_dir.name}.", suffix=".old"))
    bids_dir.rename(retired / bids_dir.name)
    staging.rename(bids_dir)
    shutil.rmtree(retired)


def write_example_dataset(
    bids_dir: str | Path, participants: int = 8, seed: int = 0, *, volumes: int | None = None,
    bold_participants: int | None = None, site: str | None = None, site_effect: float = 1.0,
) -> Path:
    """Write the simulated example BIDS dataset to ``bids_dir`` and return its path.

    Parameters
    ----------
    bids_dir : path-like
        Target directory: absent, empty, or a previous example dataset (replaced).
    participants : int
        Number of participants (at least 1); groups and sites stay balanced.
    seed : int
        Non-negative seed; the same seed gives byte-identical files, and
        participant ``k`` is the same whatever ``participants`` is.
    volumes : int, optional
        BOLD volumes per run (default 60); fewer make a quicker, smaller dataset.
    bold_participants : int, optional
        How many participants (the first ones) have a BOLD run; default all.
        The others have a T1w only, as in studies where some participants
        skipped the functional session.
    site : str, optional
        Put every participant at this site, whose scanner differs from the
        others' (:func:`~neurolearn_cli.example_data.participants.named_site`);
        its participants are other people than another site's. Default: two
        built-in sites, siteA and siteB, in turn.
    site_effect : float
        How much a named site's scanner departs from siteA's (0: not at all; 1: typical).

    Raises
    ------
    UsageError
        For a bad count, seed or volume number, or a target that is a file or a
        non-empty directory holding something else.
    """
    if isinstance(participants, bool) or not isinstance(participants, int) or participants < 1:
        raise UsageError(f"--participants must be a positive integer, got {participants!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed!r}")
    if bold_participants is None:
        bold_participants = participants
    if isinstance(bold_participants, bool) or not isinstance(bold_participants, int) or bold_participants < 0:
        raise UsageError(f"--bold-participants must be a non-negative integer, got {bold_participants!r}")
    if site is not None and not re.fullmatch(r"[A-Za-z0-9]+", site):
        raise UsageError(f"--site must be letters and digits (a BIDS label), got {site!r}")
    if not 0 <= site_effect <= 5:
        raise UsageError(f"--site-effect must be between 0 and 5, got {site_effect!r}")
    scanner = None if site is None else named_site(site, site_effect)
    protocol = BOLD if volumes is None else replace(BOLD, volumes=volumes)
    if protocol.blocks < 2:
        raise UsageError(f"{protocol.volumes} volumes are too few to hold one block of each condition")
    bids_dir = Path(bids_dir).absolute()
    _check_target(bids_dir)
    bids_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=bids_dir.parent, prefix=f".{bids_dir.name}.", suffix=".partial"))
    try:
        _write_dataset(staging, participants, seed, protocol, min(bold_participants, participants), scanner)
        _swap_into_place(staging, bids_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return bids_dir

"""The qc stage's BOLD section reads the fmri stage's outputs by the fmri stage's own names."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.dataset.plan import BoldRun, ImageInput
from neurolearn_cli.derivatives import DerivativesWriter
from neurolearn_cli.qc import workflow
from tests.qc.test_confounds import DUMMIES, N_VOLUMES, confounds_table

SHAPE = (20, 22, 18)


def bold_run(root: Path) -> BoldRun:
    """A small BOLD series on disk: a bright noisy ellipsoid over a dark background."""
    rng = np.random.default_rng(1)
    grids = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    inside = sum(((g - n / 2) / (n / 3)) ** 2 for g, n in zip(grids, SHAPE, strict=True)) < 1
    data = np.where(inside[..., None], 800.0, 20.0) + rng.normal(0, 10, (*SHAPE, N_VOLUMES))
    data[..., :DUMMIES] *= 1.5  # bright non-steady-state volumes
    path = root / "sub-01" / "ses-a" / "func" / "sub-01_ses-a_task-rest_run-2_bold.nii.gz"
    path.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.diag([3.0, 3.0, 3.3, 1.0])), path)
    entities = {"subject": "01", "session": "a", "task": "rest", "run": 2, "suffix": "bold"}
    image = ImageInput(
        path, entities, {"RepetitionTime": 2.0}, (*SHAPE, N_VOLUMES), (3.0, 3.0, 3.3)
    )
    return BoldRun(image=image, repetition_time=2.0, n_volumes=N_VOLUMES)


@pytest.fixture
def stage(tmp_path: Path) -> tuple[BoldRun, SimpleNamespace]:
    run = bold_run(tmp_path / "bids")
    config = SimpleNamespace(dummy_scans=None, output_spaces=("MNI152NLin2009aSym:res-2", "T1w"))
    context = SimpleNamespace(
        config=config,
        device=torch.device("cpu"),
        writer=DerivativesWriter(tmp_path / "out", "sub-01", ""),
        log=logging.getLogger("test"),
    )
    return run, context


def test_fmri_outputs_use_the_fmri_names(stage: tuple[BoldRun, SimpleNamespace]) -> None:
    run, context = stage
    outputs = workflow.fmri_outputs(run, context, "MNI152NLin2009aSym", "atlas")
    root = context.writer.output_dir / "sub-01" / "ses-a"
    stem = "sub-01_ses-a_task-rest_run-2"
    assert outputs["confounds"] == root / "func" / f"{stem}_desc-confounds_timeseries.tsv"
    assert outputs["figure_carpetplot"] == root / "figures" / f"{stem}_desc-carpetplot_bold.svg"
    assert set(workflow.FMRI_FIGURE_TITLES) <= set(outputs)


def test_bold_section_reads_the_fmri_confounds(stage: tuple[BoldRun, SimpleNamespace]) -> None:
    run, context = stage
    outputs = workflow.fmri_outputs(run, context, "MNI152NLin2009aSym", "atlas")
    table = confounds_table()
    context.writer.write_tsv(
        {**run.image.entities, "datatype": "func", "desc": "confounds", "suffix": "timeseries"},
        table,
    )
    assert outputs["confounds"].is_file()
    section = workflow._bold_section(run, outputs, context)
    titles = [figure.title for figure in section.figures]
    assert titles == ["Head motion", "Confound correlations"]  # no fmri figures on disk
    fd = table["framewise_displacement"].to_numpy()[DUMMIES + 1 :]
    assert section.iqms["dummy_trs"] == DUMMIES  # the fmri stage's count, from the table
    assert section.iqms["fd_mean"] == pytest.approx(fd.mean(), rel=1e-5)  # TSV keeps 6 digits
    assert section.iqms["size_t"] == N_VOLUMES
    assert section.bids_name == "sub-01_ses-a_task-rest_run-2_bold"


def test_bold_section_without_fmri_outputs(stage: tuple[BoldRun, SimpleNamespace]) -> None:
    run, context = stage
    outputs = workflow.fmri_outputs(run, context, "MNI152NLin2009aSym", "atlas")
    section = workflow._bold_section(run, outputs, context)
    assert section.figures == []
    assert section.iqms["fd_mean"] == -1.0  # MRIQC's "undefined"
    assert 0 < section.iqms["dummy_trs"] <= DUMMIES + 1
    assert section.iqms["size_t"] == N_VOLUMES

"""The qc stage reads the fmri stage's outputs by the fmri stage's own names; its BOLD IQMs use them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.config import RunConfig
from neurolearn_cli.dataset.plan import BoldRun, ImageInput
from neurolearn_cli.derivatives import DerivativesWriter
from neurolearn_cli.engine.image import Image
from neurolearn_cli.qc.pipeline import FMRI_FIGURE_TITLES, functional_qc, iqm_record
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


def test_fmri_run_outputs_are_the_fmri_names(tmp_path: Path) -> None:
    from neurolearn_cli.fmri.workflow import run_outputs

    run = bold_run(tmp_path / "bids")
    config = RunConfig(bids_dir=tmp_path / "bids", output_dir=tmp_path / "out")
    context = SimpleNamespace(config=config, writer=DerivativesWriter(tmp_path / "out", "sub-01", ""),
                              atlas=SimpleNamespace(name="my atlas"))
    outputs = run_outputs(run, context)
    root = tmp_path / "out" / "sub-01" / "ses-a"
    stem = "sub-01_ses-a_task-rest_run-2"
    assert outputs["confounds"] == root / "func" / f"{stem}_desc-confounds_timeseries.tsv"
    assert outputs["figure_carpetplot"] == root / "figures" / f"{stem}_desc-carpetplot_bold.svg"
    assert outputs["mean"].name.startswith(f"{stem}_space-MNI152NLin2009aSym_res-2_seg-myatlas_stat-mean")
    assert set(FMRI_FIGURE_TITLES) <= set(outputs)


def test_functional_qc_reads_the_fmri_confounds(tmp_path: Path) -> None:
    run = bold_run(tmp_path / "bids")
    image = nib.load(run.image.path)
    bold = Image(torch.from_numpy(np.asanyarray(image.dataobj)),
                 torch.as_tensor(image.affine, dtype=torch.float64))
    table = confounds_table()
    carpet = b"<svg>carpet</svg>"
    result = functional_qc(bold, 2.0, table, {"figure_carpetplot": carpet}, fd_threshold=0.5)
    assert [f.title for f in result.figures] == ["Head motion", "Confound correlations", "Carpet plot"]
    assert result.figures[-1].data == carpet and result.figures[-1].mime == "image/svg+xml"
    fd = table["framewise_displacement"].to_numpy()[DUMMIES + 1 :]
    assert result.iqms["dummy_trs"] == DUMMIES  # the fmri stage's count, from the table
    assert result.iqms["fd_mean"] == pytest.approx(fd.mean())
    assert result.iqms["size_t"] == N_VOLUMES


def test_iqm_record_writes_non_finite_as_null() -> None:
    record = iqm_record({"cjv": 0.5, "fwhm_x": float("nan"), "size_x": 7}, "sub-01_T1w")
    assert record == {
        "cjv": 0.5,
        "fwhm_x": None,
        "size_x": 7,
        "bids_name": "sub-01_T1w",
        "missing": {"fwhm_x": "not a finite number"},
    }

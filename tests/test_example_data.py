"""The simulated example dataset: BIDS validity, realism, ground truth and determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from bids import BIDSLayout
from nilearn.glm.first_level import make_first_level_design_matrix
from scipy.ndimage import binary_dilation

from neurolearn_cli.errors import UsageError
from neurolearn_cli.example_data import write_example_dataset
from neurolearn_cli.example_data.atrophy import apply_atrophy, gm_loss
from neurolearn_cli.example_data.space import example_space

#: A short run (two blocks) keeps the tests quick; the default is 60 volumes.
VOLUMES = 30
TRUTH = Path("derivatives") / "simulation"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three participants (seed 0), the first two again on their own, and one with seed 1.

    The seed-1 dataset is written over a copy of the two-participant one, to
    exercise replacing a previous example dataset.
    """
    root = tmp_path_factory.mktemp("example")
    paths = {
        "three": write_example_dataset(root / "three", participants=3, seed=0, volumes=VOLUMES),
        "two": write_example_dataset(root / "two", participants=2, seed=0, volumes=VOLUMES),
        "t1w_only": write_example_dataset(root / "t1w_only", participants=3, seed=0, volumes=VOLUMES,
                                          bold_participants=1),
    }
    shutil.copytree(paths["two"], root / "other")
    paths["other"] = write_example_dataset(root / "other", participants=1, seed=1, volumes=VOLUMES)
    return paths


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_pybids_indexes_t1w_bold_and_events(datasets: dict[str, Path]) -> None:
    layout = BIDSLayout(datasets["three"], validate=True)
    assert layout.get_subjects() == ["01", "02", "03"]
    assert len(layout.get(suffix="T1w", extension=".nii.gz")) == 3
    bold = layout.get(suffix="bold", task="faces", extension=".nii.gz")
    assert len(bold) == 3
    assert len(layout.get(suffix="events", task="faces", extension=".tsv")) == 3
    metadata = bold[0].get_metadata()
    assert metadata["RepetitionTime"] == 2.0
    assert metadata["PhaseEncodingDirection"] == "j-"
    participants = pd.read_csv(datasets["three"] / "participants.tsv", sep="\t")
    assert participants.group.tolist() == ["control", "patient", "control"]
    assert participants.site.tolist() == ["siteA", "siteA", "siteB"]
    assert participants.age.between(20, 80).all()


def test_t1w_has_head_tissue_contrast_and_background_noise(datasets: dict[str, Path]) -> None:
    image = nib.load(datasets["three"] / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    dseg = np.asarray(nib.load(datasets["three"] / TRUTH / "sub-01" / "anat" / "sub-01_dseg.nii.gz").dataobj)
    data = np.asarray(image.dataobj).astype(float)
    assert image.get_data_dtype() == np.int16
    assert image.header.get_zooms() == (2.0, 2.0, 2.0)
    assert (int(image.header["qform_code"]), int(image.header["sform_code"])) == (1, 1)
    assert image.header.get_xyzt_units() == ("mm", "sec")
    gm, wm, csf = (np.median(data[dseg == label]) for label in (1, 2, 3))
    assert wm > 1.2 * gm > 1.2 * 1.5 * csf
    brain = dseg > 0
    shell = binary_dilation(brain, iterations=8) & ~binary_dilation(brain, iterations=1)
    assert np.percentile(data[shell], 95) > 0.8 * wm  # bright scalp around the brain
    assert (data[shell] > 0.3 * wm).mean() > 0.15
    corner = data[:10, :10, -10:]
    assert 0 < corner.mean() < 0.1 * wm and corner.std() > 0  # noisy, dark background


def test_bold_is_4d_with_declared_timing(datasets: dict[str, Path]) -> None:
    func = datasets["three"] / "sub-02" / "func"
    image = nib.load(func / "sub-02_task-faces_bold.nii.gz")
    sidecar = json.loads((func / "sub-02_task-faces_bold.json").read_text())
    assert image.ndim == 4 and image.shape[3] == VOLUMES
    assert image.get_data_dtype() == np.int16
    assert image.header.get_zooms() == (3.0, 3.0, 3.0, 2.0)
    assert image.header.get_xyzt_units() == ("mm", "sec")
    timing = sidecar["SliceTiming"]
    assert len(timing) == image.shape[2]
    assert np.argsort(timing)[:3].tolist() == [0, 2, 4]  # interleaved ascending
    assert max(timing) < sidecar["RepetitionTime"]
    nonsteady = pd.read_csv(datasets["three"] / TRUTH / "participants.tsv", sep="\t").nonsteady_volumes[1]
    means = np.asarray(image.dataobj).reshape(-1, VOLUMES).mean(axis=0)
    steady = np.median(means[nonsteady:])
    assert 2 <= nonsteady <= 3
    assert means[0] > 1.5 * steady and means[nonsteady - 1] > 1.02 * steady
    assert np.all(np.abs(means[nonsteady:] / steady - 1) < 0.03)


def _task_correlations(root: Path, label: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Voxel correlations with the HRF-convolved blocks (quadratic drift removed, 3 volumes dropped).

    Returns those of the occipital truth region, those of brain voxels away from
    any activation, and that of the occipital region's mean time series.
    """
    stem = f"sub-{label}_task-faces"
    data = np.asarray(nib.load(root / f"sub-{label}" / "func" / f"{stem}_bold.nii.gz").dataobj, dtype=float)
    truth = root / TRUTH / f"sub-{label}" / "func" / f"{stem}_desc-activation_dseg.nii.gz"
    activation = np.asarray(nib.load(truth).dataobj)
    events = pd.read_csv(root / f"sub-{label}" / "func" / f"{stem}_events.tsv", sep="\t")
    design = make_first_level_design_matrix(
        np.arange(VOLUMES) * 2.0, events, hrf_model="spm", drift_model="polynomial", drift_order=2
    ).iloc[3:]
    drifts = design.filter(regex="drift|constant").to_numpy()
    residual = np.eye(len(design)) - drifts @ np.linalg.pinv(drifts)
    regressor = residual @ (design["face"] + design["scrambled"]).to_numpy()
    series = data[..., 3:].reshape(-1, len(design)) @ residual
    correlation = series @ regressor / (np.linalg.norm(series, axis=1) * np.linalg.norm(regressor) + 1e-9)
    mean = data[..., 3:].mean(axis=-1)
    brain = (mean > 0.3 * mean.max()).reshape(-1)
    away = ~binary_dilation(activation > 0, iterations=3).reshape(-1)
    occipital = activation.reshape(-1) == 1
    roi = series[occipital].mean(axis=0)
    roi_correlation = float(roi @ regressor / (np.linalg.norm(roi) * np.linalg.norm(regressor)))
    return correlation[occipital], correlation[brain & away], roi_correlation


@pytest.mark.parametrize("label", ["01", "02", "03"])
def test_activated_region_follows_the_task_regressor(datasets: dict[str, Path], label: str) -> None:
    occipital, elsewhere, roi = _task_correlations(datasets["three"], label)
    assert occipital.size > 50
    assert np.median(occipital) > 0.3
    assert np.median(occipital) > np.median(elsewhere) + 0.25
    assert roi > 0.7


def test_patients_lose_grey_matter_in_the_atrophy_regions() -> None:
    space = example_space()
    control = apply_atrophy(space.template, gm_loss(space.atrophy, severity=0.0, age=50.0))
    patient = apply_atrophy(space.template, gm_loss(space.atrophy, severity=1.0, age=50.0))
    region = space.atrophy > 0.5
    assert patient.gm[region].sum() < 0.7 * control.gm[region].sum()
    assert patient.csf[region].sum() > control.csf[region].sum()
    assert patient.t1[region].mean() < control.t1[region].mean()
    far = space.atrophy < 1e-3
    np.testing.assert_allclose(patient.gm[far], control.gm[far], atol=1e-3)
    older = apply_atrophy(space.template, gm_loss(space.atrophy, severity=0.0, age=75.0))
    assert older.gm.sum() < 0.96 * control.gm.sum()


def test_truth_table_marks_patients(datasets: dict[str, Path]) -> None:
    truth = pd.read_csv(datasets["three"] / TRUTH / "participants.tsv", sep="\t")
    assert truth.atrophy_severity.tolist()[0] == 0 and truth.atrophy_severity.tolist()[2] == 0
    assert 0.5 <= truth.atrophy_severity[1] <= 1.0


def test_same_seed_same_bytes_and_participants_independent_of_count(datasets: dict[str, Path]) -> None:
    three, two = _digests(datasets["three"]), _digests(datasets["two"])
    shared = [name for name in two if not name.endswith("participants.tsv")]
    assert all(two[name] == three[name] for name in shared)
    assert len(shared) > 15
    rows_two = pd.read_csv(datasets["two"] / "participants.tsv", sep="\t")
    rows_three = pd.read_csv(datasets["three"] / "participants.tsv", sep="\t")
    pd.testing.assert_frame_equal(rows_two, rows_three.iloc[:2])


def test_other_seed_gives_other_data(datasets: dict[str, Path]) -> None:
    other, three = _digests(datasets["other"]), _digests(datasets["three"])
    for name in ("sub-01/anat/sub-01_T1w.nii.gz", "sub-01/func/sub-01_task-faces_bold.nii.gz"):
        assert other[name] != three[name]


def test_refuses_foreign_directory_and_bad_counts(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not empty"):
        write_example_dataset(tmp_path, participants=1)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    with pytest.raises(UsageError, match="participants"):
        write_example_dataset(tmp_path / "new", participants=0)
    with pytest.raises(UsageError, match="too few"):
        write_example_dataset(tmp_path / "new", participants=1, volumes=10)
    assert not (tmp_path / "new").exists()


def test_replaces_a_previous_example_dataset(datasets: dict[str, Path]) -> None:
    other = datasets["other"]
    assert not (other / "sub-02").exists()
    assert json.loads((other / "dataset_description.json").read_text())["GeneratedBy"][0]["Description"].endswith("seed 1")
    assert sorted(path.name for path in other.parent.iterdir()) == ["other", "t1w_only", "three", "two"]


def test_bold_for_the_first_participants_only_and_the_same_anatomy(datasets: dict[str, Path]) -> None:
    t1w_only, three = _digests(datasets["t1w_only"]), _digests(datasets["three"])
    assert sorted(name for name in t1w_only if "_bold." in name) == ["sub-01/func/sub-01_task-faces_bold.json",
                                                                      "sub-01/func/sub-01_task-faces_bold.nii.gz"]
    for label in ("01", "02", "03"):
        name = f"sub-{label}/anat/sub-{label}_T1w.nii.gz"
        assert t1w_only[name] == three[name]
    truth = pd.read_csv(datasets["t1w_only"] / TRUTH / "participants.tsv", sep="\t")
    assert truth.nonsteady_volumes.notna().tolist() == [True, False, False]
    assert "the first 1 also have" in (datasets["t1w_only"] / "README").read_text()
    with pytest.raises(UsageError, match="bold-participants"):
        write_example_dataset(datasets["t1w_only"].parent / "bad", participants=2, bold_participants=-1)

"""Standard spaces offline: templates from a local TemplateFlow home, listed, validated, loaded and used end to end."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.config import build_config
from neurolearn_cli.errors import UsageError
from neurolearn_cli.spaces import check_available, parse_output_space
from neurolearn_cli.templateflow import (
    load_priors,
    load_standard,
    scan_home,
    standard_grids,
    templateflow_home,
)

CPU = torch.device("cpu")
NLIN6 = "MNI152NLin6Asym"


def _touch_image(path: Path, shape=(7, 8, 9), value: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.full(shape, value, dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), path)


def test_the_home_is_the_option_else_the_environment_else_templateflows_default(monkeypatch, tmp_path):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "env"))
    assert templateflow_home(tmp_path / "option") == tmp_path / "option"
    assert templateflow_home(None) == tmp_path / "env"
    monkeypatch.delenv("TEMPLATEFLOW_HOME")
    assert templateflow_home(None) == Path("~/.cache/templateflow").expanduser()


def test_scan_lists_templates_cohorts_and_resolutions_from_file_names(tmp_path):
    home = tmp_path / "tf"
    nlin6 = home / f"tpl-{NLIN6}"
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-01_T1w.nii.gz")
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-01_desc-brain_mask.nii.gz")
    for tissue in ("GM", "WM", "CSF"):
        _touch_image(nlin6 / f"tpl-{NLIN6}_res-01_label-{tissue}_probseg.nii.gz")
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-02_label-GM_probseg.nii.gz")  # GM alone: no priors at res-2
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-02_T1w.nii.gz")
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz")
    _touch_image(nlin6 / f"tpl-{NLIN6}_res-03_desc-brain_mask.nii.gz")  # no T1w at res-3: not a resolution
    (nlin6 / f"tpl-{NLIN6}_res-04_T1w.nii.gz").symlink_to(tmp_path / "never-fetched")  # a DataLad placeholder
    pediatric = home / "tpl-MNIPediatricAsym" / "cohort-2"
    _touch_image(pediatric / "tpl-MNIPediatricAsym_cohort-2_res-1_T1w.nii.gz")
    _touch_image(pediatric / "tpl-MNIPediatricAsym_cohort-2_res-1_desc-brain_T1w.nii.gz")

    templates = scan_home(home)
    assert sorted(templates, key=str) == [("MNI152NLin6Asym", None), ("MNIPediatricAsym", "2")]
    six = templates[(NLIN6, None)]
    assert list(six.resolutions) == ["1", "2"]
    assert six.resolutions["1"].mask is not None and six.resolutions["2"].mask is None
    assert six.resolutions["2"].priors is None
    assert six.resolutions["1"].paths() == [nlin6 / f"tpl-{NLIN6}_res-01_T1w.nii.gz",
                                            nlin6 / f"tpl-{NLIN6}_res-01_desc-brain_mask.nii.gz",
                                            *(nlin6 / f"tpl-{NLIN6}_res-01_label-{tissue}_probseg.nii.gz"
                                              for tissue in ("GM", "WM", "CSF"))]
    assert six.relative(six.resolutions["2"].t1w) == f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_T1w.nii.gz"
    assert templates[("MNIPediatricAsym", "2")].resolutions["1"].brain_t1w is not None
    assert scan_home(tmp_path / "absent") == {}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (f"{NLIN6}:res-3", ["MNI152NLin6Asym has no resolution res-3 in", "MNI152NLin6Asym (res-1, res-2 or res-native)"]),
        (f"{NLIN6}:cohort-1", ["MNI152NLin6Asym has no cohorts in"]),
        ("MNIPediatricAsym:res-1", ["MNIPediatricAsym has cohorts 1, 2 in", "e.g. MNIPediatricAsym:cohort-1"]),
        ("MNIPediatricAsym:cohort-3:res-1", ["MNIPediatricAsym has cohorts 1, 2 in"]),
        ("MNI152NLin2009cAsym:res-1", ["no template MNI152NLin2009cAsym in the TemplateFlow home"]),
    ],
)
def test_a_space_the_home_does_not_offer_is_refused(tmp_path, spec, words):
    for name in (f"{NLIN6}/tpl-{NLIN6}_res-01_T1w", f"{NLIN6}/tpl-{NLIN6}_res-02_T1w",
                 "MNIPediatricAsym/cohort-1/tpl-MNIPediatricAsym_cohort-1_res-1_T1w",
                 "MNIPediatricAsym/cohort-2/tpl-MNIPediatricAsym_cohort-2_res-1_T1w"):
        _touch_image(tmp_path / f"tpl-{name}.nii.gz")
    templates = scan_home(tmp_path)
    for good in (f"{NLIN6}:res-2", f"{NLIN6}:res-02", NLIN6, "MNIPediatricAsym:cohort-2:res-1"):
        check_available(parse_output_space(good), templates, tmp_path)
    with pytest.raises(ValueError) as error:
        check_available(parse_output_space(spec), templates, tmp_path)
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message
    for word in words:
        assert word in message


def test_the_cli_refuses_a_template_that_is_not_there_before_any_work(cli, make_bids, tmp_path, monkeypatch):
    home = tmp_path / "empty-home"
    home.mkdir()
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    bids, out = make_bids(("01",)), tmp_path / "out"
    code, _, err = cli("smri", bids, out, "participant", "--output-spaces", f"{NLIN6}:res-2")
    assert code == 2 and not out.exists()
    first = err.strip().splitlines()[0]
    assert f"no template {NLIN6} in the TemplateFlow home {home}" in first
    code, _, err = cli("smri", bids, out, "participant", "--templateflow-dir", str(tmp_path / "nowhere"))
    assert code == 2 and "--templateflow-dir" in err and "is not a directory" in err


def test_a_template_in_the_home_is_a_valid_space(templateflow_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(templateflow_home))
    values = {"bids_dir": tmp_path / "bids", "output_dir": tmp_path / "out",
              "output_spaces": [f"{NLIN6}:res-02", f"{NLIN6}", "MNI152NLin2009aSym:res-2"]}
    config = build_config(values, set(values), None)
    assert [str(space) for space in config.output_spaces] == [f"{NLIN6}:res-2", NLIN6, "MNI152NLin2009aSym:res-2"]
    with pytest.raises(UsageError, match="has no resolution res-1"):
        build_config({**values, "output_spaces": [f"{NLIN6}:res-1"]}, set(values), None)


def test_load_standard_reads_the_mask_or_says_it_had_none(tmp_path):
    from tests.conftest import write_templateflow_home

    with_mask = scan_home(write_templateflow_home(tmp_path / "a"))[(NLIN6, None)]
    without = scan_home(write_templateflow_home(tmp_path / "b", "OASIS30ANTs", brain_mask=False))[("OASIS30ANTs", None)]
    loaded = load_standard(with_mask, "4", CPU)
    assert loaded.has_brain_mask and loaded.files == (f"tpl-{NLIN6}/tpl-{NLIN6}_res-04_T1w.nii.gz",
                                                       f"tpl-{NLIN6}/tpl-{NLIN6}_res-04_desc-brain_mask.nii.gz")
    assert float(loaded.t1w.data.max()) == 1.0 and set(loaded.mask.data.unique().tolist()) == {0.0, 1.0}
    assert loaded.t1w.grid == standard_grids(with_mask, CPU)["4"]
    head = load_standard(without, "4", CPU)
    assert not head.has_brain_mask and head.files == ("tpl-OASIS30ANTs/tpl-OASIS30ANTs_res-04_T1w.nii.gz",)
    assert head.mask.data.sum() >= loaded.mask.data.sum()  # the head's foreground holds the brain
    priors = load_priors(with_mask, 2.0, CPU)  # only res-4 has priors: the closest resolution that has them
    assert priors is not None and priors.grid == standard_grids(with_mask, CPU)["4"] and priors.data.shape[-1] == 3
    assert 0 <= float(priors.data.min()) and float(priors.data.max()) <= 1
    assert load_priors(without, 2.0, CPU) is None


def test_planned_names_follow_fmripreps_for_templates_and_cohorts(make_bids):
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.smri.workflow import planned_entities

    participant = plan_dataset(make_bids(("01",))).participants[0]
    spaces = [parse_output_space(s) for s in (f"{NLIN6}:res-2", "MNIPediatricAsym:cohort-2:res-1")]
    entities = planned_entities(participant, "MNI152NLin2009aSym", "atlas", spaces)
    from neurolearn_cli.derivatives import build_relpath

    names = {role: build_relpath(e).rsplit("/", 1)[-1] for role, e in entities.items()}
    assert names[f"xfm_to_{NLIN6}"] == f"sub-01_from-T1w_to-{NLIN6}_mode-image_xfm.h5"
    assert names[f"xfm_from_{NLIN6}"] == f"sub-01_from-{NLIN6}_to-T1w_mode-image_xfm.h5"
    assert names["xfm_to_MNIPediatricAsym+2"] == "sub-01_from-T1w_to-MNIPediatricAsym+2_mode-image_xfm.h5"
    assert names[f"preproc_{NLIN6}:res-2"] == f"sub-01_space-{NLIN6}_res-2_desc-preproc_T1w.nii.gz"
    assert (names["probseg_GM_MNIPediatricAsym:cohort-2:res-1"]
            == "sub-01_space-MNIPediatricAsym_cohort-2_res-1_label-GM_probseg.nii.gz")


def test_smri_fingerprint_follows_the_template_files_and_only_its_spaces(templateflow_home, make_bids, tmp_path,
                                                                        monkeypatch):
    import shutil

    from neurolearn_cli.config import RunConfig
    from neurolearn_cli.dataset.query import plan_dataset
    from neurolearn_cli.run import stage_fingerprints

    home = tmp_path / "tf"
    shutil.copytree(templateflow_home, home)
    bids = make_bids(("01",))
    participant = plan_dataset(bids).participants[0]

    def digests(*spaces: str) -> dict[str, str]:
        config = RunConfig(bids_dir=bids, output_dir=tmp_path / "out", templateflow_dir=home, output_spaces=spaces)
        return stage_fingerprints(config, participant, scan_home(home))

    before = digests(f"{NLIN6}:res-2", "T1w")
    assert digests(f"{NLIN6}:res-2")["smri"] == before["smri"]  # T1w is fmri's alone
    assert digests(f"{NLIN6}:res-4", "T1w")["smri"] != before["smri"]
    _touch_image(home / f"tpl-{NLIN6}" / f"tpl-{NLIN6}_res-04_T1w.nii.gz", value=2.0)
    after = digests(f"{NLIN6}:res-2", "T1w")
    assert after["smri"] != before["smri"] and after["fmri"] != before["fmri"]


def _refuse_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a network call was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.slow
def test_smri_and_fmri_write_into_a_templateflow_template_offline(templateflow_home, cli, tmp_path, monkeypatch):
    """End to end with the network blocked: anat and BOLD on the template's own grids, transforms that invert."""
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.example_data import write_example_dataset
    from tests.conftest import TEMPLATE_SHIFT_MM

    _refuse_network(monkeypatch)
    monkeypatch.delenv("TEMPLATEFLOW_HOME", raising=False)
    # 50 volumes: enough residual degrees of freedom for the parcel series (fmri.connectivity.MIN_RESIDUAL_DOF)
    bids = write_example_dataset(tmp_path / "bids", participants=1, seed=3, volumes=50)
    out = tmp_path / "out"
    code, _, err = cli("fmri", bids, out, "participant", "--omp-nthreads", "2", "--templateflow-dir", templateflow_home,
                       "--output-spaces", f"{NLIN6}:res-2", f"{NLIN6}:res-4", "T1w")
    assert code == 0, err

    folder = templateflow_home / f"tpl-{NLIN6}"
    anat, func = out / "sub-01" / "anat", out / "sub-01" / "func"
    for res in ("2", "4"):
        grid = nib.load(folder / f"tpl-{NLIN6}_res-0{res}_T1w.nii.gz")
        named = f"space-{NLIN6}_res-{res}"
        for name in (f"anat/sub-01_{named}_desc-preproc_T1w", f"anat/sub-01_{named}_desc-brain_mask",
                     f"anat/sub-01_{named}_dseg", f"anat/sub-01_{named}_label-GM_probseg",
                     f"func/sub-01_task-faces_{named}_desc-preproc_bold", f"func/sub-01_task-faces_{named}_boldref"):
            image = nib.load(out / "sub-01" / f"{name}.nii.gz")
            assert image.shape[:3] == grid.shape and np.array_equal(image.affine, grid.affine), name
            sidecar = json.loads((out / "sub-01" / f"{name}.json").read_text())
            assert sidecar["SpatialReference"] == f"tpl-{NLIN6}/tpl-{NLIN6}_res-0{res}_T1w.nii.gz", name
        assert nib.load(func / f"sub-01_task-faces_{named}_desc-preproc_bold.nii.gz").shape[3] == 50
    meta = json.loads((anat / f"sub-01_space-{NLIN6}_res-2_desc-preproc_T1w.json").read_text())
    assert meta["Template"]["Name"] == NLIN6 and "never downloaded" in meta["Template"]["Source"]
    assert "directly" in meta["Registration"] and "bundled MNI152NLin2009aSym priors" in meta["TissuePriors"]
    assert (func / f"sub-01_task-faces_space-{NLIN6}_res-2_seg-neurolearnGM108_stat-mean_timeseries.tsv").is_file()

    # the warped T1w matches the template, and the transforms invert each other
    template = nib.load(folder / f"tpl-{NLIN6}_res-02_T1w.nii.gz")
    brain = nib.load(folder / f"tpl-{NLIN6}_res-02_desc-brain_mask.nii.gz").get_fdata() > 0
    warped = nib.load(anat / f"sub-01_space-{NLIN6}_res-2_desc-preproc_T1w.nii.gz").get_fdata()
    assert np.corrcoef(warped[brain], template.get_fdata()[brain])[0, 1] > 0.85
    forward = read_transform(anat / f"sub-01_from-T1w_to-{NLIN6}_mode-image_xfm.h5")
    inverse = read_transform(anat / f"sub-01_from-{NLIN6}_to-T1w_mode-image_xfm.h5")
    points = torch.as_tensor(nib.affines.apply_affine(template.affine, np.argwhere(brain)))
    error = (inverse.map_points(forward.map_points(points)) - points).norm(dim=1)
    assert float(error.median()) < 0.3 and float(error.quantile(0.99)) < 1.5
    # registered directly, it agrees with the bundled normalization moved by the template's known shift
    bundled = read_transform(anat / "sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.h5")
    shift = torch.tensor(TEMPLATE_SHIFT_MM, dtype=torch.float64)
    assert float((forward.map_points(points) - bundled.map_points(points - shift)).norm(dim=1).median()) < 2.0

    # the report shows the normalization into each template and the methods name the direct registration
    code, _, err = cli("qc", bids, out, "participant", "--omp-nthreads", "2", "--templateflow-dir", templateflow_home,
                       "--output-spaces", f"{NLIN6}:res-2", f"{NLIN6}:res-4", "T1w")
    assert code == 0, err
    report = (out / "sub-01.html").read_text()
    assert "Normalization to MNI152NLin2009aSym" in report and f"Normalization to {NLIN6}" in report
    # the overlap IQMs compare with the priors of the template the run normalized to (the first requested)
    iqms = json.loads((anat / "sub-01_T1w.json").read_text())
    assert iqms["provenance"] == {"tpm_template": NLIN6}
    assert all(0.2 < iqms[f"tpm_overlap_{tissue}"] < 1 for tissue in ("gm", "wm", "csf"))
    assert f"also registered directly to {NLIN6}:res-2 and {NLIN6}:res-4" in report


@pytest.mark.parametrize(
    ("atlas", "option", "space"),
    [
        (None, None, "MNI152NLin2009aSym"),
        ("tpl-MNI152NLin6Asym_res-02_atlas-Schaefer2018_desc-100Parcels7Networks_dseg.nii.gz", None, NLIN6),
        ("sub-x_space-MNI152NLin2009cAsym_dseg.nii.gz", None, "MNI152NLin2009cAsym"),
        ("tpl-MNI152NLin6Asym_res-02_dseg.nii.gz", "MNI152NLin2009cAsym", "MNI152NLin2009cAsym"),
        ("my_atlas.nii.gz", None, "MNI152NLin2009aSym"),
    ],
)
def test_an_atlas_declares_its_space(atlas, option, space):
    from neurolearn_cli.spaces import atlas_space

    assert atlas_space(None if atlas is None else Path(atlas), option) == space


def test_an_atlas_is_warped_through_its_own_template_when_the_home_has_it(templateflow_home):
    from neurolearn_cli.smri.parcellation import atlas_note
    from neurolearn_cli.spaces import atlas_template

    templates = scan_home(templateflow_home)
    assert atlas_template(NLIN6, templates) == NLIN6
    assert atlas_template("MNI152NLin2009cAsym", templates) is None
    assert atlas_template("MNI152NLin2009aSym", templates) is None
    assert "warped through the participant's direct normalization to" in atlas_note(NLIN6, NLIN6)
    approximated = atlas_note("MNI152NLin2009cAsym", None)
    assert "approximated through MNI152NLin2009aSym" in approximated and "not in the TemplateFlow home" in approximated


@pytest.mark.slow
def test_smri_warps_an_atlas_through_its_own_template(templateflow_home, cli, tmp_path, monkeypatch):
    """The default atlas moved by the template's known shift and declared in it lands where the original does."""
    import shutil
    from importlib import resources

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample_labels
    from neurolearn_cli.example_data import write_example_dataset
    from neurolearn_cli.smri.parcellation import DEFAULT_ATLAS_FILE, DEFAULT_LABELS_FILE
    from tests.conftest import TEMPLATE_SHIFT_MM

    _refuse_network(monkeypatch)
    folder = resources.files("neurolearn_cli") / "resources"
    with resources.as_file(folder / DEFAULT_ATLAS_FILE) as image_path, \
            resources.as_file(folder / DEFAULT_LABELS_FILE) as table_path:
        original = nib.load(image_path)
        moved = original.affine.copy()
        moved[:3, 3] += TEMPLATE_SHIFT_MM
        atlas = tmp_path / f"tpl-{NLIN6}_res-02_atlas-Moved_dseg.nii.gz"
        nib.save(nib.Nifti1Image(np.asanyarray(original.dataobj), moved), atlas)
        shutil.copy(table_path, tmp_path / "labels.tsv")
        expected_source = load_image(image_path, CPU)
    bids = write_example_dataset(tmp_path / "bids", participants=1, seed=3, volumes=30)
    out = tmp_path / "out"
    code, _, err = cli("smri", bids, out, "participant", "--omp-nthreads", "2", "--templateflow-dir", templateflow_home,
                       "--atlas", atlas, "--atlas-labels", tmp_path / "labels.tsv")
    assert code == 0, err

    anat = out / "sub-01" / "anat"
    assert (anat / f"sub-01_from-{NLIN6}_to-T1w_mode-image_xfm.h5").is_file()
    assert not list(anat.glob(f"*space-{NLIN6}*"))  # no output space asked for in it
    sidecar = json.loads((anat / "sub-01_seg-Moved_dseg.json").read_text())
    assert sidecar["AtlasSpace"] == NLIN6 and "direct normalization to MNI152NLin6Asym" in sidecar["Note"]
    warped = nib.load(anat / "sub-01_seg-Moved_dseg.nii.gz").get_fdata()
    t1w = load_image(anat / "sub-01_desc-preproc_T1w.nii.gz", CPU)
    bundled = read_transform(anat / "sub-01_from-MNI152NLin2009aSym_to-T1w_mode-image_xfm.h5")
    expected = resample_labels(expected_source, t1w.grid, bundled).data.numpy()
    labelled = (expected > 0) | (warped > 0)
    agreement = float((expected[labelled] == warped[labelled]).mean())
    assert agreement > 0.6, agreement


@pytest.mark.slow
def test_a_cohort_template_without_brain_mask_at_two_resolutions(cli, tmp_path, monkeypatch):
    """A cohort's template with no brain files: head-to-head registration said so, its grids, res-native the finest."""
    from neurolearn_cli.example_data import write_example_dataset
    from tests.conftest import write_templateflow_home

    _refuse_network(monkeypatch)
    home = write_templateflow_home(tmp_path / "tf", "MNIPediatricAsym", brain_mask=False, cohort="2")
    bids = write_example_dataset(tmp_path / "bids", participants=1, seed=4, bold_participants=0)
    out = tmp_path / "out"
    code, _, err = cli("qc", bids, out, "participant", "--omp-nthreads", "2", "--templateflow-dir", home,
                       "--output-spaces", "MNIPediatricAsym:cohort-2:res-4", "MNIPediatricAsym:cohort-2")
    assert code == 0, err
    folder, anat = home / "tpl-MNIPediatricAsym" / "cohort-2", out / "sub-01" / "anat"
    for named, res in (("space-MNIPediatricAsym_cohort-2_res-4", "4"), ("space-MNIPediatricAsym_cohort-2", "2")):
        grid = nib.load(folder / f"tpl-MNIPediatricAsym_cohort-2_res-0{res}_T1w.nii.gz")
        for suffix in ("desc-preproc_T1w", "desc-brain_mask", "dseg", "label-WM_probseg"):
            image = nib.load(anat / f"sub-01_{named}_{suffix}.nii.gz")
            assert image.shape[:3] == grid.shape and np.array_equal(image.affine, grid.affine), (named, suffix)
        meta = json.loads((anat / f"sub-01_{named}_desc-preproc_T1w.json").read_text())
        assert "no brain mask" in meta["Registration"] and meta["Template"]["Cohort"] == "2"
    assert (anat / "sub-01_from-T1w_to-MNIPediatricAsym+2_mode-image_xfm.h5").is_file()
    # no priors in the home: the overlap IQMs fall back to the bundled template's, and say so
    assert json.loads((anat / "sub-01_T1w.json").read_text())["provenance"] == {"tpm_template": "MNI152NLin2009aSym"}

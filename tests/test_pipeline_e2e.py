"""End to end: the BIDS-App on the example dataset, participant then group level.

One simulated participant with a short BOLD run goes through smri, fmri and
qc; the group level writes the IQM tables and reports. The outputs are then
checked the way a user would use them (pybids-style names, nilearn reading
the confounds, ANTs-readable transforms), and a second run with ``--resume``
must keep every byte.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolearn_cli.verify import verify

pytestmark = pytest.mark.slow

SUB = "sub-01"
TASK = "faces"


def test_runs_succeed(pipeline_run):
    _, _, codes = pipeline_run
    assert codes == [0, 0]


def test_anatomical_outputs(pipeline_run):
    bids, out, _ = pipeline_run
    anat = out / SUB / "anat"
    dseg = nib.load(anat / f"{SUB}_dseg.nii.gz")
    labels = np.asanyarray(dseg.dataobj)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    truth = nib.load(bids / "derivatives" / "simulation" / SUB / "anat" / f"{SUB}_dseg.nii.gz")
    assert truth.shape == dseg.shape and np.allclose(truth.affine, dseg.affine)
    truth_labels = np.asanyarray(truth.dataobj)
    brain, true_brain = labels > 0, truth_labels > 0
    assert 2 * (brain & true_brain).sum() / (brain.sum() + true_brain.sum()) > 0.95
    for label in (1, 2):  # GM, WM against the simulation's truth
        ours, true = labels == label, truth_labels == label
        assert 2 * (ours & true).sum() / (ours.sum() + true.sum()) > 0.7, label
    morph = pd.read_csv(next(anat.glob(f"{SUB}_seg-*_stat-gmvolume_morph.tsv")), sep="\t")
    assert morph.loc[0, "participant_id"] == SUB and morph.shape[1] > 50
    for name in (f"{SUB}_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.h5",
                 f"{SUB}_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.nii.gz",
                 f"{SUB}_desc-brain_mask.nii.gz"):
        assert (anat / name).is_file(), name


def test_functional_outputs(pipeline_run):
    _, out, _ = pipeline_run
    func = out / SUB / "func"
    preproc = func / f"{SUB}_task-{TASK}_space-MNI152NLin2009aSym_res-2_desc-preproc_bold.nii.gz"
    image = nib.load(preproc)
    assert image.shape[3] == 30 and image.header.get_zooms()[3] == pytest.approx(2.0)
    sidecar = json.loads(preproc.with_name(preproc.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["RepetitionTime"] == 2.0 and sidecar["SliceTimingCorrected"] is True
    t1w_space = nib.load(func / f"{SUB}_task-{TASK}_space-T1w_desc-preproc_bold.nii.gz")
    assert t1w_space.header.get_zooms()[:3] == pytest.approx((3.0, 3.0, 3.0), abs=0.01)
    # 30 volumes cannot carry the 24 motion, 8 WM/CSF and cosine regressors: no connectivity, and the note says why
    assert not list(func.glob("*_relmat.tsv")) and not list(func.glob("*_stat-mean_timeseries.tsv"))
    assert any("residual degrees of freedom" in note for note in sidecar["ProcessingNotes"])


def test_confounds_load_with_nilearn(pipeline_run):
    from nilearn.interfaces.fmriprep import load_confounds

    _, out, _ = pipeline_run
    preproc = out / SUB / "func" / f"{SUB}_task-{TASK}_space-MNI152NLin2009aSym_res-2_desc-preproc_bold.nii.gz"
    confounds, sample_mask = load_confounds(str(preproc), strategy=("motion", "high_pass", "wm_csf", "compcor"),
                                            compcor="anat_combined", n_compcor="all")
    assert len(confounds) == 30 and "trans_x" in confounds and "csf" in confounds


def test_reports_and_iqms(pipeline_run):
    _, out, _ = pipeline_run
    iqms = json.loads((out / SUB / "anat" / f"{SUB}_T1w.json").read_text())
    assert 0 < iqms["cjv"] < 2 and iqms["snr_total"] > 2
    bold_iqms = json.loads((out / SUB / "func" / f"{SUB}_task-{TASK}_bold.json").read_text())
    assert bold_iqms["tsnr"] > 5 and bold_iqms["fd_mean"] >= 0
    report = (out / f"{SUB}.html").read_text()
    assert report.count("data:image/") >= 4
    for modality in ("T1w", "bold"):
        table = pd.read_csv(out / f"group_{modality}.tsv", sep="\t")
        assert list(table["participant_id"]) == [SUB]
        assert (out / f"group_{modality}.html").is_file()


def test_verify_and_resume_keep_bytes(pipeline_run):
    from neurolearn_cli.cli.app import main

    bids, out, _ = pipeline_run
    assert verify(out).ok
    before = {p: p.read_bytes() for p in (out / SUB).rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as exit_info:
        main([str(bids), str(out), "participant", "--stages", "smri,fmri"])
    assert exit_info.value.code == 0
    after = {p: p.read_bytes() for p in (out / SUB).rglob("*") if p.is_file()}
    assert before == after
    # the newest log: names sort by start second, and the earlier group run may share it
    log = max((out / "logs").glob("neurolearn-*.log"), key=lambda p: p.stat().st_mtime_ns).read_text()
    assert "smri outputs are up to date" in log and "fmri outputs are up to date" in log

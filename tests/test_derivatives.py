"""Derivatives writer: names from entities, atomic writes, manifest, resume, verify."""

from __future__ import annotations

import hashlib
import json
import os

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurolearn_cli import atomic
from neurolearn_cli.derivatives import (
    DerivativesWriter,
    build_relpath,
    ensure_dataset_description,
    fingerprint,
)
from neurolearn_cli.errors import InputError
from neurolearn_cli.verify import verify


@pytest.mark.parametrize(
    ("entities", "expected"),
    [
        ({"subject": "01", "desc": "preproc", "suffix": "T1w", "extension": ".nii.gz"},
         "sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"),
        ({"subject": "01", "label": "GM", "suffix": "probseg", "extension": ".nii.gz"},
         "sub-01/anat/sub-01_label-GM_probseg.nii.gz"),
        ({"subject": "01", "from": "T1w", "to": "MNI152NLin2009aSym", "mode": "image", "suffix": "xfm", "extension": ".h5"},
         "sub-01/anat/sub-01_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.h5"),
        ({"subject": "01", "session": "a", "task": "rest", "run": 1, "datatype": "func", "space": "MNI152NLin2009aSym",
          "res": "2", "desc": "preproc", "suffix": "bold", "extension": ".nii.gz"},
         "sub-01/ses-a/func/sub-01_ses-a_task-rest_run-1_space-MNI152NLin2009aSym_res-2_desc-preproc_bold.nii.gz"),
        ({"subject": "01", "task": "rest", "datatype": "func", "from": "orig", "to": "boldref", "mode": "image",
          "desc": "hmc", "suffix": "xfm", "extension": ".txt"},
         "sub-01/func/sub-01_task-rest_from-orig_to-boldref_mode-image_desc-hmc_xfm.txt"),
        ({"subject": "01", "task": "rest", "datatype": "func", "seg": "Schaefer100", "stat": "mean",
          "suffix": "timeseries", "extension": ".tsv"},
         "sub-01/func/sub-01_task-rest_seg-Schaefer100_stat-mean_timeseries.tsv"),
        ({"subject": "01", "seg": "default", "stat": "gmvolume", "suffix": "morph", "extension": ".tsv"},
         "sub-01/anat/sub-01_seg-default_stat-gmvolume_morph.tsv"),
        ({"subject": "01", "suffix": "T1w", "extension": ".json"}, "sub-01/anat/sub-01_T1w.json"),  # MRIQC's IQMs
        ({"subject": "01", "extension": ".html"}, "sub-01.html"),
        ({"suffix": "bold", "extension": ".tsv"}, "group_bold.tsv"),
        ({"suffix": "T1w", "extension": ".html"}, "group_T1w.html"),
        ({"extension": ".md"}, "logs/CITATION.md"),
    ],
)
def test_fmriprep_names(entities, expected):
    assert build_relpath(entities) == expected


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a" / "file.json"

    def fail(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="No space left"):
        atomic.write_json(target, {"a": 1})
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_nifti_bytes_are_reproducible(tmp_path):
    image = nib.Nifti1Image(np.arange(7 * 8 * 9, dtype=np.float32).reshape(7, 8, 9), np.eye(4))
    first = atomic.write_nifti(tmp_path / "a.nii.gz", image).read_bytes()
    second = atomic.write_nifti(tmp_path / "b.nii.gz", image).read_bytes()
    assert first == second
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip mtime field is zero


def test_writer_manifest_resume_and_verify(tmp_path):
    inputs = tmp_path / "input.txt"
    inputs.write_text("raw")
    out = tmp_path / "out"
    digest = fingerprint([inputs], {"seed": 0})
    writer = DerivativesWriter(out, "sub-01", digest)
    image = nib.Nifti1Image(np.ones((7, 8, 9), np.float32), np.eye(4))
    entities = {"subject": "01", "desc": "preproc", "suffix": "T1w"}
    path = writer.write_nifti(entities, image, {"Sources": ["bids:raw:sub-01/anat/sub-01_T1w.nii.gz"]})
    table = writer.write_tsv({"subject": "01", "seg": "x", "stat": "gmvolume", "suffix": "morph"}, pd.DataFrame({"a": [1.5]}))
    sidecar = path.with_name("sub-01_desc-preproc_T1w.json")
    assert json.loads(sidecar.read_text())["Sources"][0].endswith("sub-01_T1w.nii.gz")
    manifest = json.loads((out / "logs" / "manifest" / "sub-01.json").read_text())
    assert manifest["sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    assert DerivativesWriter(out, "sub-01", digest).is_current([path, table, sidecar])
    assert not DerivativesWriter(out, "sub-01", digest, resume=False).is_current([path])
    assert not DerivativesWriter(out, "sub-01", fingerprint([inputs], {"seed": 1})).is_current([path])
    assert verify(out).ok

    table.write_text("a\n2\n")
    assert not DerivativesWriter(out, "sub-01", digest).is_current([table])
    report = verify(out)
    assert report.changed == ["sub-01/anat/sub-01_seg-x_stat-gmvolume_morph.tsv"]


def test_verify_checks_recorded_logs_only(tmp_path):
    writer = DerivativesWriter(tmp_path, "group", "f")
    citation = writer.write_text(writer.path({"extension": ".md"}), "methods\n")
    atomic.write_text(tmp_path / "logs" / "neurolearn-1.log", "not recorded, not compared\n")
    assert verify(tmp_path).ok and verify(tmp_path).checked == 1
    citation.write_text("edited\n")
    assert verify(tmp_path).changed == ["logs/CITATION.md"]
    citation.unlink()
    assert verify(tmp_path).missing == ["logs/CITATION.md"]


def test_verify_against_other_run(tmp_path):
    for name, value in (("a", 1), ("b", 1), ("c", 2)):
        DerivativesWriter(tmp_path / name, "sub-01", "f").write_json(tmp_path / name / "sub-01" / "x.json", {"v": value})
    assert verify(tmp_path / "a", tmp_path / "b").ok
    assert verify(tmp_path / "a", tmp_path / "c").changed == ["sub-01/x.json"]


def test_dataset_description(tmp_path):
    path = ensure_dataset_description(tmp_path / "out", tmp_path / "bids")
    description = json.loads(path.read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "neurolearn"
    path.write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9", "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    with pytest.raises(InputError, match="another tool"):
        ensure_dataset_description(tmp_path / "out", tmp_path / "bids")


def test_dataset_description_names_the_raw_data_portably(tmp_path):
    paths = [ensure_dataset_description(tmp_path / copy / "out", tmp_path / copy / "bids") for copy in ("a", "b")]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    description = json.loads(paths[0].read_text())
    assert description["DatasetLinks"] == {"raw": "../bids"}
    assert description["SourceDatasets"] == [{"URL": "../bids"}]
    assert str(tmp_path) not in paths[0].read_text()
    inside = ensure_dataset_description(tmp_path / "bids" / "derivatives" / "neurolearn", tmp_path / "bids")
    assert json.loads(inside.read_text())["DatasetLinks"] == {"raw": "../.."}


def test_verify_reports_leftover_temporary_files(tmp_path, cli):
    for name in ("a", "b"):
        DerivativesWriter(tmp_path / name, "sub-01", "f").write_json(tmp_path / name / "sub-01" / "x.json", {})
    planted = tmp_path / "a" / "sub-01" / ".x.json.k3j2h1.part"  # the atomic writer's temporary name
    planted.write_text("{")
    assert atomic.temporaries(tmp_path / "a") == [planted]
    report = verify(tmp_path / "a")
    assert report.temporary == ["sub-01/.x.json.k3j2h1.part"] and not report.ok
    assert verify(tmp_path / "b", tmp_path / "a").temporary == [str(planted)]
    code, out, err = cli("verify", tmp_path / "a")
    assert code == 1
    assert "temporary file left by an interrupted write: sub-01/.x.json.k3j2h1.part" in out
    assert "1 difference(s)" in err
    planted.unlink()
    assert verify(tmp_path / "a").ok and verify(tmp_path / "a", tmp_path / "b").ok

"""BOLD on the surface end to end on xa30 (smri, surfaces, fmri, qc: a few CPU minutes, heavy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nilearn.surface import load_surf_data, load_surf_mesh

pytest.importorskip("skimage")

pytestmark = [pytest.mark.realdata, pytest.mark.heavy]


def test_fsnative_series_on_xa30(shared_data: Path, cli: Any, tmp_path: Path) -> None:
    bids = tmp_path / "bids"
    shutil.copytree(shared_data / "xa30" / "bids", bids)
    out = tmp_path / "out"
    code, _, err = cli(bids, out, "participant", "--stages", "smri,surfaces,fmri,qc", "--output-spaces", "T1w",
                       "fsnative", "fsLR", "--templateflow-dir", str(tmp_path))
    assert code == 0, err
    func, anat = out / "sub-01" / "func", out / "sub-01" / "anat"
    for hemi in ("L", "R"):
        stem = next(func.glob(f"*_hemi-{hemi}_space-fsnative_bold.func.gii")).name[: -len(".func.gii")]
        series = load_surf_data(str(func / f"{stem}.func.gii"))
        white = load_surf_mesh(str(anat / f"sub-01_hemi-{hemi}_white.surf.gii"))
        assert series.shape == (len(white.coordinates), 20)  # vertices x volumes
        sidecar = json.loads((func / f"{stem}.json").read_text())
        assert sidecar["RepetitionTime"] == 1.0 and sidecar["SamplingDepths"] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        # the run's 33 slices (112 mm) miss the top and bottom of the brain: those samples are outside
        in_view = sidecar["SamplesKept"] + sidecar["SamplesUnreliable"]
        assert sidecar["SamplesOutsideBrain"] > 0 and sidecar["SamplesUnreliable"] < 0.25 * in_view
        present = np.isfinite(series[:, 0])
        assert present.sum() == len(present) - sidecar["VerticesMissing"] and present.mean() > 0.5
        assert (series[present] > 0).mean() > 0.99
        assert not list(func.glob(f"*_hemi-{hemi}_space-fsLR*"))  # no fsLR spheres in the home: skipped
    preproc = json.loads(next(func.glob("*_space-T1w_desc-preproc_bold.json")).read_text())
    assert any("fsLR:den-32k skipped" in note for note in preproc["ProcessingNotes"])
    report = (out / "sub-01.html").read_text()
    assert "Surface outputs" in report and "fsnative" in report and "mri_vol2surf" in report

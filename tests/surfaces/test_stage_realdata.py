"""The surfaces stage end to end on aomic's T1w downsampled to 2 mm (about a minute: heavy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.surface import load_surf_data, load_surf_mesh

pytest.importorskip("skimage")

pytestmark = [pytest.mark.realdata, pytest.mark.heavy]


def test_surfaces_stage_on_downsampled_aomic(shared_data: Path, real_scan_copy: Any, cli: Any,
                                            tmp_path: Path) -> None:
    bids = real_scan_copy(shared_data / "aomic" / "bids", "sub-0001/anat/sub-0001_T1w.nii.gz", step=2)
    out = tmp_path / "out"
    code, _, _ = cli(bids, out, "participant", "--stages", "smri,surfaces,qc")
    assert code == 0
    anat = out / "sub-0001" / "anat"
    mask = nib.load(anat / "sub-0001_desc-brain_mask.nii.gz")
    inside_mask = np.asarray(mask.dataobj) > 0
    centres = {}
    for hemi in ("L", "R"):
        white = load_surf_mesh(str(anat / f"sub-0001_hemi-{hemi}_white.surf.gii"))
        pial = load_surf_mesh(str(anat / f"sub-0001_hemi-{hemi}_pial.surf.gii"))
        assert white.coordinates.shape == pial.coordinates.shape
        voxel = np.rint(nib.affines.apply_affine(np.linalg.inv(mask.affine), white.coordinates)).astype(int)
        assert inside_mask[tuple(voxel.T)].mean() > 0.99
        thickness = load_surf_data(str(anat / f"sub-0001_hemi-{hemi}_thickness.shape.gii"))
        assert 1.5 < float(thickness.mean()) < 3.5
        assert json.loads((anat / f"sub-0001_hemi-{hemi}_white.json").read_text())["EulerCharacteristic"] == 2
        assert json.loads((anat / f"sub-0001_hemi-{hemi}_pial.json").read_text())["EulerCharacteristic"] == 2
        centres[hemi] = float(white.coordinates[:, 0].mean())
        for name in ("inflated", "sphere", "desc-reg_sphere"):
            mesh = load_surf_mesh(str(anat / f"sub-0001_hemi-{hemi}_{name}.surf.gii"))
            np.testing.assert_array_equal(mesh.faces, white.faces)
        np.testing.assert_allclose(np.linalg.norm(mesh.coordinates, axis=1), 100.0, rtol=1e-3)
        assert load_surf_data(str(anat / f"sub-0001_hemi-{hemi}_sulc.shape.gii")).shape == (len(white.coordinates),)
        area = load_surf_data(str(anat / f"sub-0001_hemi-{hemi}_area.shape.gii"))
        assert area.shape == (len(white.coordinates),) and 40_000 < float(area.sum()) < 150_000  # mm^2 per hemisphere
        registration = json.loads((anat / f"sub-0001_hemi-{hemi}_desc-reg_sphere.json").read_text())
        assert registration["SulcCorrelation"] > registration["SulcCorrelationRotationOnly"]
    assert centres["L"] < centres["R"]  # world x is RAS: the left hemisphere has the smaller x
    ribbon = np.asarray(nib.load(anat / "sub-0001_desc-ribbon_mask.nii.gz").dataobj)
    assert 300_000 < ribbon.sum() * 8 < 900_000  # mm^3 at 2 mm: the cortex is about half a litre

    # per-parcel thickness of the default atlas: cortical parcels measured, deep ones missing (never 0)
    thickness = pd.read_csv(anat / "sub-0001_seg-neurolearnGM108_stat-thickness_morph.tsv", sep="\t",
                            na_values="n/a").iloc[0]
    cortical = thickness[[c for c in thickness.index if "_gm_" in c]].astype(float)
    measured = cortical.dropna()
    assert cortical.notna().mean() > 0.8 and measured.between(0.5, 4.5).all()  # 90 of 100 at 2 mm
    # the parcel pair 27 lies on the medial wall below the thalami: its vertices there are not cortex (no medial
    # wall mask yet), and it measures 0.8-0.9 mm since the deep-grey fill grew; every other parcel is cortex
    assert measured.between(1.0, 4.5).sum() >= len(measured) - 2
    assert not (thickness.drop("participant_id") == 0).any()
    volumes = pd.read_csv(anat / "sub-0001_stat-volume_morph.tsv", sep="\t").iloc[0]
    assert 400 < volumes["cortical_GM"] < 800 and volumes["GM_surface"] > volumes["cortical_GM"]
    assert 300 < volumes["WM_surface"] < 700
    assert set(json.loads((anat / "sub-0001_stat-volume_morph.json").read_text())["Columns"]) >= set(volumes.index[1:])

    # the qc stage measures and shows them
    iqms = json.loads((anat / "sub-0001_T1w.json").read_text())
    assert iqms["surf_intersections"] >= 0 and abs(iqms["surf_thickness_asym"]) < 0.2
    report = (out / "sub-0001.html").read_text()
    assert "Cortical surfaces" in report and "Cortical thickness" in report and "Cortical surfaces (surfaces)" in report

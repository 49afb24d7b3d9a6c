"""Volumes from probabilities, per-parcel GM volume."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.smri.morphometry import (
    mask_volume_ml,
    morphometry_table,
    parcel_gm_volumes,
    tissue_volumes,
)


def _image(data: torch.Tensor) -> Image:
    return Image(data, torch.diag(torch.tensor([2.0, 2.5, 3.0, 1.0], dtype=torch.float64)))


def test_tissue_volumes_in_ml() -> None:
    tissues = torch.zeros(3, 7, 8, 9)
    tissues[0, :2] = 0.5
    tissues[1, 2:4] = 1.0
    tissues[2, 4] = 0.25
    volumes = tissue_volumes(tissues, _image(torch.zeros(7, 8, 9)))
    voxel_ml = 2.0 * 2.5 * 3.0 / 1000
    assert volumes["GM"] == pytest.approx(0.5 * 2 * 72 * voxel_ml)
    assert volumes["WM"] == pytest.approx(2 * 72 * voxel_ml)
    assert volumes["CSF"] == pytest.approx(0.25 * 72 * voxel_ml)
    assert volumes["TIV"] == pytest.approx(volumes["GM"] + volumes["WM"] + volumes["CSF"])
    # with the template's brain mask pulled back (soft at its edge), TIV is that mask's volume
    pulled = torch.zeros(7, 8, 9)
    pulled[:5] = 1.0
    pulled[5] = 0.5
    tiv = mask_volume_ml(_image(pulled))
    assert tiv == pytest.approx(5.5 * 72 * voxel_ml)
    assert tissue_volumes(tissues, _image(pulled), tiv_ml=tiv)["TIV"] == tiv


def test_parcel_volumes_and_table() -> None:
    gm = torch.full((7, 8, 9), 0.5)
    labels = torch.zeros(7, 8, 9)
    labels[:3] = 1
    labels[3:4] = 3
    table = pd.DataFrame({"index": [1, 2, 3], "name": ["a", "b", "c"]})
    parcels = parcel_gm_volumes(_image(gm), _image(labels), table)
    voxel_ml = 2.0 * 2.5 * 3.0 / 1000
    assert parcels == pytest.approx({"a": 0.5 * 216 * voxel_ml, "b": 0.0, "c": 0.5 * 72 * voxel_ml})
    row = morphometry_table({"TIV": 4.0, "GM": 1.0, "WM": 2.0, "CSF": 1.0}, parcels)
    assert list(row.columns) == ["TIV", "GM", "WM", "CSF", "a", "b", "c"] and len(row) == 1

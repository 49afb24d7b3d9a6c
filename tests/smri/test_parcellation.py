"""Default parcellation (deterministic, regenerated identically) and user atlases."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from neurolearn_cli.errors import InputError
from neurolearn_cli.smri.parcellation import (
    CORTICAL_PER_HEMISPHERE,
    DEEP_PER_HEMISPHERE,
    generate_default_atlas,
    kmeans_centres,
    load_atlas,
)


def test_kmeans_finds_separated_clusters() -> None:
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0, 0.0], [30.0, 0.0, 0.0], [0.0, 40.0, 10.0]], dtype=torch.float64)
    points = torch.cat([c + torch.randn(50, 3, generator=generator, dtype=torch.float64) for c in centres])
    found = kmeans_centres(points, 3)
    distances = torch.cdist(centres, found).min(1).values
    assert float(distances.max()) < 1.0


def test_regenerated_default_atlas_equals_the_shipped_one(template_2mm, device) -> None:
    shipped = load_atlas(device)
    regenerated = generate_default_atlas(template_2mm)
    assert torch.equal(shipped.labels.data, regenerated.labels.data)
    assert torch.allclose(shipped.labels.affine, regenerated.labels.affine)
    assert shipped.table.equals(regenerated.table[["index", "name"]])
    n = 2 * (CORTICAL_PER_HEMISPHERE + DEEP_PER_HEMISPHERE)
    assert sorted(torch.unique(shipped.labels.data).long().tolist()) == list(range(n + 1))
    left = regenerated.table[regenerated.table["name"].str.startswith("L_")]
    right = regenerated.table[regenerated.table["name"].str.startswith("R_")]
    assert np.allclose(left["x"].to_numpy(), -right["x"].to_numpy())


def test_user_atlas_with_labels(shared_data, device, tmp_path) -> None:
    folder = shared_data / "atlas"
    image = folder / "tpl-MNI152NLin6Asym_atlas-Schaefer2018v0143_res-02_desc-100Parcels17Networks_dseg.nii.gz"
    table = folder / "atlas-Schaefer2018v0143_desc-100Parcels17Networks_dseg.tsv"
    atlas = load_atlas(device, image, table)
    assert len(atlas.table) == 100 and atlas.table["name"].iloc[0] == "17Networks_LH_VisCent_ExStr_1"
    assert atlas.space == "MNI152NLin6Asym" and "few mm" in atlas.note
    short = tmp_path / "short.tsv"
    pd.read_csv(table, sep="\t").iloc[:50].to_csv(short, sep="\t", index=False)
    with pytest.raises(InputError, match="not in the table"):
        load_atlas(device, image, short)
    with pytest.raises(InputError, match="together"):
        load_atlas(device, image, None)
    bad = tmp_path / "bad.tsv"
    shutil.copy(table, bad)
    bad.write_text("a\tb\n1\tx\n", encoding="utf-8")
    with pytest.raises(InputError, match="columns"):
        load_atlas(device, image, bad)

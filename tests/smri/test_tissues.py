"""Hard labels and tissue maps inside the brain mask, fMRIPrep's label table."""

from __future__ import annotations

import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.smri.tissues import brain_tissues, hard_labels, label_table


def _posteriors() -> torch.Tensor:
    post = torch.zeros(4, 7, 8, 9)
    post[0, :3] = 0.6
    post[3, :3] = 0.4
    post[1, 3:5] = 0.9
    post[3, 3:5] = 0.1
    post[2, 5:] = 0.5
    post[3, 5:] = 0.5
    return post


def test_label_table_matches_fmriprep() -> None:
    table = label_table()
    assert table.to_dict("list") == {"index": [1, 2, 3], "name": ["GM", "WM", "CSF"]}


def test_tissues_renormalised_inside_mask_and_labels() -> None:
    mask_data = torch.ones(7, 8, 9)
    mask_data[:, :, 0] = 0
    mask = Image(mask_data, torch.eye(4, dtype=torch.float64))
    tissues = brain_tissues(_posteriors(), mask)
    inside = mask_data > 0
    assert torch.allclose(tissues.sum(0)[inside], torch.ones(int(inside.sum())))
    assert float(tissues[:, :, :, 0].abs().max()) == 0.0
    dseg = hard_labels(tissues, mask, torch.full((7, 8, 9), 100.0), gm_wm_midpoint=150.0).data
    assert torch.all(dseg[:3, :, 1:] == 1) and torch.all(dseg[3:5, :, 1:] == 2) and torch.all(dseg[5:, :, 1:] == 3)
    assert torch.all(dseg[:, :, 0] == 0)


def test_gm_wm_border_voxels_go_to_the_majority_tissue() -> None:
    # GM mean 120, WM mean 180: a voxel of intensity 160 is two-thirds WM even where the
    # wide GM Gaussian makes GM the more probable class; a voxel whose prior excludes GM
    # stays WM however dark, and CSF keeps the voxels where it is most probable.
    mask = Image(torch.ones(4, 1, 1), torch.eye(4, dtype=torch.float64))
    tissues = torch.tensor([
        [0.7, 0.7, 0.0, 0.2],  # GM
        [0.3, 0.3, 1.0, 0.1],  # WM
        [0.0, 0.0, 0.0, 0.7],  # CSF
    ]).reshape(3, 4, 1, 1)
    corrected = torch.tensor([160.0, 140.0, 130.0, 175.0]).reshape(4, 1, 1)
    dseg = hard_labels(tissues, mask, corrected, gm_wm_midpoint=150.0).data.flatten()
    assert dseg.tolist() == [2.0, 1.0, 2.0, 3.0]


def test_class_mean_intensity_is_the_log_normal_mean() -> None:
    from neurolearn_cli.smri.segmentation import MixtureParameters, class_mean_intensity

    mix = MixtureParameters(
        classes=torch.tensor([0, 1, 1]),
        means=torch.tensor([4.0, 5.0, 5.2]),
        variances=torch.tensor([0.04, 0.01, 0.01]),
        weights=torch.tensor([1.0, 0.25, 0.75]),
        class_weights=torch.ones(2),
    )
    assert abs(class_mean_intensity(mix, 0) - float(torch.exp(torch.tensor(4.02)))) < 1e-3
    expected = 0.25 * float(torch.exp(torch.tensor(5.005))) + 0.75 * float(torch.exp(torch.tensor(5.205)))
    assert abs(class_mean_intensity(mix, 1) - expected) < 1e-3

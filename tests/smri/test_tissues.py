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
    dseg = hard_labels(tissues, mask).data
    assert torch.all(dseg[:3, :, 1:] == 1) and torch.all(dseg[3:5, :, 1:] == 2) and torch.all(dseg[5:, :, 1:] == 3)
    assert torch.all(dseg[:, :, 0] == 0)

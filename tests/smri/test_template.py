"""The bundled template: grids, block averaging, tissue priors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolearn_cli.smri.template import TEMPLATE_NAME, _block_average, _coarse_affine, coarsen


def test_block_average_keeps_world_positions() -> None:
    affine = np.array([[2.0, 0, 0, -7], [0, 2.5, 0, -9], [0, 0, 3, -12], [0, 0, 0, 1]])
    data = torch.arange(7 * 8 * 9, dtype=torch.float32).reshape(7, 8, 9)
    index = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in (7, 8, 9)], indexing="ij"), -1)
    coarse = _block_average(data, 2)
    assert coarse.shape == (4, 4, 5)
    block_centre = index[:2, 2:4, 4:6].reshape(-1, 3).mean(0).double()
    world = affine[:3, :3] @ block_centre.numpy() + affine[:3, 3]
    coarse_affine = _coarse_affine(affine, 2)
    assert np.allclose(coarse_affine[:3, :3] @ np.array([0, 1, 2]) + coarse_affine[:3, 3], world)
    assert float(coarse[0, 1, 2]) == pytest.approx(float(data[:2, 2:4, 4:6].mean()))


def test_template_priors(template_1mm, template_4mm) -> None:
    assert template_1mm.name == TEMPLATE_NAME
    assert template_1mm.t1w.shape3 == (197, 233, 189)
    assert template_4mm.t1w.shape3 == (50, 59, 48)
    assert template_4mm.resolution == pytest.approx(4.0)
    tpl = template_1mm
    tissues = tpl.gm.data + tpl.wm.data + tpl.csf.data
    assert float(tpl.csf.data.min()) >= 0.0 and float(template_4mm.csf.data.min()) >= 0.0
    assert float((tissues - torch.maximum(tpl.mask.data, tpl.gm.data + tpl.wm.data)).abs().max()) < 1e-5
    ml_1 = float(template_1mm.mask.data.sum()) / 1000
    ml_4 = float(template_4mm.mask.data.sum()) * 64 / 1000
    assert ml_4 == pytest.approx(ml_1, rel=1e-5)
    assert 1500 < ml_1 < 2100


def test_coarsen_rejects_non_integer_factors(template_4mm) -> None:
    with pytest.raises(ValueError):
        coarsen(template_4mm, 1.5)

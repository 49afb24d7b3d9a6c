import numpy as np
import pytest
import torch

from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.fmri.motion import (
    MOTION_COLUMNS,
    framewise_displacement,
    motion_parameters,
    relative_rmsd,
)

CENTER = torch.tensor([10.0, -20.0, 15.0], dtype=torch.float64)


def _known_motion() -> tuple[torch.Tensor, torch.Tensor, AffineTransform]:
    rot = torch.tensor(
        [[0.0, 0.0, 0.0], [0.01, -0.02, 0.005], [0.01, -0.02, 0.005], [-0.03, 0.0, 0.02]],
        dtype=torch.float64,
    )
    trans = torch.tensor(
        [[0.0, 0.0, 0.0], [0.5, -0.2, 1.0], [0.6, -0.2, 1.0], [0.0, 0.3, -0.4]], dtype=torch.float64
    )
    return rot, trans, AffineTransform.rigid(rot, trans, CENTER)


def test_parameters_recover_known_motion():
    rot, trans, transforms = _known_motion()
    params = motion_parameters(transforms, CENTER)
    assert list(params.columns) == list(MOTION_COLUMNS)
    np.testing.assert_allclose(params[["trans_x", "trans_y", "trans_z"]], trans.numpy(), atol=1e-9)
    np.testing.assert_allclose(params[["rot_x", "rot_y", "rot_z"]], rot.numpy(), atol=1e-9)


def test_framewise_displacement_is_power_fd():
    rot, trans, transforms = _known_motion()
    fd = framewise_displacement(motion_parameters(transforms, CENTER))
    assert np.isnan(fd.iloc[0])
    assert fd.iloc[1] == pytest.approx(0.5 + 0.2 + 1.0 + 50 * (0.01 + 0.02 + 0.005))
    assert fd.iloc[2] == pytest.approx(0.1)


def test_rmsd_matches_mean_displacement_over_a_sphere():
    _, _, transforms = _known_motion()
    rmsd = relative_rmsd(transforms, CENTER, radius_mm=80.0)
    gen = torch.Generator().manual_seed(1)
    direction = torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    direction /= direction.norm(dim=1, keepdim=True)
    radius = 80.0 * torch.rand(400_000, 1, generator=gen, dtype=torch.float64) ** (1 / 3)
    points = CENTER + direction * radius
    m = transforms.matrix
    for t in range(1, 4):
        before = points @ m[t - 1, :3, :3].T + m[t - 1, :3, 3]
        after = points @ m[t, :3, :3].T + m[t, :3, 3]
        expected = float(((after - before) ** 2).sum(1).mean().sqrt())
        assert rmsd.iloc[t] == pytest.approx(expected, rel=0.01)
    assert np.isnan(rmsd.iloc[0])

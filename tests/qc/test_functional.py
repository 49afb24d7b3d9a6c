"""BOLD IQMs on phantoms with known temporal noise, spikes, ghosts, global signal and motion."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neurolearn_cli.fmri.motion import MOTION_COLUMNS, framewise_displacement
from neurolearn_cli.qc import functional
from tests.qc.conftest import ellipsoid_radius

SHAPE = (24, 26, 20)
N_VOLUMES = 60


def bold_phantom(
    noise: float = 10.0, global_sd: float = 0.0, structure: float = 0.0, seed: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """An ellipsoid brain (1000, 50 outside) with white temporal noise of sd ``noise``.

    ``global_sd`` adds one global signal to every brain voxel; ``structure`` adds
    a spatial gradient of that amplitude across the brain.
    """
    rng = np.random.default_rng(seed)
    radius = ellipsoid_radius(SHAPE, (11.5, 12.5, 9.5), (8.0, 9.0, 7.0))
    mask = radius < 1.0
    base = np.where(mask, 1000.0 + structure * (1.0 - radius), 50.0)[..., None]
    series = (
        base
        + rng.normal(0.0, noise, (*SHAPE, N_VOLUMES))
        + rng.normal(0.0, global_sd, N_VOLUMES) * mask[..., None]
    )
    return torch.from_numpy(series.astype(np.float32)), torch.from_numpy(mask)


def test_tsnr_and_dvars_of_white_noise() -> None:
    bold, mask = bold_phantom()
    assert functional.tsnr(bold, mask) == pytest.approx(100.0, rel=0.05)
    # standardised DVARS of temporally independent noise is 1 by construction
    assert float(functional.voxelwise_std_dvars(bold, mask).mean()) == pytest.approx(1.0, rel=0.1)
    iqms = functional.functional_iqms(bold, mask, (3.0, 3.0, 3.3), 2.0, np.zeros(N_VOLUMES - 1))
    assert iqms["dvars_std"] == pytest.approx(1.0, rel=0.1)
    assert iqms["dvars_vstd"] == pytest.approx(1.0, rel=0.1)
    assert iqms["dvars_nstd"] == pytest.approx(np.sqrt(2.0) * 10.0, rel=0.05)
    assert iqms["snr"] > 50.0


def test_gcor_of_a_known_global_signal() -> None:
    bold, mask = bold_phantom(noise=10.0, global_sd=10.0)
    # every pair of voxels correlates at a^2 / (a^2 + b^2) = 0.5
    assert functional.gcor(bold, mask) == pytest.approx(0.5, rel=0.1)
    independent, _ = bold_phantom(noise=10.0)
    assert functional.gcor(independent, mask) < 0.01


def test_outlier_fraction_and_quality_index_see_injected_spikes() -> None:
    bold, mask = bold_phantom(structure=600.0)
    rng = np.random.default_rng(4)
    inside = mask.nonzero()
    hit = inside[rng.choice(inside.shape[0], size=inside.shape[0] // 5, replace=False)]
    bold[hit[:, 0], hit[:, 1], hit[:, 2], 30] += 200.0
    fractions = functional.outlier_fraction(bold, mask)
    assert float(fractions[30]) == pytest.approx(0.2, abs=0.01)
    assert float(torch.cat([fractions[:30], fractions[31:]]).max()) < 0.01
    quality = functional.quality_index(bold, mask)
    assert float(quality[0]) < 0.01
    assert float(quality[30]) > 10 * float(quality[0])


def test_gsr_of_a_known_ghost() -> None:
    mask = torch.zeros(32, 40, 12, dtype=torch.bool)
    mask[12:20, 6:14, 3:9] = True
    image = torch.full(mask.shape, 10.0)
    image[mask] = 1000.0
    image[12:14, 6:14, 3:9] = 3000.0  # the signal is the median in the mask (1000), not the mean
    ghost = torch.roll(mask, shifts=20, dims=1) & ~mask
    image[ghost] += 50.0
    assert functional.gsr(image, mask, 1) == pytest.approx(50.0 / 1000.0, rel=1e-6)
    assert abs(functional.gsr(image, mask, 0)) < 0.01


def test_fd_summaries_from_known_motion() -> None:
    n = 41
    params = pd.DataFrame(np.zeros((n, 6)), columns=list(MOTION_COLUMNS))
    params["trans_x"] = np.where(np.arange(n) % 2, 0.3, 0.0)  # 0.3 mm jump at every volume
    params["rot_z"] = np.arange(n) * 0.001  # 0.05 mm of arc per volume at 50 mm
    params.loc[20:, "trans_y"] = 1.0  # one extra 1 mm jump into volume 20
    fd = framewise_displacement(params).to_numpy()
    stats = functional.fd_stats(fd)
    assert stats["fd_mean"] == pytest.approx(0.35 + 1.0 / 40)
    assert stats["fd_num"] == 40
    assert stats["fd_perc"] == pytest.approx(100 * 40 / 41)
    calm = functional.fd_stats(fd / 2)  # 0.175 mm, and 0.675 mm into volume 20
    assert (calm["fd_num"], calm["fd_perc"]) == (1, pytest.approx(100 / 41))


def test_functional_iqms_drop_dummy_volumes() -> None:
    bold, mask = bold_phantom()
    bold[..., :3] *= 1.5  # three bright non-steady-state volumes
    spacing = (3.0, 3.0, 3.3)
    with_dummies = functional.functional_iqms(
        bold, mask, spacing, 2.0, np.zeros(N_VOLUMES - 1), dummy_trs=3
    )
    assert with_dummies["tsnr"] == pytest.approx(100.0, rel=0.05)
    assert (
        functional.functional_iqms(bold, mask, spacing, 2.0, np.zeros(N_VOLUMES - 1))["tsnr"] < 20
    )
    assert (with_dummies["dummy_trs"], with_dummies["size_t"], with_dummies["spacing_tr"]) == (
        3,
        60,
        2.0,
    )
    assert with_dummies["spacing_z"] == 3.3
    expected = {
        "efc",
        "fber",
        "gcor",
        "gsr_x",
        "gsr_y",
        "aor",
        "aqi",
        "fd_mean",
        "fwhm_avg",
        "summary_fg_median",
    }
    assert expected <= set(with_dummies)

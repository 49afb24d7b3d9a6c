"""Shared IQMs against numpy/scipy and against phantoms with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.stats
import torch

from neurolearn_cli.qc import measures
from tests.qc.conftest import make_head


def test_percentile_and_summary_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(1)
    values = rng.gamma(2.0, 3.0, size=1001)
    tensor = torch.from_numpy(values)
    for q in (0.0, 5.0, 37.5, 50.0, 95.0, 100.0):
        assert measures.percentile(tensor, q) == pytest.approx(np.percentile(values, q), rel=1e-12)
    assert measures.median(tensor[:1000]) == pytest.approx(np.median(values[:1000]), rel=1e-12)
    stats = measures.summary_stats(
        tensor.reshape(7, 11, 13), torch.ones(7, 11, 13, dtype=torch.bool)
    )
    assert stats["mean"] == pytest.approx(values.mean())
    assert stats["stdv"] == pytest.approx(values.std())
    assert stats["k"] == pytest.approx(scipy.stats.kurtosis(values))
    assert stats["mad"] == pytest.approx(
        np.median(np.abs(values - np.median(values))) / 0.6744897501960817
    )
    assert (stats["p05"], stats["p95"], stats["n"]) == pytest.approx(
        (np.percentile(values, 5), np.percentile(values, 95), 1001)
    )


def test_summary_of_empty_mask_is_missing_not_zero() -> None:
    stats = measures.summary_stats(torch.ones(3, 4, 5), torch.zeros(3, 4, 5, dtype=torch.bool))
    assert stats.pop("n") == 0.0
    assert set(stats.values()) == {measures.Missing("the region is empty")}
    named = measures.summary_stats(torch.ones(3, 4, 5), torch.zeros(3, 4, 5, dtype=torch.bool), "the air")
    assert named["mean"] == measures.Missing("the air is empty")
    constant = measures.summary_stats(torch.ones(3, 4, 5), torch.ones(3, 4, 5, dtype=torch.bool))
    assert isinstance(constant["k"], measures.Missing) and constant["stdv"] == 0.0


def test_snr_formula() -> None:
    assert measures.snr(100.0, 10.0, 5) == pytest.approx(10.0 / math.sqrt(5 / 4))
    assert isinstance(measures.snr(100.0, 0.0, 5), measures.Missing)


def test_efc_rises_and_fber_falls_with_background_noise() -> None:
    efcs, fbers = [], []
    for sigma in (5.0, 20.0, 60.0):
        phantom = make_head(sigma=sigma)
        efcs.append(measures.efc(phantom.t1w))
        fbers.append(measures.fber(phantom.t1w, phantom.head))
    assert efcs[0] < efcs[1] < efcs[2] < 1.0
    assert fbers[0] > fbers[1] > fbers[2] > 1.0


def test_efc_extremes() -> None:
    flat = torch.full((7, 8, 9), 3.0)
    assert measures.efc(flat) == pytest.approx(1.0)
    spike = torch.zeros(7, 8, 9)
    spike[3, 4, 5] = 10.0
    assert measures.efc(spike) == pytest.approx(0.0, abs=1e-9)


def test_fber_of_skull_stripped_image_is_undefined() -> None:
    phantom = make_head()
    stripped = phantom.t1w * phantom.head
    assert measures.fber(stripped, phantom.head) == measures.Missing(
        "the background's median energy is zero (skull-stripped or zero-filled image)"
    )
    assert measures.fber(phantom.t1w, torch.ones_like(phantom.head)) == measures.Missing("no background voxels")


def test_fwhm_of_gaussian_smoothed_noise() -> None:
    rng = np.random.default_rng(2)
    sigma_vox = 2.0
    field = ndi.gaussian_filter(rng.normal(size=(48, 52, 56)), sigma_vox, mode="wrap")
    spacing = (1.5, 2.0, 2.5)
    mask = torch.zeros(field.shape, dtype=torch.bool)
    mask[4:-4, 4:-4, 4:-4] = True
    estimate = measures.fwhm(torch.from_numpy(field.astype(np.float32)), mask, spacing)
    truth_vox = math.sqrt(8.0 * math.log(2.0)) * sigma_vox
    for value, step in zip(estimate, spacing, strict=True):
        assert value == pytest.approx(truth_vox * step, rel=0.10)
    voxels = measures.fwhm_voxels(estimate, spacing)
    assert voxels["fwhm_avg"] == pytest.approx(truth_vox, rel=0.10)


def test_fwhm_undefined_on_constant_image() -> None:
    mask = torch.ones(7, 8, 9, dtype=torch.bool)
    estimate = measures.fwhm(torch.ones(7, 8, 9), mask, (1.0, 1.0, 1.0))
    assert all(isinstance(value, measures.Missing) for value in estimate)
    voxels = measures.fwhm_voxels(estimate, (1.0, 1.0, 1.0))
    assert voxels["fwhm_avg"] == estimate[0]  # the mean of undefined values is undefined, with their reason


def test_geometry_keys() -> None:
    assert measures.geometry((7, 8, 9), (1.0, 1.5, 2.0)) == {
        "size_x": 7,
        "size_y": 8,
        "size_z": 9,
        "spacing_x": 1.0,
        "spacing_y": 1.5,
        "spacing_z": 2.0,
    }

"""T1w IQMs on the head phantom, whose SNR, contrast, volumes and bias are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurolearn_cli.qc import anatomical, masks, measures
from tests.qc.conftest import DSEG, SIGMA, TISSUE_VALUES, HeadPhantom, probabilities_from_dseg


@pytest.fixture(scope="module")
def phantom_iqms(head_phantom: HeadPhantom) -> dict[str, float]:
    p = head_phantom
    head = masks.head_mask(p.t1w)
    air = masks.air_mask(p.t1w, head, p.brain, p.affine)
    artifacts = masks.artifact_mask(p.t1w, air, head, p.spacing)
    probabilities = probabilities_from_dseg(p.dseg)
    return anatomical.anatomical_iqms(
        p.t1w, p.spacing, p.brain, probabilities, head, air, artifacts, priors=probabilities
    )


def test_snr_within_five_percent_of_truth(phantom_iqms: dict[str, float]) -> None:
    for tissue in ("csf", "gm", "wm"):
        truth = TISSUE_VALUES[tissue] / SIGMA
        assert phantom_iqms[f"snr_{tissue}"] == pytest.approx(truth, rel=0.05)
        # Dietrich: the Rayleigh air background gives sigma back through sqrt((4 - pi) / 2)
        assert phantom_iqms[f"snrd_{tissue}"] == pytest.approx(truth, rel=0.05)
    mean_truth = np.mean([TISSUE_VALUES[t] / SIGMA for t in ("csf", "gm", "wm")])
    assert phantom_iqms["snr_total"] == pytest.approx(mean_truth, rel=0.05)


def test_contrast_measures_match_truth(phantom_iqms: dict[str, float]) -> None:
    contrast = TISSUE_VALUES["wm"] - TISSUE_VALUES["gm"]
    air_sd = SIGMA * math.sqrt((4.0 - math.pi) / 2.0)
    assert phantom_iqms["cnr"] == pytest.approx(
        contrast / math.sqrt(air_sd**2 + 2 * SIGMA**2), rel=0.05
    )
    assert phantom_iqms["cjv"] == pytest.approx(2 * SIGMA / contrast, rel=0.05)
    assert phantom_iqms["summary_wm_median"] == pytest.approx(TISSUE_VALUES["wm"], rel=0.01)
    assert phantom_iqms["summary_bg_stdv"] == pytest.approx(air_sd, rel=0.05)
    assert 0.9 < phantom_iqms["wm2max"] < 1.0


def test_volume_overlap_and_geometry(
    head_phantom: HeadPhantom, phantom_iqms: dict[str, float]
) -> None:
    counts = {
        t: int((head_phantom.dseg == DSEG[t]).sum()) for t in ("csf", "gm", "wm")
    }
    for tissue, count in counts.items():
        assert phantom_iqms[f"icvs_{tissue}"] == pytest.approx(count / sum(counts.values()))
        assert phantom_iqms[f"tpm_overlap_{tissue}"] == pytest.approx(1.0)
    assert phantom_iqms["qi_1"] == 0.0
    assert (phantom_iqms["size_x"], phantom_iqms["size_y"], phantom_iqms["size_z"]) == (40, 44, 48)
    assert phantom_iqms["spacing_z"] == 2.0
    assert "inu_med" not in phantom_iqms


def test_inu_from_known_linear_bias() -> None:
    brain = torch.zeros(30, 12, 14, dtype=torch.bool)
    brain[5:25] = True
    x = torch.arange(30, dtype=torch.float32).reshape(30, 1, 1).expand(30, 12, 14)
    bias = 0.8 + 0.02 * x  # 0.9 ... 1.28 across the brain, uniformly
    inu = anatomical.inu_stats(bias, brain)
    assert inu["inu_med"] == pytest.approx(0.8 + 0.02 * 14.5, rel=1e-5)
    assert inu["inu_range"] == pytest.approx(0.9 * 0.02 * 19, rel=0.05)
    flat = anatomical.inu_stats(torch.full((30, 12, 14), 1.25), brain)
    assert flat == pytest.approx({"inu_med": 1.25, "inu_range": 0.0})


def test_bias_field_worsens_cjv(head_phantom: HeadPhantom) -> None:
    p = head_phantom
    probabilities = probabilities_from_dseg(p.dseg)
    gradient = torch.linspace(0.7, 1.3, p.t1w.shape[0]).reshape(-1, 1, 1)
    args = (p.brain, probabilities, p.head, ~p.head, torch.zeros_like(p.head))
    clean = anatomical.anatomical_iqms(p.t1w, p.spacing, *args)
    biased = anatomical.anatomical_iqms(
        p.t1w * gradient, p.spacing, *args, bias=gradient.expand_as(p.t1w)
    )
    assert biased["cjv"] > 2 * clean["cjv"]
    assert biased["inu_range"] > 0.2


def test_tpm_overlap_and_rpve_known_values() -> None:
    p = torch.tensor([1.0, 0.5, 0.0, 0.0])
    q = torch.tensor([0.5, 0.5, 0.5, 0.0])
    assert anatomical.tpm_overlap(p, q) == pytest.approx(1.0 / 2.0)
    soft = torch.linspace(0.01, 1.0, 100)
    # values within [P2, P98]: those > 0.5 add p, those <= 0.5 add 1 - p; the 2 + 2 cut ones add 1
    kept = soft[
        (soft >= np.percentile(soft.numpy(), 2)) & (soft <= np.percentile(soft.numpy(), 98))
    ]
    expected = (kept[kept > 0.5].sum() + (1 - kept[kept <= 0.5]).sum() + (100 - kept.numel())) / 100
    assert anatomical.rpve(soft) == pytest.approx(float(expected))


def test_qi1_counts_artifacts_in_air() -> None:
    air = torch.zeros(10, 10, 10, dtype=torch.bool)
    air[:5] = True
    artifacts = torch.zeros_like(air)
    artifacts[0, :2, :5] = True
    assert anatomical.qi1(air & ~artifacts, artifacts) == pytest.approx(10 / 500)
    assert isinstance(anatomical.qi1(torch.zeros_like(air), artifacts), measures.Missing)
    assert anatomical.qi1(air, torch.zeros_like(air)) == 0.0  # a clean background: truly 0, not missing


def test_tissue_masks_threshold_erode_and_survive_an_empty_class() -> None:
    wm = torch.zeros(9, 10, 11)
    wm[2:7, 2:8, 2:9] = 0.9
    probabilities = {"wm": wm, "gm": torch.zeros_like(wm), "csf": torch.full_like(wm, 0.5)}
    fine = anatomical.tissue_masks(probabilities, (1.0, 1.0, 1.0))
    assert int(fine["wm"].sum()) == 3 * 4 * 5  # eroded by one voxel on every side
    assert not bool(fine["gm"].any()) and not bool(fine["csf"].any())
    coarse = anatomical.tissue_masks(probabilities, (2.0, 2.0, 2.0))
    assert int(coarse["wm"].sum()) == 5 * 6 * 7  # voxels of 1.9 mm or more are not eroded


def test_tpm_overlap_on_strided_priors(head_phantom: HeadPhantom) -> None:
    p = head_phantom
    probabilities = probabilities_from_dseg(p.dseg)
    shifted = {t: torch.roll(m, 1, dims=0)[::2, ::2, ::2] for t, m in probabilities.items()}
    head = masks.head_mask(p.t1w)
    air = masks.air_mask(p.t1w, head, p.brain, p.affine)
    artifacts = masks.artifact_mask(p.t1w, air, head, p.spacing)
    iqms = anatomical.anatomical_iqms(
        p.t1w,
        p.spacing,
        p.brain,
        probabilities,
        head,
        air,
        artifacts,
        priors=shifted,
        prior_stride=2,
    )
    for tissue, prior in shifted.items():
        expected = anatomical.tpm_overlap(probabilities[tissue][::2, ::2, ::2], prior)
        assert iqms[f"tpm_overlap_{tissue}"] == pytest.approx(expected)
        assert 0.3 < expected < 1.0  # the one-voxel shift is seen


def test_background_measures_need_the_untruncated_background(head_phantom: HeadPhantom) -> None:
    # smri's corrected T1w is 0 below 4 % of the robust maximum (its segmentation leaves that out):
    # measured on it, the air's median energy is 0 and FBER is undefined; qc measures the conformed T1w
    p = head_phantom
    truncated = torch.where(p.t1w > 0.04 * float(p.t1w.quantile(0.99)), p.t1w, torch.zeros_like(p.t1w))
    assert isinstance(measures.fber(truncated, p.head), measures.Missing)
    assert measures.fber(p.t1w, p.head) > 100.0

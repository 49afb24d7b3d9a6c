"""T1w image-quality metrics with MRIQC's names and definitions.

Inputs are tensors on one device: the T1w (preferably after bias correction,
as MRIQC's ``in_noinu``), the brain mask, GM/WM/CSF probability maps, and the
head, air and artifact masks of :mod:`neurolearn_cli.qc.masks`.
:func:`anatomical_iqms` returns the flat dictionary MRIQC writes to
``sub-<label>_T1w.json``.

Differences from MRIQC (see also :mod:`~neurolearn_cli.qc.measures` and
:mod:`~neurolearn_cli.qc.masks`):

- Tissue regions for the summaries are ``probability > 0.85``, eroded once
  (18-connected in MRIQC, a 3x3x3 cube here) when all voxels are under 1.9 mm,
  as MRIQC up to 23.x; the background is the artifact-free air mask. MRIQC 24
  weights every voxel by its probability instead (``n`` the summed
  probability, ``mad`` and ``k`` on ``p > 0.5 max p``): its tissue medians
  and spreads take in partial-volume voxels, so its ``cjv`` is higher and its
  ``cnr`` lower than ours on the same image (``benchmarks/qc.py``). The thresholded
  regions are kept because they do not depend on how soft a segmentation's
  probabilities are (ours and FAST's differ).
- The qc stage measures the reference T1w as the smri stage conformed it
  (native resolution, RAS voxel order, the median of the runs when there are
  several) divided by smri's bias field, background included, where MRIQC
  measures the first raw T1w reoriented to RAS after N4; with one run the
  grids match.
- ``inu_*`` summarise whatever multiplicative bias field the caller estimated
  (MRIQC: N4's), within the brain mask.
- ``tpm_overlap_*`` compare with template priors the caller resampled to the
  T1w grid (MRIQC: MNI ICBM 2009c priors; ours: the template the run uses).
  The qc stage evaluates them on every 2nd voxel along each axis
  (``prior_stride``; warping the priors was its costliest step): on
  studyforrest this moves them by < 0.001.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from neurolearn_cli.engine.morphology import erode
from neurolearn_cli.engine.reduce import fixed_sum
from neurolearn_cli.qc.masks import frame_mask
from neurolearn_cli.qc.measures import (
    Measure,
    Missing,
    efc,
    fber,
    fwhm,
    fwhm_voxels,
    geometry,
    on_defined,
    percentile,
    snr,
    summary_stats,
)

TISSUES = ("csf", "gm", "wm")

DIETRICH_FACTOR = math.sqrt((4.0 - math.pi) / 2.0)  # Rayleigh std -> Gaussian sigma


def cjv(mu_wm: float, mu_gm: float, sigma_wm: float, sigma_gm: float) -> Measure:
    r"""Coefficient of joint variation (Ganzetti 2016); lower is better.

    .. math:: \mathrm{CJV} = \frac{\sigma_{WM} + \sigma_{GM}}{|\mu_{WM} - \mu_{GM}|}
    """
    if mu_wm == mu_gm:
        return Missing("equal WM and GM intensities")
    return float((sigma_wm + sigma_gm) / abs(mu_wm - mu_gm))


def cnr(mu_wm: float, mu_gm: float, sigma_air: float, sigma_wm: float, sigma_gm: float) -> Measure:
    r"""Contrast-to-noise ratio (Magnotta 2006); higher is better.

    .. math:: \mathrm{CNR} = \frac{|\mu_{GM} - \mu_{WM}|}{\sqrt{\sigma_B^2 + \sigma_{WM}^2 + \sigma_{GM}^2}}
    """
    denominator = math.sqrt(sigma_air**2 + sigma_wm**2 + sigma_gm**2)
    return float(abs(mu_wm - mu_gm) / denominator) if denominator > 0 else Missing("no noise in the tissues or the air")


def snr_dietrich(mu_fg: float, mad_air: float, sigma_air: float) -> Measure:
    r"""SNR against the air background (Dietrich 2007, eq. A.12).

    .. math:: \mathrm{SNR_d} = \frac{\mu_F}{\sqrt{2/(4-\pi)}\,\sigma_\mathrm{air}}

    As MRIQC, :math:`\sigma_\mathrm{air}` is the air's normalised MAD when it
    exceeds 1, else its standard deviation (quantised, near-empty backgrounds);
    missing when both vanish.
    """
    if mad_air > 1.0:
        return float(DIETRICH_FACTOR * mu_fg / mad_air)
    if sigma_air <= 1e-3:
        return Missing("no noise in the air background")
    return float(DIETRICH_FACTOR * mu_fg / sigma_air)


def wm2max(data: torch.Tensor, mu_wm: float) -> Measure:
    r"""White-matter-to-maximum ratio; around [0.6, 0.8] is expected.

    .. math:: \mathrm{WM2MAX} = \frac{\mu_{WM}}{P_{99.95}(X)}
    """
    top = percentile(data, 99.95)
    return float(mu_wm / top) if top > 0 else Missing("no positive intensities")


def qi1(air: torch.Tensor, artifacts: torch.Tensor) -> Measure:
    r"""Mortamet's QI1: the artifactual fraction of the air ("hat") mask; near 0 is better.

    .. math:: \mathrm{QI_1} = \frac{N_\mathrm{art}}{N_\mathrm{air} + N_\mathrm{art}}

    ``air`` excludes the artifacts. Missing for an empty air mask (skull-stripped
    input; MRIQC writes ``-1``). A background of pure noise gives exactly 0.
    """
    n_air, n_art = int(air.sum()), int(artifacts.sum())
    if n_air < 1:
        return Missing("no air background (skull-stripped or cropped image)")
    return float(n_art / (n_air + n_art))


def volume_fractions(probabilities: Mapping[str, torch.Tensor]) -> dict[str, Measure]:
    r"""Intracranial volume fractions ``icvs_*``.

    .. math:: \mathrm{ICV}^k = \frac{\sum_i p^k_i}{\sum_{k'} \sum_i p^{k'}_i}
    """
    totals = {tissue: float(fixed_sum(probabilities[tissue], dtype=torch.float64)) for tissue in TISSUES}
    grand = sum(totals.values())
    if grand <= 0:
        return dict.fromkeys(totals, Missing("empty tissue probability maps"))
    return {tissue: value / grand for tissue, value in totals.items()}


def rpve(probability: torch.Tensor) -> Measure:
    r"""Residual partial-volume error of one tissue map; lower is better.

    With :math:`p` clipped to [0, 1], :math:`N` the voxels with :math:`p > 0` and
    values outside :math:`[P_2, P_{98}]` of the positive values set to zero:

    .. math::
        \mathrm{rPVE} = \frac{1}{N}\Big[\sum_{p_i > 0.5} p_i + \sum_{0 < p_i \le 0.5} (1 - p_i)\Big]

    (MRIQC's code; its second sum also counts the voxels zeroed by the
    percentile cut, and so does this one.)
    """
    positive = probability[probability > 0].to(torch.float64).clamp_max(1.0)
    if positive.numel() == 0:
        return Missing("empty tissue probability map")
    low, high = percentile(positive, 2.0), percentile(positive, 98.0)
    kept = torch.where((positive < low) | (positive > high), torch.zeros_like(positive), positive)
    total = fixed_sum(kept[kept > 0.5]) + fixed_sum(1.0 - kept[kept <= 0.5])
    return float(total / positive.numel())


def tpm_overlap(probability: torch.Tensor, prior: torch.Tensor) -> Measure:
    r"""Fuzzy Jaccard overlap of a tissue map with its template prior; higher is better.

    .. math:: J = \frac{\sum_i \min(p_i, q_i)}{\sum_i \max(p_i, q_i)}
    """
    p, q = probability.to(torch.float64), prior.to(torch.float64)
    denominator = float(fixed_sum(torch.maximum(p, q)))
    if denominator <= 0:
        return Missing("empty tissue map and prior")
    return float(fixed_sum(torch.minimum(p, q))) / denominator


def inu_stats(bias: torch.Tensor, brain: torch.Tensor) -> dict[str, Measure]:
    r"""Bias-field summaries in the brain: ``inu_med`` (median) and ``inu_range`` (:math:`|P_{95} - P_5|`)."""
    values = bias[brain]
    if values.numel() == 0:
        return dict.fromkeys(("inu_med", "inu_range"), Missing("empty brain mask"))
    return {
        "inu_med": percentile(values, 50.0),
        "inu_range": abs(percentile(values, 95.0) - percentile(values, 5.0)),
    }


def tissue_masks(
    probabilities: Mapping[str, torch.Tensor],
    spacing: tuple[float, float, float],
    threshold: float = 0.85,
) -> dict[str, torch.Tensor]:
    """Regions for the summaries: ``p > threshold``, eroded once when every voxel size is under 1.9 mm."""
    masks = {tissue: probabilities[tissue] > threshold for tissue in TISSUES}
    if not all(float(step) < 1.9 for step in spacing):
        return masks
    return {tissue: erode(mask) for tissue, mask in masks.items()}


def anatomical_iqms(
    t1w: torch.Tensor,
    spacing: tuple[float, float, float],
    brain: torch.Tensor,
    probabilities: Mapping[str, torch.Tensor],
    head: torch.Tensor,
    air: torch.Tensor,
    artifacts: torch.Tensor,
    bias: torch.Tensor | None = None,
    priors: Mapping[str, torch.Tensor] | None = None,
    prior_stride: int = 1,
) -> dict[str, Measure]:
    """All T1w IQMs as MRIQC's flat dictionary (``cjv``, ``snr_gm``, ``summary_wm_p95``, ...).

    Parameters
    ----------
    t1w : Tensor
        3D intensities (bias-corrected when available); negative values count as 0.
    spacing : tuple of float
        Voxel sizes in mm.
    brain, head, air, artifacts : Tensor
        Bool masks: brain, head, air ("hat", including artifacts) and artifacts.
    probabilities : mapping
        ``{"csf", "gm", "wm"}`` probability maps in [0, 1].
    bias : Tensor, optional
        Multiplicative bias field; gives ``inu_med`` and ``inu_range``.
    priors : mapping, optional
        Template priors ``{"csf", "gm", "wm"}`` on the T1w grid, or on every
        ``prior_stride``-th voxel of it; give ``tpm_overlap_*``.
    prior_stride : int
        The priors' sampling step along each axis (1: the full T1w grid).
    """
    data = t1w.clamp_min(0.0).contiguous()
    clean_air = air & ~artifacts
    stats = {
        tissue: summary_stats(data, mask, f"the {tissue.upper()} region")
        for tissue, mask in tissue_masks(probabilities, spacing).items()
    }
    stats["bg"] = summary_stats(data, clean_air, "the air background")
    iqms: dict[str, Measure] = {
        f"summary_{region}_{key}": value
        for region, summary in stats.items()
        for key, value in summary.items()
    }
    bg = stats["bg"]
    snrs = {
        tissue: on_defined(snr, stats[tissue]["median"], stats[tissue]["stdv"], stats[tissue]["n"])
        for tissue in TISSUES
    }
    snrds = {
        tissue: on_defined(snr_dietrich, stats[tissue]["median"], bg["mad"], bg["stdv"])
        for tissue in TISSUES
    }
    for name, values in (("snr", snrs), ("snrd", snrds)):
        iqms.update({f"{name}_{tissue}": value for tissue, value in values.items()})
        iqms[f"{name}_total"] = on_defined(lambda *v: sum(v) / len(v), *values.values())
    wm, gm = stats["wm"], stats["gm"]
    iqms["cnr"] = on_defined(cnr, wm["median"], gm["median"], bg["stdv"], wm["stdv"], gm["stdv"])
    iqms["cjv"] = on_defined(cjv, wm["median"], gm["median"], wm["mad"], gm["mad"])
    iqms["wm2max"] = on_defined(lambda mu: wm2max(data, mu), wm["median"])
    frame = frame_mask(t1w)
    iqms["efc"] = efc(data, frame)
    iqms["fber"] = fber(data, head, frame)
    iqms["qi_1"] = qi1(clean_air, artifacts)
    iqms.update(fwhm_voxels(fwhm(data, brain, spacing), spacing))
    iqms.update(
        {f"icvs_{tissue}": value for tissue, value in volume_fractions(probabilities).items()}
    )
    iqms.update({f"rpve_{tissue}": rpve(probabilities[tissue]) for tissue in TISSUES})
    if bias is not None:
        iqms.update(inu_stats(bias, brain))
    if priors is not None:
        iqms.update(
            {
                f"tpm_overlap_{tissue}": tpm_overlap(
                    probabilities[tissue][::prior_stride, ::prior_stride, ::prior_stride],
                    priors[tissue],
                )
                for tissue in TISSUES
            }
        )
    iqms.update(geometry(tuple(t1w.shape), spacing))
    return iqms

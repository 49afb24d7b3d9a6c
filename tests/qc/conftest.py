"""Phantoms with known tissue intensities, noise and geometry for the QC tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

SHAPE = (40, 44, 48)
SIGMA = 20.0
TISSUE_VALUES = {"wm": 1000.0, "gm": 600.0, "csf": 300.0, "skull": 150.0, "scalp": 400.0}
# Shells of the normalised ellipsoid radius: WM < 0.5 <= GM < 0.7 <= CSF < 0.8 <= skull < 0.9 <= scalp < 1
SHELLS = (("wm", 0.5), ("gm", 0.7), ("csf", 0.8), ("skull", 0.9), ("scalp", 1.0))
DSEG = {"gm": 1, "wm": 2, "csf": 3}


@dataclass(frozen=True)
class HeadPhantom:
    """A T1w-like head: tissue shells, Rician noise of known sigma, masks and labels."""

    t1w: torch.Tensor
    truth: torch.Tensor
    dseg: torch.Tensor
    brain: torch.Tensor
    head: torch.Tensor
    affine: np.ndarray
    spacing: tuple[float, float, float]


def probabilities_from_dseg(dseg: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-hot float maps ``{"csf", "gm", "wm"}`` from a hard segmentation (1 GM, 2 WM, 3 CSF)."""
    return {tissue: (dseg == DSEG[tissue]).to(torch.float32) for tissue in ("csf", "gm", "wm")}


def ellipsoid_radius(
    shape: tuple[int, int, int], centre: tuple[float, ...], radii: tuple[float, ...]
) -> np.ndarray:
    """Normalised ellipsoid radius of every voxel (1 on the surface)."""
    grids = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    return np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True)))


def make_head(sigma: float = SIGMA, seed: int = 0, spacing: float = 2.0) -> HeadPhantom:
    """The head phantom: magnitude of the truth plus complex Gaussian noise of ``sigma``."""
    rng = np.random.default_rng(seed)
    radius = ellipsoid_radius(SHAPE, (19.5, 21.0, 26.0), (15.0, 17.0, 16.0))
    truth = np.zeros(SHAPE)
    dseg = np.zeros(SHAPE, dtype=np.int16)
    inner = 0.0
    for name, outer in SHELLS:
        shell = (radius >= inner) & (radius < outer)
        truth[shell] = TISSUE_VALUES[name]
        dseg[shell] = DSEG.get(name, 0)
        inner = outer
    noisy = np.hypot(truth + rng.normal(0.0, sigma, SHAPE), rng.normal(0.0, sigma, SHAPE))
    return HeadPhantom(
        t1w=torch.from_numpy(noisy.astype(np.float32)),
        truth=torch.from_numpy(truth.astype(np.float32)),
        dseg=torch.from_numpy(dseg),
        brain=torch.from_numpy(radius < 0.8),
        head=torch.from_numpy(radius < 1.0),
        affine=np.diag([spacing, spacing, spacing, 1.0]),
        spacing=(spacing, spacing, spacing),
    )


@pytest.fixture(scope="module")
def head_phantom() -> HeadPhantom:
    """The head phantom with the default noise (sigma 20)."""
    return make_head()


EVIL = "<script>alert(1)</script>"


@pytest.fixture(scope="session")
def sample_reports() -> dict[str, str]:
    """A participant page (phantom figures, IQMs, hostile metadata) and a group page, rendered."""
    from neurolearn_cli.boilerplate.facts import RunFacts, Software
    from neurolearn_cli.boilerplate.methods import methods
    from neurolearn_cli.qc import figures, group, group_report, report

    phantom = make_head()
    data = phantom.t1w.numpy()
    params = np.zeros((30, 6))
    params[:, 0] = np.linspace(0.0, 0.6, 30)
    params[:, 5] = np.linspace(0.0, 0.01, 30)
    fd = np.r_[np.nan, np.abs(np.diff(params[:, 0])) + 50 * np.abs(np.diff(params[:, 5]))]
    fd[12] = 0.9
    anat = report.ImageQC(
        bids_name=f"sub-{EVIL}_T1w",
        figures=(
            report.ReportFigure(
                "Brain mask and tissues",
                figures.mosaic(data, phantom.brain.numpy(), phantom.dseg.numpy()),
            ),
            report.ReportFigure(
                "Normalization",
                figures.normalization_check(data, phantom.truth.numpy()),
                caption=EVIL,
            ),
        ),
        iqms={"cjv": 0.41, "snr_wm": 13.2, "size_x": 40},
        metadata={"Manufacturer": EVIL, "RepetitionTime": 2.3},
    )
    signals = np.random.default_rng(2).normal(size=(30, 3))
    signals[:, 1] += signals[:, 0]
    correlations = pd.DataFrame(
        np.corrcoef(signals.T),
        index=["global_signal", EVIL, "$x$"],
        columns=["global_signal", EVIL, "$x$"],
    )
    func = report.ImageQC(
        bids_name="sub-01_task-rest_bold",
        figures=(
            report.ReportFigure("Head motion", figures.motion_traces(params, fd, 2.0, threshold=0.5)),
            report.ReportFigure(
                "Confound correlations",
                figures.confounds_correlation(correlations, "global_signal"),
                caption=f"strongest: {EVIL}",
            ),
        ),
        iqms={"tsnr": 55.0, "fd_mean": 0.12},
    )
    participant = report.ParticipantReport(
        participant=EVIL,
        anat=(anat,),
        func=(func,),
        methods=methods(RunFacts(Software("0.0", "CPU", {"torch": "2.x"}), qc_t1w=1, qc_bold=1)),
        errors=(f"fmap: {EVIL}",),
    )
    rng = np.random.default_rng(5)
    records = [
        {
            "bids_name": f"sub-{k:02d}_T1w",
            **{
                name: float(v)
                for name, v in zip(("cjv", "cnr", "efc"), rng.normal(1.0, 0.1, 3), strict=True)
            },
        }
        for k in range(1, 13)
    ]
    records[3]["cjv"] = 3.0
    records.append(
        {
            "bids_name": "sub-13_T1w",
            "participant_id": "javascript:alert(1)",
            "cjv": 9.0,
            "cnr": 1.0,
            "efc": 1.0,
        }
    )
    table = group.group_table(records)
    return {
        "participant": report.render_participant_report(participant),
        "group": group_report.render_group_report(table, "T1w", {"02": f"segmentation failed {EVIL}"}),
    }

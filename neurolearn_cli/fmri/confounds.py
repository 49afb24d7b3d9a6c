"""The fMRIPrep confounds table (``desc-confounds_timeseries.tsv``) and its JSON.

Columns, with fMRIPrep's names: the six motion parameters, ``global_signal``,
``csf``, ``white_matter`` and ``csf_wm`` each with ``_derivative1``
(backward difference, first row NaN), ``_power2`` and ``_derivative1_power2``;
``framewise_displacement``, ``rmsd``, ``dvars``, ``std_dvars``; aCompCor
(``c_comp_cor`` CSF, ``w_comp_cor`` WM, ``a_comp_cor`` combined), tCompCor;
``cosineNN``; ``non_steady_state_outlierNN`` and ``motion_outlierNN``
(one-hot spike regressors). NaN is written ``n/a`` by the derivatives writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from neurolearn_cli.engine.morphology import dilate
from neurolearn_cli.errors import ProcessingError
from neurolearn_cli.fmri.compcor import compcor, cosine_basis, tcompcor_mask
from neurolearn_cli.fmri.dvars import compute_dvars
from neurolearn_cli.fmri.motion import MOTION_COLUMNS, framewise_displacement

_SIGNALS = ("global_signal", "csf", "white_matter", "csf_wm")
_THRESHOLDS = (0.99, 0.9, 0.75, 0.5)
_MIN_VOXELS = 10


@dataclass(frozen=True)
class TissueMasks:
    """Boolean masks on the BOLD grid: brain, and the eroded CSF / WM / combined noise ROIs."""

    brain: torch.Tensor
    csf: torch.Tensor
    wm: torch.Tensor

    @property
    def combined(self) -> torch.Tensor:
        """CSF or WM: aCompCor's combined mask and the ``csf_wm`` signal's mask."""
        return self.csf | self.wm


@dataclass(frozen=True)
class Confounds:
    """The confounds table (T rows) and its JSON metadata."""

    table: pd.DataFrame
    metadata: dict[str, dict]


def noise_masks(
    brain: torch.Tensor,
    gm: torch.Tensor,
    wm: torch.Tensor,
    csf: torch.Tensor,
    thresholds: tuple[float, ...] = _THRESHOLDS,
    lesion: torch.Tensor | None = None,
) -> TissueMasks:
    """CSF and WM noise ROIs from tissue fractions (0-1) on the BOLD grid, as fMRIPrep.

    GM (fraction > 0.05) is dilated by one voxel and removed; WM and CSF are
    then the voxels of the brain mask whose fraction exceeds the first of
    ``thresholds`` that leaves at least ``_MIN_VOXELS`` voxels (0.99 keeps only
    voxels wholly inside the tissue, an erosion; coarse BOLD voxels over thin
    ventricles may need a lower one). Where none does (small ventricles all
    within a BOLD voxel of GM), the GM exclusion is dropped, so that the ROI
    is never empty while the brain mask holds that tissue. ``lesion`` (the
    fraction of each BOLD voxel in the lesion) is never in a noise ROI: any
    voxel it touches, grown by one voxel, is left out.
    """
    brain = brain.bool()
    candidates = brain if lesion is None else brain & ~dilate(lesion > 0.01)
    allowed = candidates & ~dilate(gm > 0.05)

    def roi(fraction: torch.Tensor) -> torch.Tensor:
        for region in (allowed, candidates):
            for threshold in thresholds:
                mask = (fraction > threshold) & region
                if int(mask.sum()) >= _MIN_VOXELS:
                    return mask
        return mask

    return TissueMasks(brain, roi(csf), roi(wm))


def expand(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``_derivative1``, ``_power2`` and ``_derivative1_power2`` of every column."""
    derivative = frame.diff().add_suffix("_derivative1")
    parts = [
        frame,
        derivative,
        (frame**2).add_suffix("_power2"),
        (derivative**2).add_suffix("_power2"),
    ]
    table = pd.concat(parts, axis=1)
    order = [
        c + s for c in frame.columns for s in ("", "_derivative1", "_power2", "_derivative1_power2")
    ]
    return table[order]


def spike_regressors(flags: list[bool], prefix: str) -> pd.DataFrame:
    """One-hot columns ``{prefix}NN``, one per flagged volume."""
    indices = [i for i, flag in enumerate(flags) if flag]
    columns = {
        f"{prefix}{k:02d}": [1.0 if i == index else 0.0 for i in range(len(flags))]
        for k, index in enumerate(indices)
    }
    return pd.DataFrame(columns, index=range(len(flags)))


def mean_signals(bold: torch.Tensor, masks: TissueMasks) -> pd.DataFrame:
    """Mean BOLD (T,) within the brain, CSF, WM and combined masks."""
    regions = (masks.brain, masks.csf, masks.wm, masks.combined)
    values = {}
    for name, region in zip(_SIGNALS, regions, strict=True):
        if not bool(region.any()):
            raise ProcessingError(f"the {name} mask is empty on the BOLD grid")
        values[name] = bold[region].to(torch.float64).mean(dim=0).cpu().numpy()
    return pd.DataFrame(values)


def build_confounds(
    bold: torch.Tensor,
    masks: TissueMasks,
    motion: pd.DataFrame,
    rmsd: pd.Series,
    repetition_time: float,
    *,
    n_nonsteady: int = 0,
    fd_threshold: float = 0.5,
    dvars_threshold: float = 1.5,
    cutoff_s: float = 128.0,
) -> Confounds:
    """Assemble the confounds table and metadata for one BOLD run.

    Parameters
    ----------
    bold : Tensor
        Head-motion corrected series (X, Y, Z, T) on the boldref grid.
    masks : TissueMasks
        Brain mask and noise ROIs on the same grid (see :func:`noise_masks`).
    motion : DataFrame
        The six parameters per volume (``motion.motion_parameters``).
    rmsd : Series
        Relative RMS deviation per volume (``motion.relative_rmsd``).
    repetition_time : float
        TR in seconds.
    n_nonsteady : int
        Leading non-steady-state volumes: excluded from CompCor and the cosine
        basis (zero there) and flagged by ``non_steady_state_outlierNN``.
    fd_threshold, dvars_threshold : float
        ``motion_outlierNN`` flags volumes with FD or std_dvars above these.
    cutoff_s : float
        High-pass cutoff (s) of the cosine basis used before CompCor.
    """
    n_volumes = int(bold.shape[3])
    if len(motion) != n_volumes or len(rmsd) != n_volumes:
        raise ValueError(f"motion has {len(motion)} rows but the BOLD has {n_volumes} volumes")
    steady = n_volumes - n_nonsteady
    fd = framewise_displacement(motion)
    dvars = compute_dvars(bold, masks.brain)
    std_dvars = pd.Series(dvars.std_dvars.cpu().numpy(), name="std_dvars")
    basis = cosine_basis(steady, repetition_time, cutoff_s).numpy()
    cosines = pd.DataFrame(
        0.0, index=range(n_volumes), columns=[f"cosine{k:02d}" for k in range(basis.shape[1])]
    )
    cosines.iloc[n_nonsteady:] = basis
    metadata: dict[str, dict] = {
        c: {"Method": "Cosine basis", "Cutoff": cutoff_s} for c in cosines.columns
    }
    runs = [
        ("c_comp_cor_", "aCompCor", "CSF", masks.csf),
        ("w_comp_cor_", "aCompCor", "WM", masks.wm),
        ("a_comp_cor_", "aCompCor", "combined", masks.combined),
        (
            "t_comp_cor_",
            "tCompCor",
            None,
            tcompcor_mask(bold, masks.brain, repetition_time, skip=n_nonsteady, cutoff_s=cutoff_s),
        ),
    ]
    components, dropped = [], []
    for prefix, method, mask_name, mask in runs:
        result = compcor(
            bold,
            mask,
            repetition_time,
            prefix=prefix,
            method=method,
            mask_name=mask_name,
            skip=n_nonsteady,
            cutoff_s=cutoff_s,
        )
        components.append(result.components)
        metadata.update(result.metadata)
        dropped += result.dropped
    metadata.update({f"dropped_{k}": entry for k, entry in enumerate(dropped)})
    outliers = (fd.fillna(0) > fd_threshold) | (std_dvars.fillna(0) > dvars_threshold)
    table = pd.concat(
        [
            expand(mean_signals(bold, masks)),
            pd.DataFrame(
                {
                    "std_dvars": std_dvars,
                    "dvars": dvars.dvars.cpu().numpy(),
                    "framewise_displacement": fd,
                    "rmsd": rmsd.to_numpy(),
                }
            ),
            expand(motion[list(MOTION_COLUMNS)].reset_index(drop=True)),
            *components,
            cosines,
            spike_regressors(
                [i < n_nonsteady for i in range(n_volumes)], "non_steady_state_outlier"
            ),
            spike_regressors(outliers.tolist(), "motion_outlier"),
        ],
        axis=1,
    )
    return Confounds(table, metadata)

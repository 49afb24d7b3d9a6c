"""Hard tissue labels and tissue maps inside the brain mask, with fMRIPrep's label table.

fMRIPrep's ``dseg`` labels: 0 background, 1 GM, 2 WM, 3 CSF; a participant
with a lesion mask gets a fourth class, 4 lesion, whose voxels count as no
tissue (zero GM/WM/CSF probability).
"""

from __future__ import annotations

import pandas as pd
import torch

from neurolearn_cli.engine.image import Image

LABELS = {1: "GM", 2: "WM", 3: "CSF"}
LESION_LABEL = 4


def label_table(lesion: bool = False) -> pd.DataFrame:
    """The dseg label table (columns ``index``, ``name``), as written to ``*_dseg.tsv``; ``lesion`` adds class 4."""
    labels = {**LABELS, LESION_LABEL: "lesion"} if lesion else LABELS
    return pd.DataFrame({"index": list(labels), "name": list(labels.values())})


def brain_tissues(posteriors: torch.Tensor, mask: Image, lesion: torch.Tensor | None = None) -> torch.Tensor:
    """GM, WM, CSF probabilities (3, X, Y, Z) inside ``mask``, renormalised to sum to one there.

    The non-brain class is dropped: inside the mask every voxel is brain. A
    ``lesion`` voxel (boolean mask) holds no tissue.
    """
    tissues = posteriors[:3]
    total = tissues.sum(0, keepdim=True)
    inside = mask.data > 0.5
    if lesion is not None:
        inside = inside & ~lesion
    uniform = torch.tensor([0.0, 0.0, 1.0], device=tissues.device).view(3, 1, 1, 1)
    normalised = torch.where(total > 1e-6, tissues / total.clamp_min(1e-6), uniform)
    return normalised * inside[None]


#: Below this probability a tissue counts as absent from a voxel (its prior excludes it there).
PRESENT = 1e-3


def hard_labels(tissues: torch.Tensor, mask: Image, corrected: torch.Tensor, gm_wm_midpoint: float,
                lesion: torch.Tensor | None = None) -> Image:
    """``dseg`` inside ``mask`` (0 outside): CSF (3) where most probable, else GM (1) or WM (2) by majority tissue.

    ``lesion`` voxels (boolean mask) inside ``mask`` are labelled ``LESION_LABEL``.

    A voxel on the GM/WM border holds both tissues. Without the mixture's
    partial-volume classes its GM Gaussian was wide (it absorbed these
    voxels), so the most probable class stayed GM well past the halfway point:
    on aomic's T1w, WM came out 17 % smaller than fMRIPrep's (414 against 500
    mL). As in FSL FAST's hard
    segmentation (fMRIPrep's ``dseg``), a voxel where both tissues are present
    is WM when its bias-corrected intensity lies above ``gm_wm_midpoint``, the
    midpoint of the two class means, i.e. when WM makes up more than half of
    it; where one tissue is absent (probability < ``PRESENT``) the other wins.
    """
    gm, wm, csf = tissues
    csf_wins = (csf > gm) & (csf > wm)
    both = (gm > PRESENT) & (wm > PRESENT)
    # comparisons instead of argmax over the first (outermost) axis, a strided reduction
    # that took ~1 s per 2.5 M voxels
    white = torch.where(both, corrected > gm_wm_midpoint, wm > gm)
    labels = torch.where(csf_wins, 3.0, torch.where(white, 2.0, 1.0))
    if lesion is not None:
        labels = torch.where(lesion, float(LESION_LABEL), labels)
    return mask.with_data(labels * (mask.data > 0.5))

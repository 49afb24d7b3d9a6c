"""Hard tissue labels and tissue maps inside the brain mask, with fMRIPrep's label table.

fMRIPrep's ``dseg`` labels: 0 background, 1 GM, 2 WM, 3 CSF.
"""

from __future__ import annotations

import pandas as pd
import torch

from neurolearn_cli.engine.image import Image

LABELS = {1: "GM", 2: "WM", 3: "CSF"}


def label_table() -> pd.DataFrame:
    """The dseg label table (columns ``index``, ``name``), as written to ``*_dseg.tsv``."""
    return pd.DataFrame({"index": list(LABELS), "name": list(LABELS.values())})


def brain_tissues(posteriors: torch.Tensor, mask: Image) -> torch.Tensor:
    """GM, WM, CSF probabilities (3, X, Y, Z) inside ``mask``, renormalised to sum to one there.

    The non-brain class is dropped: inside the mask every voxel is brain.
    """
    tissues = posteriors[:3]
    total = tissues.sum(0, keepdim=True)
    inside = mask.data > 0.5
    uniform = torch.tensor([0.0, 0.0, 1.0], device=tissues.device).view(3, 1, 1, 1)
    normalised = torch.where(total > 1e-6, tissues / total.clamp_min(1e-6), uniform)
    return normalised * inside[None]


def hard_labels(tissues: torch.Tensor, mask: Image) -> Image:
    """``dseg``: the most probable of GM (1), WM (2), CSF (3) inside ``mask``, 0 outside."""
    gm, wm, csf = tissues
    # comparisons instead of argmax over the first (outermost) axis, a strided reduction
    # that took ~1 s per 2.5 M voxels; ties go to the earlier class, as argmax's do
    labels = torch.where((gm >= wm) & (gm >= csf), 1.0, torch.where(wm >= csf, 2.0, 3.0))
    return mask.with_data(labels * (mask.data > 0.5))

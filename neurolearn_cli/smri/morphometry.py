"""Global tissue volumes and per-parcel grey-matter volume in native space.

Volumes are sums of probabilities times the voxel volume (partial-volume
aware), in mL. Total intracranial volume (TIV) is the volume of the
template's brain mask pulled back to the T1w by the normalization (the
"reverse brain mask" estimate, Malone et al. 2015, NeuroImage 104:366): it
depends on the registration's volume change only, not on where the tissue
classes put the brain's edge. The bundled template has no skull, so its mask
stops short of some outer CSF and the estimate reads a little low against
FreeSurfer's eTIV (-1.1 % on aomic sub-0001). Without a normalization (the first, affine pass)
TIV is GM + WM + CSF inside the brain mask. Per-parcel GM volume sums the GM
probability over each parcel of an atlas already resampled to the T1w grid. Whether the volumes are
those of a human brain is checked in :mod:`~neurolearn_cli.smri.plausibility`.
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.reduce import fixed_sum

GLOBAL_COLUMNS = ("TIV", "GM", "WM", "CSF")


def voxel_ml(image: Image) -> float:
    """Volume of one voxel of ``image`` in mL."""
    return math.prod(image.spacing) / 1000.0


def tissue_volumes(tissues: torch.Tensor, grid_image: Image, tiv_ml: float | None = None) -> dict[str, float]:
    """TIV, GM, WM, CSF volumes (mL) from (3, X, Y, Z) GM/WM/CSF probabilities inside the brain mask.

    ``tiv_ml`` is the pulled-back template mask's volume (:func:`mask_volume_ml`);
    without it TIV is GM + WM + CSF.
    """
    ml = voxel_ml(grid_image)
    gm, wm, csf = (float(fixed_sum(t, dtype=torch.float64)) * ml for t in tissues)
    return {"TIV": gm + wm + csf if tiv_ml is None else tiv_ml, "GM": gm, "WM": wm, "CSF": csf}


def mask_volume_ml(mask: Image) -> float:
    """Volume (mL) of a soft mask (fractions in [0, 1]), e.g. the template's brain mask pulled back."""
    return float(fixed_sum(mask.data, dtype=torch.float64)) * voxel_ml(mask)


def parcel_gm_volumes(gm: Image, labels: Image, table: pd.DataFrame) -> dict[str, float]:
    """GM volume (mL) of every parcel of ``table`` from a GM probability map and labels on its grid."""
    if labels.shape3 != gm.shape3:
        raise ValueError("labels must be on the GM map's grid")
    index = labels.data.long().reshape(-1)
    size = max(int(index.max()), int(table["index"].max())) + 1
    sums = torch.zeros(size, dtype=torch.float64, device=gm.device).index_add_(
        0, index, gm.data.reshape(-1).to(torch.float64)
    )
    ml = voxel_ml(gm)
    return {str(name): float(sums[int(i)]) * ml for i, name in zip(table["index"], table["name"], strict=True)}


def morphometry_table(volumes: dict[str, float], parcels: dict[str, float]) -> pd.DataFrame:
    """One-row table: global volumes then one column per parcel (mL); the writer adds ``participant_id``."""
    overlap = set(volumes) & set(parcels)
    if overlap:
        raise ValueError(f"parcel names clash with global columns: {sorted(overlap)}")
    return pd.DataFrame([{**{k: volumes[k] for k in GLOBAL_COLUMNS}, **parcels}])

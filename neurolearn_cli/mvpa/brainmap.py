"""Paint per-parcel weights onto an atlas image."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurolearn_cli.errors import InputError
from neurolearn_cli.mvpa.features import read_table

LOGGER = logging.getLogger("neurolearn.mvpa")


def _label_index(labels: Path | None) -> dict[str, int]:
    """Parcel name -> atlas index, from a label table with ``index`` and ``label``/``name`` columns."""
    if labels is None:
        return {}
    table = read_table(labels)
    name = next((c for c in ("label", "name") if c in table.columns), None)
    if "index" not in table.columns or name is None:
        raise InputError(labels, "needs 'index' and 'label' (or 'name') columns")
    return {str(n): int(i) for i, n in zip(table["index"], table[name], strict=True)}


def paint(weights: pd.Series, atlas: np.ndarray, index_of: dict[str, int]) -> tuple[np.ndarray, int]:
    """A float32 volume holding each parcel's weight (0 elsewhere), and how many parcels matched.

    A feature matches a parcel by its label name, or by its index written as a number.
    """
    volume = np.zeros(atlas.shape, dtype=np.float32)
    matched = 0
    for feature, weight in weights.items():
        name = str(feature)
        index = index_of.get(name)
        if index is None and name.isdigit():
            index = int(name)
        if index is not None and np.any(atlas == index):
            volume[atlas == index] = weight
            matched += 1
    return volume, matched


def weight_map(weights: pd.Series, atlas_image: Path, labels: Path | None) -> nib.Nifti1Image | None:
    """The weights painted on ``atlas_image``, or None when no feature names a parcel."""
    try:
        atlas = nib.load(atlas_image)
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(atlas_image, f"cannot read the atlas image ({exc})") from None
    if not isinstance(atlas, nib.spatialimages.SpatialImage):
        raise InputError(atlas_image, f"not a volume image ({type(atlas).__name__})")
    volume, matched = paint(weights, np.asarray(atlas.dataobj).astype(np.int64), _label_index(labels))
    if matched == 0:
        LOGGER.warning("no feature matches a parcel of %s: no weight map written", atlas_image)
        return None
    image = nib.Nifti1Image(volume, atlas.affine)
    image.header.set_xyzt_units("mm")
    return image

"""Regenerate the default parcellation files in ``neurolearn_cli/resources/``.

Run ``python -m neurolearn_cli.smri.make_default_atlas`` after changing
:func:`neurolearn_cli.smri.parcellation.generate_default_atlas`; the label
image is stored as uint8 at 2 mm with its table (index, name, centre x/y/z).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from neurolearn_cli import atomic
from neurolearn_cli.smri.parcellation import (
    DEFAULT_ATLAS_FILE,
    DEFAULT_LABELS_FILE,
    generate_default_atlas,
)
from neurolearn_cli.smri.template import load_template

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
RESOLUTION_MM = 2


def write_default_atlas(folder: Path = RESOURCES) -> tuple[Path, Path]:
    """Generate the default atlas from the bundled template and write it into ``folder``."""
    atlas = generate_default_atlas(load_template(torch.device("cpu"), RESOLUTION_MM))
    data = atlas.labels.data.cpu().numpy().astype(np.uint8)
    image = nib.Nifti1Image(data, atlas.labels.affine.cpu().numpy())
    image.set_qform(image.affine, 1)
    image.set_sform(image.affine, 1)
    image_path = atomic.write_nifti(folder / DEFAULT_ATLAS_FILE, image)
    table_path = atomic.write_tsv(folder / DEFAULT_LABELS_FILE, atlas.table)
    return image_path, table_path


if __name__ == "__main__":
    for written in write_default_atlas():
        print(written)

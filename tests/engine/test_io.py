"""Tests of the engine's image reader on files that are not volumes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.engine.io import load_image
from neurolearn_cli.errors import InputError


def test_load_image_names_a_surface_file_as_bad_input(tmp_path, device: torch.device) -> None:
    # a GIFTI surface has no voxels: the reader used to fail on it with an AttributeError
    path = tmp_path / "lh.surf.gii"
    points = nib.gifti.GiftiDataArray(np.zeros((4, 3), np.float32), intent="NIFTI_INTENT_POINTSET")
    nib.save(nib.gifti.GiftiImage(darrays=[points]), path)
    with pytest.raises(InputError, match="not a volume image") as info:
        load_image(path, device)
    assert info.value.path == str(path)


def test_load_image_still_reads_other_volume_formats(tmp_path, device: torch.device) -> None:
    data = np.arange(7 * 8 * 9, dtype=np.float32).reshape(7, 8, 9) + 1.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    path = tmp_path / "volume.mgz"
    nib.save(nib.MGHImage(data, affine), path)
    image = load_image(path, device)
    assert image.shape3 == (7, 8, 9)
    assert torch.equal(image.data, torch.from_numpy(data))

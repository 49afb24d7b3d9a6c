"""``neurolearn register``: a user's unusable image is bad input naming the file (exit 2)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def _blob(shape: tuple[int, int, int], shift: float = 0.0) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij"), axis=-1)
    centre = np.array(shape, dtype=np.float32) / 2 + np.array([shift, 0.0, 0.0], dtype=np.float32)
    return np.exp(-((grid - centre) ** 2).sum(-1) / 40.0).astype(np.float32)


def _save(path: Path, data: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return path


def test_constant_image_names_the_file(cli, tmp_path: Path) -> None:
    fixed = _save(tmp_path / "fixed.nii.gz", np.ones((20, 22, 24), np.float32))
    moving = _save(tmp_path / "moving.nii.gz", _blob((20, 22, 24)))
    code, _, err = cli("register", str(fixed), str(moving), "-o", str(tmp_path / "out_"), "--transform", "rigid")
    assert code == 2
    assert err.strip() == f"neurolearn: error: {fixed}: image is constant"


def test_rigid_registration_writes_ants_outputs(cli, tmp_path: Path) -> None:
    fixed = _save(tmp_path / "fixed.nii.gz", _blob((20, 22, 24)))
    moving = _save(tmp_path / "moving.nii.gz", _blob((20, 22, 24), shift=1.5))
    code, out, _ = cli("register", str(fixed), str(moving), "-o", str(tmp_path / "out_"), "--transform", "rigid")
    assert code == 0 and "registered moving.nii.gz to fixed.nii.gz (rigid)" in out
    assert "OpenMP" in out and "usable" in out  # the thread decision, for a run timed on a busy node
    assert (tmp_path / "out_0GenericAffine.mat").is_file() and (tmp_path / "out_Warped.nii.gz").is_file()

"""Head-motion summaries from per-volume rigid transforms, in fMRIPrep's convention.

The head-motion correction gives, for each volume, a world (RAS mm) rigid
transform mapping boldref points to that volume's points (ITK pull-back). From
them: the six parameters (``trans_x/y/z`` mm, ``rot_x/y/z`` rad) about the
boldref centre, Power's framewise displacement and Jenkinson's relative RMS
deviation (MCFLIRT's ``_rel.rms``, fMRIPrep's ``rmsd``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from neurolearn_cli.engine.transforms import AffineTransform

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")


def motion_parameters(
    transforms: AffineTransform, center_mm: Sequence[float] | torch.Tensor
) -> pd.DataFrame:
    """Six rigid parameters per volume (trans mm, rot rad) about ``center_mm``.

    Angles follow the engine's ``AffineTransform.rigid``: ``R = Rx Ry Rz``
    (:func:`~neurolearn_cli.engine.geometry.euler_matrix`) and ``y = R (x - c) + c + t``.
    """
    angles, translations = transforms.rigid_parameters(center_mm)
    values = torch.cat([translations, angles], dim=-1).reshape(-1, 6).cpu().numpy()
    return pd.DataFrame(values, columns=list(MOTION_COLUMNS))


def framewise_displacement(parameters: pd.DataFrame, radius_mm: float = 50.0) -> pd.Series:
    """Power's FD: ``sum |d trans| + radius * sum |d rot|`` between consecutive volumes.

    The first value is NaN (no previous volume), written ``n/a`` as fMRIPrep does.
    """
    diff = parameters[list(MOTION_COLUMNS)].diff().abs()
    fd = diff[list(MOTION_COLUMNS[:3])].sum(axis=1) + radius_mm * diff[
        list(MOTION_COLUMNS[3:])
    ].sum(axis=1)
    fd.iloc[0] = float("nan")
    return fd.rename("framewise_displacement")


def relative_rmsd(
    transforms: AffineTransform, center_mm: Sequence[float] | torch.Tensor, radius_mm: float = 80.0
) -> pd.Series:
    """Jenkinson's RMS deviation between consecutive volumes' transforms (mm).

    With ``M = T_t T_{t-1}^{-1} - I`` (linear part ``A``, translation ``u``) and
    a sphere of radius ``R`` about ``c``:
    ``rmsd_t = sqrt(R^2 / 5 trace(A^T A) + (u + A c)^T (u + A c))``.
    The first value is NaN.
    """
    matrices = transforms.matrix.reshape(-1, 4, 4)
    centre = torch.as_tensor(center_mm, dtype=torch.float64, device=matrices.device)
    delta = matrices[1:] @ torch.linalg.inv(matrices[:-1]) - torch.eye(
        4, dtype=torch.float64, device=matrices.device
    )
    linear, offset = delta[:, :3, :3], delta[:, :3, 3]
    shift = offset + linear @ centre
    rms = torch.sqrt(
        radius_mm**2 / 5.0 * (linear * linear).sum(dim=(1, 2)) + (shift * shift).sum(dim=1)
    )
    values = [float("nan"), *rms.cpu().tolist()]
    return pd.Series(values, name="rmsd")

"""BOLD reference volume.

The reference is the single-band reference (sbref) when one was acquired,
otherwise the voxelwise median of the steady-state volumes (robust to spikes
and to a few moved volumes), optionally after resampling them through
per-volume rigid transforms to a provisional reference. Its brain mask comes
from :func:`neurolearn_cli.fmri.masking.intensity_mask`.
"""

from __future__ import annotations

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.errors import ProcessingError

_MAX_AVERAGE = 50


def bold_reference(
    bold: Image,
    n_nonsteady: int = 0,
    *,
    sbref: Image | None = None,
    transforms: AffineTransform | None = None,
    max_volumes: int = _MAX_AVERAGE,
) -> Image:
    """The BOLD reference volume (3D, on the BOLD grid).

    Parameters
    ----------
    bold : Image
        4D BOLD series.
    n_nonsteady : int
        Leading non-steady-state volumes, left out of the average.
    sbref : Image, optional
        Single-band reference: returned (its first volume if 4D) resampled by
        world coordinates onto the BOLD grid.
    transforms : AffineTransform, optional
        Batched rigid maps (one per BOLD volume, reference -> volume) that
        align the volumes before the median.
    max_volumes : int
        At most this many steady-state volumes are averaged.
    """
    if bold.data.dim() != 4:
        raise ValueError(f"BOLD series must be 4D, got shape {tuple(bold.data.shape)}")
    if sbref is not None:
        volume = sbref if sbref.data.dim() == 3 else sbref.with_data(sbref.data[..., 0])
        return resample(volume, bold.grid, order="linear")
    stop = min(bold.n_volumes, n_nonsteady + max_volumes)
    if n_nonsteady >= stop:
        raise ProcessingError(f"no steady-state volume left after {n_nonsteady} non-steady-state volumes")
    series = Image(bold.data[..., n_nonsteady:stop].contiguous(), bold.affine)
    if transforms is not None:
        series = resample(
            series, bold.grid, transforms.select_volumes(n_nonsteady, stop), order="linear"
        )
    return bold.with_data(series.data.median(dim=-1).values)

"""The reference T1w: validated, RAS-ordered, and averaged over runs when there are several.

Each run is reoriented losslessly to RAS voxel order (native resolution kept;
intensity scaling was applied by the reader). With several runs, every run is
registered rigidly to the first, resampled onto its grid, scaled to its
brightness (least squares), and the runs are combined voxel-wise by their median
(mean of two), which is robust to motion-corrupted or partial runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurolearn_cli.engine.image import Image, reorient_to_ras
from neurolearn_cli.engine.registration import LinearSettings, moments_init, register_linear
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.errors import InputError

MIN_VOXEL_MM = 0.2
MAX_VOXEL_MM = 4.0
#: Clinical protocols acquire thick slices (5-7 mm) with fine in-plane voxels: one axis may be this coarse.
MAX_SLICE_MM = 8.0
RIGID_SETTINGS = LinearSettings(levels_mm=(4.0, 2.0), iterations=(30, 10))


def validate_t1w(image: Image, source: str) -> Image:
    """Check that ``image`` can be a T1w reference; return it as 3D.

    A 4D image with a single volume is squeezed to 3D.

    Raises
    ------
    InputError
        Naming ``source``: several volumes, NaN/infinite or all-zero data, a
        non-finite or singular affine, voxels outside 0.2–4 mm (one axis, the
        slices', up to 8 mm).
    """
    if image.data.dim() == 4:
        if image.n_volumes != 1:
            raise InputError(source, f"a T1w image must be 3D, got {image.n_volumes} volumes")
        image = image.with_data(image.data[..., 0])
    affine = image.affine
    if not bool(torch.isfinite(affine).all()) or abs(float(torch.linalg.det(affine[:3, :3]))) < 1e-9:
        raise InputError(source, "voxel-to-world affine is not finite or is singular")
    if not bool(torch.isfinite(image.data).all()):
        raise InputError(source, "image data contain NaN or infinite values")
    if not bool((image.data != 0).any()):
        raise InputError(source, "image data are all zero")
    finest, middle, thickest = sorted(image.spacing)
    if finest < MIN_VOXEL_MM or middle > MAX_VOXEL_MM or thickest > MAX_SLICE_MM:
        raise InputError(source, f"voxel sizes {tuple(round(s, 3) for s in image.spacing)} mm are not those of a "
                                 "structural image")
    return image


def _intensity_scale(reference: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """Least-squares factor bringing ``moved`` to ``reference``'s brightness where both are non-zero."""
    both = (reference != 0) & (moved != 0)
    denominator = (moved[both] ** 2).sum()
    return (reference[both] * moved[both]).sum() / denominator if bool(denominator > 0) else torch.ones((), device=moved.device)


def _rigid(fixed: Image, moving: Image) -> AffineTransform:
    """Rigid fixed -> moving map by NMI from a centre-of-mass start (4 mm and 2 mm levels)."""
    start, centre = moments_init(fixed.data, fixed.affine, moving.data, moving.affine)
    matrix, _ = register_linear(
        fixed.data, fixed.affine, moving.data, moving.affine, start, centre, dof=6, metric="nmi", settings=RIGID_SETTINGS
    )
    return AffineTransform(matrix)


def conform_t1w(images: Sequence[Image], sources: Sequence[str]) -> Image:
    """One reference T1w from one or more runs.

    Parameters
    ----------
    images : sequence of Image
        T1w runs as read (any orientation, scaling applied).
    sources : sequence of str
        Their file names, for error messages.

    Returns
    -------
    Image
        RAS-ordered float32 reference on the first run's (reoriented) grid.
    """
    if not images or len(images) != len(sources):
        raise ValueError("conform_t1w needs one source name per image, and at least one image")
    runs = [reorient_to_ras(validate_t1w(image, source)) for image, source in zip(images, sources, strict=True)]
    reference = runs[0]
    if len(runs) == 1:
        return reference
    aligned = [reference.data]
    for run in runs[1:]:
        moved = resample(run, reference.grid, _rigid(reference, run), order="linear").data
        aligned.append(moved * _intensity_scale(reference.data, moved))
    stack = torch.stack(aligned)
    combined = stack.mean(0) if len(aligned) == 2 else stack.median(0).values
    return reference.with_data(combined)

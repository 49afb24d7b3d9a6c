"""``neurolearn register``: pairwise registration with ANTs-compatible outputs.

Like ``antsRegistrationSyNQuick.sh``, it writes ``PREFIXWarped.nii.gz``,
``PREFIXInverseWarped.nii.gz``, ``PREFIX0GenericAffine.mat`` and, for ``syn``,
``PREFIX1Warp.nii.gz`` and ``PREFIX1InverseWarp.nii.gz``, so that
``antsApplyTransforms -i MOVING -r FIXED -t PREFIX1Warp.nii.gz -t
PREFIX0GenericAffine.mat`` reproduces the warped image. Without
``--fixed-mask`` the metric covers the fixed image's foreground (the engine's
default), as a brain mask would; SyN then computes on its bounding box only.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class TransformChoice(str, Enum):
    """Transform model."""

    rigid = "rigid"
    affine = "affine"
    syn = "syn"


class MetricChoice(str, Enum):
    """Similarity metric of the last stage."""

    lncc = "lncc"
    ncc = "ncc"
    nmi = "nmi"
    mse = "mse"


def register_command(
    fixed: Annotated[Path, typer.Argument(help="Fixed (reference) image, NIfTI.", show_default=False)],
    moving: Annotated[Path, typer.Argument(help="Moving image, NIfTI.", show_default=False)],
    output: Annotated[str, typer.Option("--output", "-o", help="Output prefix, e.g. out/sub-01_ (as ANTs' -o).", show_default=False)],
    transform: Annotated[TransformChoice, typer.Option(help="rigid, affine or syn (affine + symmetric diffeomorphic).")] = TransformChoice.syn,
    metric: Annotated[MetricChoice | None, typer.Option(help="Metric of the last stage [default: nmi for rigid/affine, lncc for syn (the only one syn takes)].", show_default=False)] = None,
    fixed_mask: Annotated[Path | None, typer.Option(help="Mask on the fixed image limiting the metric (e.g. a brain mask) [default: the fixed image's foreground, Otsu-thresholded].", show_default=False)] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (runs are deterministic for a seed and device).")] = 0,
) -> None:
    """Register MOVING to FIXED and write ANTs-style transforms and warped images."""
    import time

    from neurolearn_cli.engine.threads import configure_threads

    threading = configure_threads()  # before torch loads
    from neurolearn_cli.atomic import write_nifti
    from neurolearn_cli.engine.device import configure_determinism, resolve_device
    from neurolearn_cli.engine.io import load_image, to_nifti
    from neurolearn_cli.engine.itkio import write_transform
    from neurolearn_cli.engine.registration import register
    from neurolearn_cli.errors import InputError, ProcessingError, UsageError

    if transform is TransformChoice.syn and metric not in (None, MetricChoice.lncc):
        raise UsageError(f"--metric {metric.value}: the syn transform uses lncc")
    torch_device = resolve_device(device)
    configure_determinism(seed)
    start = time.perf_counter()
    fixed_img = load_image(fixed, torch_device)
    moving_img = load_image(moving, torch_device)
    mask_img = None if fixed_mask is None else load_image(fixed_mask, torch_device)
    for path, image in ((fixed, fixed_img), (moving, moving_img)):
        if image.data.dim() != 3:
            raise InputError(path, f"expected a 3D image, got shape {tuple(image.data.shape)}")
    try:
        result = register(
            fixed_img, moving_img, transform=transform.value,
            metric=None if metric is None else metric.value,
            fixed_mask=mask_img, device=torch_device,
        )
    except ProcessingError as error:  # e.g. "fixed image: image is constant": the user's file is the problem
        role, _, problem = str(error).partition(": ")
        inputs = {"fixed image": fixed, "moving image": moving, "fixed mask": fixed_mask}
        if inputs.get(role) is None:
            raise
        raise InputError(inputs[role], problem) from None
    write_nifti(f"{output}Warped.nii.gz", to_nifti(result.warped))
    write_nifti(f"{output}InverseWarped.nii.gz", to_nifti(result.inverse_warped))
    write_transform(result.affine, f"{output}0GenericAffine.mat")
    if result.warp is not None and result.inverse_warp is not None:
        write_transform(result.warp, f"{output}1Warp.nii.gz")
        write_transform(result.inverse_warp, f"{output}1InverseWarp.nii.gz")
    elapsed = time.perf_counter() - start
    typer.echo(f"registered {moving.name} to {fixed.name} ({transform.value}) in {elapsed:.1f} s; "
               f"final {result.metric} = {result.metric_value:.4f}; {threading}")

"""``neurolearn apply-transforms``: resample an image through ITK/ANTs transform files.

A drop-in for ``antsApplyTransforms -i IN -r REF -t T1 -t T2 ... -o OUT -n MODE``:
transforms are listed in ANTs order (the last ``-t`` is applied to the image
first), ``[file,1]`` uses a transform's inverse, and the image is interpolated
once through the whole chain. 4D inputs are resampled volume by volume.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

_INVERSE = re.compile(r"^\[\s*(?P<path>[^,\]]+?)\s*,\s*(?P<flag>[01])\s*\]$")


class Interpolation(str, Enum):
    """Interpolation (ANTs' -n)."""

    linear = "linear"
    nearest = "nearest"
    bspline = "bspline"
    sinc = "sinc"
    genericlabel = "genericlabel"


def parse_transform_argument(argument: str) -> tuple[Path, bool]:
    """Split ``-t`` text into a path and whether to invert it (ANTs' ``[file,1]`` syntax)."""
    match = _INVERSE.match(argument.strip())
    if match:
        return Path(match["path"]), match["flag"] == "1"
    return Path(argument), False


def apply_transforms_command(
    input: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="Image to resample (3D or 4D NIfTI).", show_default=False
        ),
    ],
    reference: Annotated[
        Path,
        typer.Option(
            "--reference", "-r", help="Image defining the output grid.", show_default=False
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Output NIfTI (.nii or .nii.gz).", show_default=False),
    ],
    transforms: Annotated[
        list[str] | None,
        typer.Option(
            "--transform",
            "-t",
            help="Transform file (.mat, .txt, .tfm, .h5, .nii.gz warp); repeat in ANTs order; [file,1] inverts.",
            show_default=False,
        ),
    ] = None,
    interpolation: Annotated[
        Interpolation,
        typer.Option("--interpolation", "-n", case_sensitive=False, help="Interpolation."),
    ] = Interpolation.linear,
    default_value: Annotated[
        float, typer.Option("--default-value", "-f", help="Value outside the input.")
    ] = 0.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """Resample INPUT onto REFERENCE's grid through TRANSFORMS (as antsApplyTransforms)."""
    import time

    from neurolearn_cli.engine.threads import configure_threads

    configure_threads()  # before torch loads
    from neurolearn_cli.atomic import write_nifti
    from neurolearn_cli.engine.device import resolve_device
    from neurolearn_cli.engine.io import load_image, read_header, to_nifti
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.engine.resample import resample, resample_labels
    from neurolearn_cli.engine.transforms import Chain
    from neurolearn_cli.errors import InputError, UsageError

    start = time.perf_counter()
    if not output.name.endswith((".nii", ".nii.gz")):
        raise UsageError(f"--output {output}: expected a .nii or .nii.gz file name")
    torch_device = resolve_device(device)
    parts = []
    for argument in transforms or []:
        path, invert = parse_transform_argument(argument)
        transform = read_transform(path)
        parts.append(transform.inverse() if invert else transform)
    chain = Chain(parts).to(torch_device) if parts else None
    image = load_image(input, torch_device)
    grid = load_image(reference, torch_device).grid
    try:
        if interpolation is Interpolation.genericlabel:
            result = resample_labels(image, grid, chain)
        else:
            result = resample(image, grid, chain, order=interpolation.value, fill=default_value)
    except InputError as error:
        raise InputError(input, error.problem) from error
    write_nifti(output, to_nifti(result, header=read_header(input)))
    typer.echo(f"apply-transforms: wrote {output} in {time.perf_counter() - start:.2f} s")

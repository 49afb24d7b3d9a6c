"""Reference T1w: validation errors name the file; RAS reorientation; averaging of runs."""

from __future__ import annotations

import math

import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.errors import InputError
from neurolearn_cli.smri.conform import conform_t1w, validate_t1w

from .helpers import make_phantom, smooth


def _las_image() -> Image:
    data = torch.rand(7, 8, 9, generator=torch.Generator().manual_seed(1)) + 1
    affine = torch.diag(torch.tensor([-1.0, 1.2, 1.5, 1.0], dtype=torch.float64))
    affine[:3, 3] = torch.tensor([10.0, -5.0, -6.0], dtype=torch.float64)
    return Image(data, affine)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda im: Image(torch.stack([im.data, im.data], -1), im.affine), "3D"),
        (lambda im: im.with_data(torch.full(im.shape3, float("nan"))), "NaN"),
        (lambda im: im.with_data(torch.zeros(im.shape3)), "all zero"),
        (lambda im: Image(im.data, torch.diag(torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64))), "affine"),
        (lambda im: Image(im.data, torch.diag(torch.tensor([9.0, 9.0, 9.0, 1.0], dtype=torch.float64))), "voxel sizes"),
    ],
)
def test_bad_t1w_raises_input_error_naming_the_file(change, message) -> None:
    with pytest.raises(InputError, match=message) as info:
        validate_t1w(change(_las_image()), "sub-01_T1w.nii.gz")
    assert info.value.path == "sub-01_T1w.nii.gz"


def test_single_run_is_reoriented_losslessly() -> None:
    image = _las_image()
    ras = conform_t1w([Image(image.data[..., None], image.affine)], ["a.nii.gz"])
    assert float(ras.affine[0, 0]) > 0
    assert torch.equal(ras.data, torch.flip(image.data, dims=[0]))
    back = resample(ras, image.grid, order="nearest")
    assert torch.equal(back.data, image.data)


def test_two_runs_are_registered_and_averaged() -> None:
    noisy = make_phantom((36, 40, 38), 3.0)["image"]
    first = noisy.with_data(smooth(noisy.data, 1.0))
    moved = AffineTransform.rigid(torch.tensor([0.0, 0.0, math.radians(4.0)]), torch.tensor([3.0, -2.0, 1.5]))
    second = resample(first, first.grid, moved.inverse(), order="linear")
    second = second.with_data(second.data * 2.0)
    combined = conform_t1w([first, second], ["run-1", "run-2"])
    inner = (slice(6, -6),) * 3

    def error(volume: torch.Tensor) -> float:
        return float((volume - first.data)[inner].abs().mean() / first.data[inner].mean())

    assert error(combined.data) < 0.1
    assert error((first.data + second.data / 2) / 2) > 2 * error(combined.data)
    with pytest.raises(ValueError):
        conform_t1w([first], [])

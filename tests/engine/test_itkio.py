"""Round trips and format details of ITK transform files."""

from __future__ import annotations

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from neurolearn_cli.atomic import write_nifti
from neurolearn_cli.cli.apply_transforms import apply_transforms_command, parse_transform_argument
from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.io import load_image, to_nifti
from neurolearn_cli.engine.itkio import read_transform, write_transform
from neurolearn_cli.engine.transforms import (
    AffineTransform,
    Chain,
    DisplacementField,
    VelocityField,
)
from neurolearn_cli.errors import InputError, UsageError


def _affine() -> AffineTransform:
    rigid = AffineTransform.rigid(
        torch.tensor([0.1, -0.2, 0.3]), torch.tensor([1.5, -2.0, 3.25]), (5.0, -6.0, 7.0)
    )
    return AffineTransform(
        rigid.matrix @ torch.diag(torch.tensor([1.1, 0.9, 1.05, 1.0], dtype=torch.float64))
    )


def _field(grid: Grid) -> DisplacementField:
    world = world_grid(grid).double()
    values = torch.stack(
        [torch.sin(world[..., 0] / 7), torch.cos(world[..., 1] / 5), 0.1 * world[..., 2]], -1
    )
    return DisplacementField(values.float(), grid)


def _grid() -> Grid:
    affine = torch.tensor(
        [[-2.0, 0.3, 0, 20], [0.2, 2.5, 0, -30], [0, 0, 3.0, -10], [0, 0, 0, 1]],
        dtype=torch.float64,
    )
    return Grid((7, 8, 9), affine)


@pytest.mark.parametrize("suffix", [".txt", ".tfm", ".mat", ".h5"])
def test_affine_round_trip(tmp_path: Path, suffix: str) -> None:
    original = _affine()
    back = read_transform(write_transform(original, tmp_path / f"xfm{suffix}"))
    points = torch.tensor([[0.0, 0.0, 0.0], [10.0, -20.0, 30.0]], dtype=torch.float64)
    assert torch.allclose(back.map_points(points), original.map_points(points), atol=1e-10)


def test_batched_affines_are_one_per_volume_in_text(tmp_path: Path) -> None:
    motion = AffineTransform.rigid(
        torch.tensor([[0.0, 0.0, 0.01 * t] for t in range(4)]),
        torch.tensor([[0.1 * t, 0.0, 0.0] for t in range(4)]),
    )
    path = write_transform(motion, tmp_path / "hmc.txt")
    assert path.read_text().count("Transform: AffineTransform_double_3_3") == 4
    back = read_transform(path)
    assert isinstance(back, AffineTransform) and back.n_volumes == 4
    assert torch.allclose(back.matrix, motion.matrix, atol=1e-12)


def test_itk_centre_and_lps_conventions(tmp_path: Path) -> None:
    # LPS: rotate 90 degrees about z around centre (10, 20, 30), then translate by (1, 2, 3).
    text = (
        "#Insight Transform File V1.0\n#Transform 0\nTransform: MatrixOffsetTransformBase_double_3_3\n"
        "Parameters: 0 -1 0 1 0 0 0 0 1 1 2 3\nFixedParameters: 10 20 30\n"
    )
    (tmp_path / "centre.txt").write_text(text)
    transform = read_transform(tmp_path / "centre.txt")
    centre_ras = torch.tensor([-10.0, -20.0, 30.0], dtype=torch.float64)
    assert transform.map_points(centre_ras).tolist() == pytest.approx([-11.0, -22.0, 33.0])
    # One LPS unit along x from the centre goes to one unit along y (LPS) from it.
    moved = transform.map_points(centre_ras + torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64))
    assert moved.tolist() == pytest.approx([-11.0, -23.0, 33.0])


def test_displacement_field_nifti_is_itk_layout(tmp_path: Path) -> None:
    field = _field(_grid())
    path = write_transform(field, tmp_path / "warp.nii.gz")
    img = nib.load(path)
    assert img.shape == (7, 8, 9, 1, 3)
    assert int(img.header["intent_code"]) == 1007
    stored = np.asarray(img.dataobj)[:, :, :, 0, :]
    assert np.allclose(stored[..., 0], -field.displacement[..., 0].numpy())
    assert np.allclose(stored[..., 2], field.displacement[..., 2].numpy())
    back = read_transform(path)
    assert torch.allclose(back.displacement, field.displacement)
    assert torch.allclose(back.grid.affine, field.grid.affine)


def test_h5_composite_round_trip_and_layout(tmp_path: Path) -> None:
    warp, affine = _field(_grid()), _affine()
    path = write_transform(Chain([warp, affine]), tmp_path / "composite.h5")
    with h5py.File(path) as handle:
        kinds = [handle[f"TransformGroup/{i}/TransformType"][0].decode() for i in range(3)]
        fixed = np.asarray(handle["TransformGroup/2/TransformFixedParameters"])
        params = np.asarray(handle["TransformGroup/2/TransformParameters"])
    assert kinds == [
        "CompositeTransform_double_3_3",
        "AffineTransform_double_3_3",
        "DisplacementFieldTransform_double_3_3",
    ]
    assert fixed[:3].tolist() == [7, 8, 9]
    assert fixed[3:6].tolist() == pytest.approx([-20.0, 30.0, -10.0])
    # x varies fastest, then y, then z; vectors in LPS.
    assert params[3 * 1 + 2] == pytest.approx(float(warp.displacement[1, 0, 0, 2]))
    assert params[3 * 7 + 1] == pytest.approx(-float(warp.displacement[0, 1, 0, 1]))
    back = read_transform(path)
    assert isinstance(back, Chain) and isinstance(back.transforms[0], DisplacementField)
    points = world_grid(_grid()).double()
    assert torch.allclose(
        back.map_points(points), Chain([warp, affine]).map_points(points), atol=1e-5
    )


def test_velocity_field_is_written_as_its_exponential(tmp_path: Path) -> None:
    grid = _grid()
    svf = VelocityField(0.2 * _field(grid).displacement, grid)
    back = read_transform(write_transform(svf, tmp_path / "svf.nii.gz"))
    assert torch.allclose(back.displacement, svf.exp().displacement)


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("xfm.xyz", "", "unknown transform file type"),
        ("missing.txt", None, "not found"),
        ("junk.txt", "hello", "not an ITK transform"),
        (
            "euler.txt",
            "#Insight Transform File V1.0\n#Transform 0\nTransform: Euler3DTransform_double_3_3\n"
            "Parameters: 0 0 0 0 0 0\nFixedParameters: 0 0 0\n",
            "unsupported transform type",
        ),
        (
            "singular.txt",
            "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
            "Parameters: 1 0 0 0 0 0 0 0 1 0 0 0\nFixedParameters: 0 0 0\n",
            "singular",
        ),
        (
            "nan.txt",
            "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
            "Parameters: 1 0 0 0 1 0 0 0 1 nan 0 0\nFixedParameters: 0 0 0\n",
            "NaN",
        ),
        ("short.mat", b"\x00\x01", "cannot read"),
    ],
)
def test_bad_transform_files(
    tmp_path: Path, name: str, content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=problem) as info:
        read_transform(path)
    assert info.value.path == str(path)


def test_write_rejects_unfit_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one affine"):
        write_transform(_field(_grid()), tmp_path / "warp.mat")
    with pytest.raises(ValueError, match="displacement field"):
        write_transform(_affine(), tmp_path / "affine.nii.gz")
    assert not any(tmp_path.iterdir())


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(apply_transforms_command)
    return app


def test_parse_transform_argument() -> None:
    assert parse_transform_argument("[a/b.mat, 1]") == (Path("a/b.mat"), True)
    assert parse_transform_argument("[a/b.mat,0]") == (Path("a/b.mat"), False)
    assert parse_transform_argument("warp.nii.gz") == (Path("warp.nii.gz"), False)


def test_apply_transforms_command(tmp_path: Path) -> None:
    grid = _grid()
    data = torch.arange(7 * 8 * 9, dtype=torch.float32).reshape(7, 8, 9) + 1
    write_nifti(tmp_path / "in.nii.gz", to_nifti(Image(data, grid.affine)))
    step = grid.affine[:3, 1].clone()
    shift = AffineTransform.rigid(torch.zeros(3), 2 * step)
    write_transform(shift, tmp_path / "shift.mat")
    runner = CliRunner()
    base = ["-i", str(tmp_path / "in.nii.gz"), "-r", str(tmp_path / "in.nii.gz")]
    result = runner.invoke(
        _cli(), [*base, "-t", str(tmp_path / "shift.mat"), "-o", str(tmp_path / "out.nii.gz")]
    )
    assert result.exit_code == 0, result.output
    assert "apply-transforms: wrote" in result.output
    out = load_image(tmp_path / "out.nii.gz", torch.device("cpu")).data
    assert torch.allclose(out[:, :6], data[:, 2:], atol=1e-3)
    inverse = [
        "-t",
        f"[{tmp_path / 'shift.mat'},1]",
        "-n",
        "NEAREST",
        "-o",
        str(tmp_path / "back.nii.gz"),
    ]
    assert runner.invoke(_cli(), [*base, *inverse]).exit_code == 0
    back = load_image(tmp_path / "back.nii.gz", torch.device("cpu")).data
    assert torch.equal(back[:, 2:], data[:, :6]) and bool((back[:, :2] == 0).all())
    labels = ["-n", "genericlabel", "-o", str(tmp_path / "labels.nii.gz")]
    assert runner.invoke(_cli(), [*base, *labels]).exit_code == 0
    assert torch.equal(load_image(tmp_path / "labels.nii.gz", torch.device("cpu")).data, data)


def test_apply_transforms_command_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "-i",
        str(tmp_path / "none.nii.gz"),
        "-r",
        str(tmp_path / "none.nii.gz"),
        "-o",
        str(tmp_path / "o.nii.gz"),
    ]
    result = runner.invoke(_cli(), [*args, "-t", str(tmp_path / "missing.mat")])
    assert isinstance(result.exception, InputError) and "missing.mat" in str(result.exception)
    result = runner.invoke(_cli(), [*args[:-1], str(tmp_path / "o.png")])
    assert isinstance(result.exception, UsageError)
    assert not (tmp_path / "o.nii.gz").exists()

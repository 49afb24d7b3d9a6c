"""Registration: known rigid, affine, diffeomorphic and per-volume motion recovered; CLI output matches ANTs."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurolearn_cli.engine.image import Grid, Image, world_grid
from neurolearn_cli.engine.registration import register, register_rigid_batched
from neurolearn_cli.engine.registration.api import foreground_mask
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform, Chain, DisplacementField
from neurolearn_cli.errors import InputError, ProcessingError

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def texture(world: torch.Tensor) -> torch.Tensor:
    """Sum of 40 seeded Gaussian blobs (widths 2-3 mm) in an 18 mm cube: a smooth phantom, ~0 beyond 18 mm."""
    g = torch.Generator().manual_seed(7)
    centres = torch.rand(40, 3, generator=g, dtype=torch.float64) * 18.0 - 9.0
    widths = 2.0 + 1.0 * torch.rand(40, generator=g, dtype=torch.float64)
    heights = 50.0 + 50.0 * torch.rand(40, generator=g, dtype=torch.float64)
    d2 = ((world.to(torch.float64).unsqueeze(-2) - centres) ** 2).sum(-1)
    return (heights * torch.exp(-0.5 * d2 / widths**2)).sum(-1).float()


def grid(shape: tuple[int, int, int], spacing: tuple[float, float, float], angle_deg: float = 0.0) -> Grid:
    """A grid centred on the origin, rotated about z."""
    a = math.radians(angle_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1.0]],
                       dtype=torch.float64)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] = rot @ torch.diag(torch.tensor(spacing, dtype=torch.float64))
    affine[:3, 3] = -affine[:3, :3] @ ((torch.tensor(shape, dtype=torch.float64) - 1) / 2)
    return Grid(shape, affine)


def phantom(on: Grid, pull=None) -> Image:
    """The texture on a grid, seen through ``pull`` (a map of world points) when given."""
    pts = world_grid(on)
    return Image(texture(pts if pull is None else pull(pts)), on.affine)


def inside(on: Grid) -> torch.Tensor:
    """World points of the grid's voxels within 12 mm of the centre (where the texture lives)."""
    pts = world_grid(on)
    return pts[pts.norm(dim=-1) < 12.0]


FIXED = grid((26, 28, 24), (1.5, 1.4, 1.7), angle_deg=8.0)
MOVING = grid((24, 26, 28), (1.6, 1.5, 1.45))


@pytest.mark.parametrize("kind", ["rigid", "affine"])
def test_linear_recovers_known_map(kind: str, device: torch.device) -> None:
    truth = AffineTransform.rigid(torch.tensor([0.07, -0.05, 0.09]), torch.tensor([2.5, -1.8, 1.2]), (1.0, 2.0, -1.0))
    if kind == "affine":
        shear = torch.eye(4, dtype=torch.float64)
        shear[:3, :3] = torch.tensor([[1.06, 0.03, 0.0], [0.0, 0.95, -0.02], [0.02, 0.0, 1.04]], dtype=torch.float64)
        truth = AffineTransform(truth.matrix @ shear)
    moving = phantom(MOVING, truth.inverse().map_points)
    result = register(phantom(FIXED), moving, transform=kind, device=device)
    pts = inside(FIXED)
    err = (result.forward.map_points(pts) - truth.map_points(pts)).norm(dim=-1)
    assert float(err.mean()) < 0.1 * 1.4
    assert result.metric_value > 0.999


def smooth_warp(points: torch.Tensor) -> torch.Tensor:
    """A smooth displacement (mm) of at most ~2 mm: products of sines with 30-40 mm wavelengths."""
    x, y, z = points.unbind(-1)
    return torch.stack([
        1.6 * torch.sin(2 * math.pi * y / 40.0) * torch.cos(2 * math.pi * z / 36.0),
        -1.4 * torch.sin(2 * math.pi * z / 32.0 + 0.5),
        1.5 * torch.cos(2 * math.pi * x / 38.0) * torch.sin(2 * math.pi * y / 34.0),
    ], dim=-1)


def test_syn_recovers_smooth_warp_and_inverts(device: torch.device) -> None:
    def truth(x: torch.Tensor) -> torch.Tensor:  # fixed -> moving
        return x + smooth_warp(x)

    def truth_inverse(y: torch.Tensor) -> torch.Tensor:
        x = y.clone()
        for _ in range(30):
            x = y - smooth_warp(x)
        return x

    fixed_grid = grid((28, 28, 28), (1.5, 1.5, 1.5))
    result = register(phantom(fixed_grid), phantom(fixed_grid, truth_inverse), transform="syn", device=device)
    pts = inside(fixed_grid)
    before = (pts - truth(pts)).norm(dim=-1).mean()
    err = (result.forward.map_points(pts) - truth(pts)).norm(dim=-1)
    assert float(before) > 1.0
    assert float(err.mean()) < 0.4 * 1.5
    roundtrip = result.inverse_warp.map_points(result.warp.map_points(pts)) - pts
    assert float(roundtrip.norm(dim=-1).mean()) < 0.05 * 1.5


def test_foreground_mask_covers_the_object_not_the_background() -> None:
    """A noisy 'head' (ellipsoid, dark enclosed 'ventricle', bright speck far out): the object, holes filled."""
    on = grid((48, 48, 48), (2.0, 2.0, 2.0))
    pts = world_grid(on)
    radius = ((pts / torch.tensor([30.0, 24.0, 20.0], dtype=torch.float64)) ** 2).sum(-1).sqrt()
    data = torch.where(radius < 1.0, 100.0, 0.0) + 3.0 * torch.randn(on.shape, generator=torch.Generator().manual_seed(1))
    data[(pts - torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64)).norm(dim=-1) < 7.0] = 10.0
    data[2:4, 2:4, 2:4] = 150.0
    mask = foreground_mask(Image(data.float(), on.affine)).data > 0
    assert bool(mask[radius < 1.0].all())
    assert not bool(mask[radius > 1.0 + 4.0 / 20.0].any())


def test_registration_process_does_not_import_dynamo() -> None:
    """Seeding and a linear registration leave torch._dynamo (seconds of start-up) unimported."""
    code = (
        "import sys, torch\n"
        "from neurolearn_cli.engine.device import configure_determinism\n"
        "from neurolearn_cli.engine.image import Image\n"
        "from neurolearn_cli.engine.registration import register\n"
        "configure_determinism(0)\n"
        "image = Image(torch.rand(12, 12, 12), torch.eye(4, dtype=torch.float64))\n"
        "register(image, image, transform='rigid', device=torch.device('cpu'))\n"
        "print(torch.are_deterministic_algorithms_enabled(), 'torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "False"]


def test_batched_rigid_recovers_per_volume_motion(device: torch.device) -> None:
    ref_grid = grid((30, 32, 28), (1.3, 1.25, 1.4))
    angles = torch.tensor([[0.0, 0.0, 0.0], [0.02, -0.03, 0.01], [-0.035, 0.01, 0.03], [0.01, 0.03, -0.02]])
    shifts = torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.5, 0.8], [-1.5, 0.7, 0.2], [0.3, 1.8, -1.1]])
    truth = AffineTransform.rigid(angles, shifts, (0.5, -1.0, 0.0))
    pts = world_grid(ref_grid)
    inverse = truth.inverse()
    vols = [texture(AffineTransform(inverse.matrix[t]).map_points(pts)) for t in range(4)]
    series = Image(torch.stack(vols, dim=-1), ref_grid.affine)
    reference = phantom(ref_grid).to(device)
    series = series.to(device)
    estimate = register_rigid_batched(reference.data, reference.affine, series.data, series.affine).cpu()
    sample = inside(ref_grid)
    for t in range(4):
        got = AffineTransform(estimate[t]).map_points(sample)
        want = AffineTransform(truth.matrix[t]).map_points(sample)
        assert float((got - want).norm(dim=-1).mean()) < 0.1 * 1.25


def test_bad_inputs_name_the_input(device: torch.device) -> None:
    good = phantom(FIXED)
    with pytest.raises(ProcessingError, match="fixed image: image is constant"):
        register(Image(torch.zeros(FIXED.shape), FIXED.affine), good, transform="rigid", device=device)
    nan = good.data.clone()
    nan[3, 4, 5] = float("nan")
    with pytest.raises(ValueError, match="moving image"):
        register(good, good.with_data(nan), transform="rigid", device=device)
    with pytest.raises(ProcessingError, match="fixed mask"):
        register(good, good, transform="rigid", fixed_mask=good.with_data(torch.zeros(FIXED.shape)), device=device)


@pytest.mark.realdata
def test_real_scan_known_rigid_motion(device: torch.device) -> None:
    from neurolearn_cli.engine.io import load_image

    path = DATA / "xa30" / "bids" / "sub-01" / "anat" / "sub-01_acq-tfl_T1w.nii.gz"
    if not path.is_file():
        pytest.skip(f"real data not found: {path}")
    scan = load_image(path, device)
    small = torch.nn.functional.avg_pool3d(scan.data[None, None], 2)[0, 0]
    affine = scan.affine.clone()
    affine[:3, 3] += affine[:3, :3] @ torch.full((3,), 0.5, dtype=torch.float64)
    affine[:3, :3] *= 2
    real = Image(small.contiguous(), affine)
    centre = world_grid(real.grid).reshape(-1, 3).mean(0)
    truth = AffineTransform.rigid(torch.tensor([0.06, -0.04, 0.05]), torch.tensor([4.0, -3.0, 2.0]), centre)
    moved = resample(real, real.grid, truth.inverse(), order="bspline")
    head = real.data > real.data.mean()
    result = register(real, moved, transform="rigid", fixed_mask=real.with_data(head.float()), device=device)
    pts = world_grid(real.grid)[head]
    err = (result.forward.map_points(pts) - truth.map_points(pts)).norm(dim=-1)
    assert float(err.mean()) < 0.2 * 4.0


@pytest.mark.realdata
def test_cli_outputs_reproduce_with_ants(mni_4mm: Image, tmp_path: Path) -> None:
    import ants
    import nibabel as nib
    import typer
    from typer.testing import CliRunner

    from neurolearn_cli.cli.register import register_command
    from neurolearn_cli.engine.io import to_nifti

    affine = mni_4mm.affine.clone()
    affine[:3, 3] += affine[:3, :3] @ torch.full((3,), 0.5, dtype=torch.float64)
    affine[:3, :3] *= 2
    fixed = Image(torch.nn.functional.avg_pool3d(mni_4mm.data[None, None], 2)[0, 0].contiguous(), affine)
    pts = world_grid(fixed.grid)
    bump = DisplacementField(3.0 * torch.sin(pts / 25.0).float(), fixed.grid)
    truth = Chain([bump, AffineTransform.rigid(torch.tensor([0.05, 0.0, -0.04]), torch.tensor([3.0, -2.0, 1.0]))])
    moving = resample(fixed, fixed.grid, truth.inverse(), order="bspline")
    nib.save(to_nifti(fixed), tmp_path / "fixed.nii.gz")
    nib.save(to_nifti(moving), tmp_path / "moving.nii.gz")
    app = typer.Typer()
    app.command()(register_command)
    prefix = tmp_path / "out_"
    result = CliRunner().invoke(app, [str(tmp_path / "fixed.nii.gz"), str(tmp_path / "moving.nii.gz"), "-o", str(prefix)])
    assert result.exit_code == 0, result.output
    assert "final lncc" in result.output
    for name in ("Warped.nii.gz", "InverseWarped.nii.gz", "0GenericAffine.mat", "1Warp.nii.gz", "1InverseWarp.nii.gz"):
        assert (tmp_path / f"out_{name}").is_file()
    fixed_ants = ants.image_read(str(tmp_path / "fixed.nii.gz"))
    moving_ants = ants.image_read(str(tmp_path / "moving.nii.gz"))
    by_ants = ants.apply_transforms(fixed_ants, moving_ants, [str(tmp_path / "out_1Warp.nii.gz"), str(tmp_path / "out_0GenericAffine.mat")])
    ours = nib.load(tmp_path / "out_Warped.nii.gz").get_fdata()
    brain = fixed.data.numpy() > 0.1 * float(fixed.data.max())
    assert np.corrcoef(by_ants.numpy()[brain], ours[brain])[0, 1] > 0.999
    bad = CliRunner().invoke(app, [str(tmp_path / "fixed.nii.gz"), str(tmp_path / "missing.nii.gz"), "-o", str(prefix)])
    assert isinstance(bad.exception, InputError) and "missing.nii.gz" in str(bad.exception)


def test_moving_mask_leaves_a_lesion_out_of_the_cost(mni_4mm: Image, device: torch.device) -> None:
    """A dark blob planted in a warped template pulls the SyN map when counted, hardly at all when masked.

    The maps of the lesioned image, with and without the lesion's complement as
    moving mask, are compared with the map of the same image without the lesion,
    on the head within 25 mm of the lesion (outside it) and inside it.
    """
    from neurolearn_cli.engine.registration import SynSettings, register_syn

    fixed = mni_4mm
    pts = world_grid(fixed.grid)
    bend = torch.stack([3 * torch.sin(pts[..., 1] / 20), 2.5 * torch.cos(pts[..., 2] / 18),
                        3 * torch.sin(pts[..., 0] / 22)], dim=-1).float()
    moving = resample(fixed, fixed.grid, DisplacementField(bend, fixed.grid), order="bspline")
    distance = (pts - torch.tensor([25.0, -10.0, 20.0], dtype=pts.dtype)).norm(dim=-1)
    lesion = distance < 15.0
    lesioned = moving.data.where(~lesion, 0.35 * moving.data[moving.data > 0].mean())
    identity = torch.eye(4, dtype=torch.float64)
    settings = SynSettings(levels_mm=(8.0, 4.0), iterations=(8, 15))

    def warp(data: torch.Tensor, moving_mask: torch.Tensor | None = None) -> DisplacementField:
        fields = register_syn(fixed.data, fixed.affine, data, moving.affine, identity, fixed_mask=distance < 45.0,
                              moving_mask=moving_mask, settings=settings)
        return DisplacementField(fields.forward, fixed.grid)

    clean, counted, masked = warp(moving.data), warp(lesioned), warp(lesioned, ~lesion)
    for region in ((distance >= 15.0) & (distance < 25.0) & (fixed.data > 20), lesion):
        truth = clean.map_points(pts[region])
        error_counted = (counted.map_points(pts[region]) - truth).norm(dim=-1).mean()
        error_masked = (masked.map_points(pts[region]) - truth).norm(dim=-1).mean()
        assert float(error_counted) > 0.8
        assert float(error_masked) < 0.4 * float(error_counted)


def test_mask_rim_lets_the_metric_see_beyond_the_fixed_mask(mni_4mm: Image, device: torch.device) -> None:
    """With a fixed mask smaller than the head, the map just outside it is found only when the metric also counts
    a rim beyond the mask (``SynSettings.mask_rim``): there the rim's map is nearer the map found with the whole
    head counted."""
    from neurolearn_cli.engine.registration import SynSettings, register_syn

    fixed = mni_4mm
    pts = world_grid(fixed.grid)
    bend = torch.stack([3 * torch.sin(pts[..., 1] / 20), 2.5 * torch.cos(pts[..., 2] / 18),
                        3 * torch.sin(pts[..., 0] / 22)], dim=-1).float()
    moving = resample(fixed, fixed.grid, DisplacementField(bend, fixed.grid), order="bspline")
    distance = pts.norm(dim=-1)
    shell = (distance >= 40.0) & (distance < 50.0) & (fixed.data > 20)
    identity = torch.eye(4, dtype=torch.float64)

    def mapped(rim: int, radius_mm: float) -> torch.Tensor:
        settings = SynSettings(levels_mm=(8.0, 4.0), iterations=(8, 15), mask_rim=rim)
        fields = register_syn(fixed.data, fixed.affine, moving.data, moving.affine, identity,
                              fixed_mask=distance < radius_mm, settings=settings)
        return DisplacementField(fields.forward, fixed.grid).map_points(pts[shell])

    whole_head = mapped(0, 200.0)
    error = {rim: float((mapped(rim, 40.0) - whole_head).norm(dim=-1).mean()) for rim in (0, 2)}
    assert error[2] < 0.7 * error[0]


def test_linear_moving_mask_drops_the_samples_in_it(device: torch.device) -> None:
    """A bright slab over part of the moving phantom biases a rigid fit; leaving it out restores the truth."""
    truth = AffineTransform.rigid(torch.tensor([0.05, -0.04, 0.06]), torch.tensor([2.0, -1.5, 1.0]), (1.0, 2.0, -1.0))
    moving = phantom(MOVING, truth.inverse().map_points)
    slab = world_grid(MOVING)[..., 0] > 3.0
    corrupted = moving.with_data(torch.where(slab, 150.0, moving.data))
    pts = inside(FIXED)

    def error(**kwargs) -> float:
        result = register(phantom(FIXED), corrupted, transform="rigid", metric="ncc", device=device, **kwargs)
        return float((result.forward.map_points(pts) - truth.map_points(pts)).norm(dim=-1).mean())

    counted, masked = error(), error(moving_mask=corrupted.with_data((~slab).float()))
    assert counted > 1.0
    assert masked < 0.25 * 1.4

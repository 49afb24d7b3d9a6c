import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.morphology import erode, largest_component
from neurolearn_cli.engine.registration import LinearSettings
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.fmri.coregistration import (
    away_from,
    bbr_cost,
    coregister,
    refine_bbr,
    wm_boundary,
)
from neurolearn_cli.fmri.masking import intensity_mask
from neurolearn_cli.fmri.reference import bold_reference

T1_AFFINE = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0], dtype=torch.float64))
T1_AFFINE[:3, 3] = torch.tensor([-40.0, -44.0, -36.0], dtype=torch.float64)
BOLD_AFFINE = torch.diag(torch.tensor([3.0, 3.0, 3.3, 1.0], dtype=torch.float64))
BOLD_AFFINE[:3, 3] = torch.tensor([-42.0, -45.0, -39.6], dtype=torch.float64)


def _radius(affine: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float64) for n in shape]
    index = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    world = index @ affine[:3, :3].T + affine[:3, 3]
    return (world / torch.tensor([26.0, 30.0, 22.0], dtype=torch.float64)).norm(dim=-1)


def _deviation(a: torch.Tensor, b: torch.Tensor, points: torch.Tensor) -> float:
    pa = points @ a[:3, :3].T.float() + a[:3, 3].float()
    pb = points @ b[:3, :3].T.float() + b[:3, 3].float()
    return float((pa - pb).norm(dim=-1).max())


def test_bbr_recovers_a_known_shift_of_a_phantom():
    """An ellipsoidal WM core (dark in BOLD) inside a bright GM shell; start 3 mm off, BBR returns."""
    white_matter = Image((_radius(T1_AFFINE, (41, 45, 37)) < 0.7).float(), T1_AFFINE)
    r = _radius(BOLD_AFFINE, (28, 30, 24))
    bold = torch.where(r < 0.7, 60.0, torch.where(r < 1.0, 100.0, 5.0)).float()
    reference = Image(bold, BOLD_AFFINE)
    boundary = wm_boundary(white_matter)
    assert boundary.points.shape[0] > 500
    radial = boundary.points / boundary.points.norm(dim=-1, keepdim=True)
    assert float((boundary.normals * radial).sum(-1).mean()) > 0.9  # normals point outward
    start = AffineTransform.rigid(
        torch.tensor([0.0, 0.03, 0.0]), torch.tensor([3.0, -2.0, 0.0])
    ).matrix
    matrix, cost = refine_bbr(reference, boundary, start)
    assert cost < float(bbr_cost(reference, boundary, start))
    assert _deviation(matrix, torch.eye(4, dtype=torch.float64), boundary.points) < 1.0


def test_bbr_points_whose_samples_touch_a_lesion_are_dropped():
    """A lesion on the WM edge: the boundary points there sample it and go; the others stay."""
    white_matter = Image((_radius(T1_AFFINE, (41, 45, 37)) < 0.7).float(), T1_AFFINE)
    boundary = wm_boundary(white_matter)
    world = torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in (41, 45, 37)],
                                       indexing="ij"), -1) @ T1_AFFINE[:3, :3].T + T1_AFFINE[:3, 3]
    centre = torch.tensor([18.2, 0.0, 0.0], dtype=torch.float64)  # on the WM edge along x
    lesion = Image(((world - centre).norm(dim=-1) < 6.0).float(), T1_AFFINE)
    kept = away_from(boundary, lesion)
    distance = (kept.points.double() - centre).norm(dim=-1)
    assert 0 < kept.points.shape[0] < boundary.points.shape[0]
    assert float(distance.min()) > 6.0 - 2.0  # within 2 mm (the sampling depth) of the lesion: dropped
    removed = boundary.points.shape[0] - kept.points.shape[0]
    near = int(((boundary.points.double() - centre).norm(dim=-1) < 6.0).sum())
    assert removed >= near > 0


@pytest.mark.realdata
def test_xa30_coregistration_recovers_a_displaced_boldref(data_dir):
    """The xa30 boldref moved 10 mm / 4 deg off the header alignment comes back, and beats it on BBR.

    T1w brain and WM come from the boldref's own mask carried by the header
    alignment (same session) and the T1w's brightest inner voxels: a quick
    stand-in for smri's, good enough for the boundary.
    """
    root = data_dir / "xa30" / "bids" / "sub-01"
    cpu = torch.device("cpu")
    t1w = load_image(root / "anat" / "sub-01_acq-tfl_T1w.nii.gz", cpu)
    bold = load_image(root / "func" / "sub-01_task-fa_run-1_bold.nii.gz", cpu)
    reference = Image(bold_reference(bold, 1).data, bold.affine)
    mask = intensity_mask(reference.data)
    brain = resample(Image(mask.float(), reference.affine), t1w.grid).data > 0.5
    inner = erode(brain, 4)
    threshold = float(torch.quantile(t1w.data[inner][::3], 0.6))
    white_matter = t1w.with_data(largest_component(inner & (t1w.data > threshold), 3).float())
    boundary = wm_boundary(white_matter)
    center = boundary.points.mean(0).to(torch.float64)
    displacement = AffineTransform.rigid(
        torch.tensor([0.05, -0.04, 0.06]), torch.tensor([6.0, -5.0, 4.0]), center
    ).matrix
    moved = Image(reference.data, displacement @ reference.affine)  # header map is now `displacement`

    result = coregister(
        moved, mask, t1w.with_data(t1w.data * brain), white_matter,
        settings=LinearSettings((8.0, 4.0), (30, 15)),
    )

    residual = torch.linalg.inv(displacement) @ result.transform.matrix
    points = boundary.points.to(torch.float64)
    identity = torch.eye(4, dtype=torch.float64)
    assert _deviation(displacement, identity, points.float()) > 8.0
    assert _deviation(residual, identity, points.float()) < 3.5  # same session: near the header
    assert result.method == "bbr"
    assert result.cost < float(bbr_cost(moved, boundary, displacement)) - 0.02

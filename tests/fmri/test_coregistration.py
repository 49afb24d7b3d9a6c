import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.fmri.coregistration import bbr_cost, refine_bbr, wm_boundary

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

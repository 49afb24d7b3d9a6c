import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.fmri.figures import carpet_plot, coregistration_figure, mask_figure

AFFINE = torch.tensor(
    [[-3.0, 0, 0, 30], [0, 3.0, 0, -40], [0, 0, 3.3, -20], [0, 0, 0, 1]], dtype=torch.float64
)
LIMIT = 300_000


def _phantom() -> tuple[Image, torch.Tensor, torch.Tensor]:
    axes = [torch.arange(n, dtype=torch.float32) for n in (20, 24, 16)]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)
    r = ((grid - torch.tensor([9.5, 11.5, 7.5])) / torch.tensor([8.0, 10.0, 6.0])).norm(dim=-1)
    brain, core = r < 1.0, r < 0.6
    return Image(torch.where(core, 60.0, torch.where(brain, 100.0, 2.0)), AFFINE), brain, core


def test_contour_figures_are_small_reproducible_svgs_with_the_outline():
    reference, brain, core = _phantom()
    first = mask_figure(reference, brain, count=3)
    assert first.startswith(b"<?xml") and len(first) < LIMIT
    assert b"#ff3030" in first
    assert mask_figure(reference, brain, count=3) == first
    coreg = coregistration_figure(reference, core, count=3, fmt="png")
    assert coreg.startswith(b"\x89PNG") and len(coreg) < LIMIT


def test_carpet_plot_is_a_small_png():
    gen = torch.Generator().manual_seed(0)
    bold = 100 + torch.randn(20, 24, 16, 40, generator=gen)
    _, brain, core = _phantom()
    fd = [float("nan")] + [0.1] * 39
    png = carpet_plot(bold, {"GM": brain & ~core, "WM": core}, fd, [float("nan")] + [1.0] * 39, 2.0)
    assert png.startswith(b"\x89PNG") and len(png) < LIMIT

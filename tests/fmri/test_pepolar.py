"""PEPOLAR field estimation on a synthetic reverse phase-encoding pair with a known field."""

import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.errors import InputError
from neurolearn_cli.example_data.distortion import distort
from neurolearn_cli.fmri.fieldmap import EpiGeometry, gaussian_filter
from neurolearn_cli.fmri.pepolar import PepolarLevel, estimate_pepolar_field
from neurolearn_cli.fmri.pipeline import PepolarFieldmap, distortion_correction

SHAPE = (24, 30, 16)
AFFINE = torch.diag(torch.tensor([3.0, 3.0, 3.5, 1.0], dtype=torch.float64))
READOUT = 0.05  # s
AXIS = 1


def _phantom() -> torch.Tensor:
    """A textured ellipsoid (smooth random texture inside, dark outside)."""
    generator = torch.Generator().manual_seed(3)
    axes = [torch.linspace(-1.0, 1.0, n) for n in SHAPE]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    inside = (x / 0.8) ** 2 + (y / 0.85) ** 2 + (z / 0.75) ** 2 < 1.0
    texture = gaussian_filter(torch.rand(SHAPE, generator=generator), (1.2, 1.2, 1.2))
    texture = (texture - texture.mean()) / texture.std()
    return torch.where(inside, 100.0 + 25.0 * texture, torch.full(SHAPE, 2.0))


def _field_hz() -> torch.Tensor:
    """Two smooth off-resonance bumps (+45 Hz and -30 Hz): shifts up to about 2 voxels."""
    axes = [torch.arange(n, dtype=torch.float32) for n in SHAPE]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    bump = lambda c, w: torch.exp(  # noqa: E731
        -(((x - c[0]) / w) ** 2 + ((y - c[1]) / w) ** 2 + ((z - c[2]) / w) ** 2)
    )
    return 45.0 * bump((10, 18, 7), 5.0) - 30.0 * bump((15, 10, 9), 6.0)


def _distort(true: torch.Tensor, field: torch.Tensor, sign: int) -> torch.Tensor:
    """Observed EPI of polarity ``sign`` through ``field`` (Hz)."""
    return distort(true, sign * READOUT * field, AXIS)


def test_pepolar_recovers_a_known_field():
    true, field = _phantom(), _field_hz()
    up = Image(_distort(true, field, +1), AFFINE)
    down = Image(_distort(true, field, -1), AFFINE)
    mismatch = float((up.data - down.data).abs()[true > 50].mean())
    estimate = estimate_pepolar_field(
        up, EpiGeometry(AXIS, 1, READOUT), down, EpiGeometry(AXIS, -1, READOUT)
    )
    assert estimate.grid == up.grid
    brain = true > 50
    error_vox = ((estimate.data - field) * READOUT)[brain]
    true_vox = (field * READOUT)[brain]
    assert float(true_vox.abs().max()) > 1.5  # the distortion is large enough to matter
    assert float(error_vox.pow(2).mean().sqrt()) < 0.1 * float(true_vox.pow(2).mean().sqrt())
    assert float(error_vox.abs().mean()) < 0.05
    assert mismatch > 5.0


def test_pepolar_field_is_the_same_whichever_image_comes_first():
    true, field = _phantom(), _field_hz()
    up = Image(_distort(true, field, +1), AFFINE)
    down = Image(_distort(true, field, -1), AFFINE)
    quick = (PepolarLevel(2.0, 4.0, 15), PepolarLevel(1.0, 2.0, 15))
    plus, minus = EpiGeometry(AXIS, 1, READOUT), EpiGeometry(AXIS, -1, READOUT)
    a = estimate_pepolar_field(up, plus, down, minus, levels=quick)
    b = estimate_pepolar_field(down, minus, up, plus, levels=quick)
    brain = true > 50
    assert float((a.data - b.data)[brain].abs().mean()) * READOUT < 0.1


def test_pepolar_rejects_a_pair_that_is_not_reversed():
    image = Image(_phantom(), AFFINE)
    with pytest.raises(InputError, match="same phase-encoding direction"):
        estimate_pepolar_field(image, EpiGeometry(1, 1, READOUT), image, EpiGeometry(1, 1, READOUT))
    with pytest.raises(InputError, match="different axes"):
        estimate_pepolar_field(image, EpiGeometry(0, 1, READOUT), image, EpiGeometry(1, -1, READOUT))


def test_single_reversed_epi_pairs_with_the_bold_reference_in_the_sdc_path():
    """One j- EPI and a j BOLD: the boldref is the partner; the displacement is the true pull-back."""
    true, field = _phantom(), _field_hz()
    boldref = Image(_distort(true, field, +1), AFFINE)
    epi = Image(_distort(true, field, -1)[..., None].repeat(1, 1, 1, 2), AFFINE)  # 4D: averaged
    meta = {"PhaseEncodingDirection": "j", "TotalReadoutTime": READOUT}
    fieldmap = PepolarFieldmap(epi, {**meta, "PhaseEncodingDirection": "j-"}, "epi.nii.gz")
    notes: list[str] = []
    sdc, method = distortion_correction(fieldmap, meta, boldref, "bold.nii.gz", (), notes)
    assert method.startswith("reverse phase-encoding") and not notes
    expected = field * READOUT * 3.0  # j+ : pull from r + f T, 3 mm voxels along y
    brain = true > 50
    error = (sdc.displacement[..., AXIS] - expected)[brain]
    assert float(error.abs().mean()) < 0.2  # mm
    assert float(sdc.displacement[..., 0].abs().max()) < 1e-6


def test_sdc_is_skipped_with_a_note_when_the_epi_lacks_a_readout_time():
    image = Image(_phantom(), AFFINE)
    fieldmap = PepolarFieldmap(image, {"PhaseEncodingDirection": "j-"}, "epi.nii.gz")
    notes: list[str] = []
    meta = {"PhaseEncodingDirection": "j", "TotalReadoutTime": READOUT}
    sdc, method = distortion_correction(fieldmap, meta, image, "bold.nii.gz", (), notes)
    assert sdc is None and method == "none"
    assert "epi.nii.gz" in notes[0] and "TotalReadoutTime" in notes[0]

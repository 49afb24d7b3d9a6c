import json
import math

import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.metrics import ncc
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.errors import InputError
from neurolearn_cli.fmri.fieldmap import (
    EpiGeometry,
    FieldmapSkipped,
    echo_time_difference,
    epi_geometry,
    phasediff_field,
    shift_displacement,
)
from neurolearn_cli.fmri.masking import intensity_mask
from neurolearn_cli.fmri.reference import bold_reference

DTE = 0.00246
AFFINE = torch.tensor(
    [[-3.0, 0, 0, 90], [0, 3.0, 0, -100], [0, 0, 3.3, -30], [0, 0, 0, 1]], dtype=torch.float64
)
SHAPE = (30, 34, 20)


def _grid_coords() -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float32) for n in SHAPE]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)


def test_wrapped_phasediff_gives_the_known_field():
    coords = _grid_coords()
    centre = torch.tensor([(n - 1) / 2 for n in SHAPE])
    radius = (((coords - centre) / torch.tensor([11.0, 13.0, 8.0])) ** 2).sum(-1)
    head = radius <= 1
    bump = ((coords - torch.tensor([18.0, 20.0, 10.0])) ** 2 / torch.tensor([16.0, 25.0, 9.0])).sum(
        -1
    )
    truth = -40.0 + 320.0 * torch.exp(-0.5 * bump)  # Hz: 320 Hz wraps 1.5 times at dTE 2.46 ms
    phase = torch.remainder(2 * math.pi * DTE * truth + math.pi, 2 * math.pi) - math.pi
    siemens = torch.round((phase + math.pi) / (2 * math.pi) * 8190 - 4096)  # scanner units
    siemens[0, 0, 0], siemens[-1, -1, -1] = -4096.0, 4094.0
    magnitude = Image(1000.0 * head.float() + 5.0, AFFINE)
    field, mask = phasediff_field(Image(siemens, AFFINE), magnitude, DTE)
    assert (
        float(((phase[head] / (2 * math.pi * DTE)) - truth[head]).abs().max()) > 300
    )  # it did wrap
    inner = mask & (radius <= 0.6)
    error = (field.data - truth)[inner].abs()
    assert float(error.median()) < 3.0
    assert float(error.max()) < 25.0


def test_uniform_field_shifts_along_phase_encoding():
    grid = Image(torch.zeros(SHAPE), AFFINE).grid
    field = Image(torch.full(SHAPE, 100.0), AFFINE)
    geometry = EpiGeometry(axis=1, sign=-1, total_readout_time=0.03)
    displacement = shift_displacement(field, grid, geometry).displacement
    # 100 Hz x 30 ms = 3 voxels toward -j; one j step is (0, 3, 0) mm
    assert torch.allclose(displacement[10, 10, 10], torch.tensor([0.0, -9.0, 0.0]), atol=1e-5)
    true = torch.zeros(SHAPE)
    true[8:20, 10:22, 5:15] = 1.0
    distorted = torch.roll(true, -3, dims=1)  # 100 Hz with PE j- moves the signal 3 voxels to -j
    corrected = resample(
        Image(distorted, AFFINE), grid, shift_displacement(field, grid, geometry)
    ).data
    assert torch.allclose(corrected[:, 3:-3], true[:, 3:-3], atol=1e-5)


def test_missing_metadata_is_a_skip_and_bad_metadata_an_error():
    with pytest.raises(FieldmapSkipped, match="EchoTime1"):
        echo_time_difference({"EchoTime2": 0.00746}, "phasediff.json")
    with pytest.raises(FieldmapSkipped, match="TotalReadoutTime"):
        epi_geometry({"PhaseEncodingDirection": "j-"}, "bold.json")
    with pytest.raises(InputError, match="PhaseEncodingDirection"):
        epi_geometry({"PhaseEncodingDirection": "y", "TotalReadoutTime": 0.03}, "bold.json")
    with pytest.raises(InputError, match="EchoTime2"):
        echo_time_difference({"EchoTime1": 0.007, "EchoTime2": 0.005}, "phasediff.json")
    assert echo_time_difference({"EchoTime1": 0.00492, "EchoTime2": 0.00738}) == pytest.approx(DTE)


@pytest.mark.realdata
def test_xa30_fieldmap_brings_boldref_closer_to_magnitude(data_dir):
    """The undistorted GRE magnitude is the ground truth geometry: correction must raise NCC, the flipped sign lower it."""
    root = data_dir / "xa30" / "bids" / "sub-01"
    cpu = torch.device("cpu")
    bold = load_image(root / "func" / "sub-01_task-fa_run-1_bold.nii.gz", cpu)
    phasediff = load_image(root / "fmap" / "sub-01_phasediff.nii.gz", cpu)
    magnitude = load_image(root / "fmap" / "sub-01_magnitude1.nii.gz", cpu)
    delta_te = echo_time_difference(
        json.loads((root / "fmap" / "sub-01_phasediff.json").read_text())
    )
    geometry = epi_geometry(
        json.loads((root / "func" / "sub-01_task-fa_run-1_bold.json").read_text())
    )
    assert (geometry.axis, geometry.sign) == (1, -1)
    field, _ = phasediff_field(phasediff, magnitude, delta_te)
    reference = Image(bold_reference(bold, 1).data, bold.affine)
    target = resample(magnitude, bold.grid).data
    mask = intensity_mask(reference.data)

    def score(geom: EpiGeometry) -> float:
        corrected = resample(reference, bold.grid, shift_displacement(field, bold.grid, geom)).data
        return float(ncc(target[mask][None], corrected[mask][None]))

    flipped = EpiGeometry(geometry.axis, -geometry.sign, geometry.total_readout_time)
    none = EpiGeometry(geometry.axis, geometry.sign, 1e-9)
    assert score(geometry) > score(none) + 0.01 > score(flipped) + 0.02

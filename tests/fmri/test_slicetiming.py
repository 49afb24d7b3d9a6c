import math

import pytest
import torch

from neurolearn_cli.errors import InputError
from neurolearn_cli.fmri.slicetiming import correct_slice_timing, reference_time, slice_axis

TR = 1.0
FREQ = 0.07  # Hz, well below Nyquist (0.5 Hz)


def _sampled(times: list[float], axis: int, n: int = 100) -> torch.Tensor:
    """A sinusoid with a linear drift sampled at each slice's acquisition time."""
    t = torch.arange(n, dtype=torch.float64)
    shape = [3, 4, 5]
    shape[axis] = len(times)
    data = torch.zeros(*shape, n, dtype=torch.float64)
    for k, s in enumerate(times):
        index = [slice(None)] * 3
        index[axis] = k
        data[tuple(index)] = torch.sin(2 * math.pi * FREQ * (t * TR + s)) + 0.01 * t
    return data.float()


def _truth(t0: float, n: int = 100) -> torch.Tensor:
    t = torch.arange(n, dtype=torch.float64)
    return (torch.sin(2 * math.pi * FREQ * (t * TR + t0)) + 0.01 * t).float()


@pytest.mark.parametrize("direction,axis", [("k", 2), ("j", 1), ("i-", 0)])
def test_multiband_sinusoid_is_realigned(direction, axis):
    band = [0.0, 0.5, 0.25, 0.75]  # interleaved, multiband 2: two slices per time
    times = band + band
    data = _sampled(times[::-1] if direction.endswith("-") else times, axis)
    result = correct_slice_timing(
        data, times, TR, slice_time_ref=0.5, slice_encoding_direction=direction
    )
    assert result.reference_time == pytest.approx(0.375)
    before = (data - _truth(0.375))[..., 5:-5].abs().max()
    after = (result.data - _truth(0.375))[..., 5:-5].abs().max()
    assert before > 0.15
    assert after < 0.01
    assert result.data.dtype == torch.float32 and result.data.shape == data.shape


def test_dummy_volumes_are_copied_and_do_not_ring():
    times = [0.0, 0.5, 0.25, 0.75]
    data = _sampled(times, 2)
    data[..., :3] += 50.0
    result = correct_slice_timing(data, times, TR, skip=3)
    assert torch.equal(result.data[..., :3], data[..., :3])
    assert float((result.data - _truth(0.375))[..., 8:-5].abs().max()) < 0.01


def test_reference_time_follows_fmriprep():
    times = torch.tensor([0.0, 0.2, 0.8])
    assert reference_time(times, 0.0) == 0.0
    assert reference_time(times, 1.0) == pytest.approx(0.8)


def test_bad_slice_timing_names_the_sidecar():
    data = torch.zeros(3, 4, 5, 10)
    with pytest.raises(InputError, match="bold.json.*5 slices"):
        correct_slice_timing(data, [0.0, 0.5], TR, sidecar="bold.json")
    with pytest.raises(InputError, match="bold.json.*RepetitionTime"):
        correct_slice_timing(data, [0.0, 0.2, 0.4, 0.6, 1.2], TR, sidecar="bold.json")
    with pytest.raises(InputError, match="SliceEncodingDirection"):
        slice_axis("x", "bold.json")

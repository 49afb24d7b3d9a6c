import pytest
import torch

from neurolearn_cli.fmri.nonsteady import count_initial_outliers, detect_nonsteady


def _series(n_dummy: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    bold = 100 + torch.randn(7, 8, 9, 60, generator=gen)
    for t in range(n_dummy):
        bold[..., t] += 40.0 / (t + 1)
    return bold


@pytest.mark.parametrize("n_dummy", [0, 1, 3])
def test_detects_known_number_of_bright_initial_volumes(n_dummy):
    assert detect_nonsteady(_series(n_dummy)) == n_dummy


def test_dummy_scans_override_and_validation():
    assert detect_nonsteady(_series(3), dummy_scans=1) == 1
    with pytest.raises(ValueError, match="dummy_scans 60"):
        detect_nonsteady(_series(0), dummy_scans=60)
    with pytest.raises(ValueError, match="4D"):
        detect_nonsteady(torch.zeros(7, 8, 9))


def test_outlier_run_stops_at_first_inlier():
    signal = torch.tensor([50.0, 1.0, 50.0, 1.0, 1.1, 0.9, 1.0, 1.05, 0.95])
    assert count_initial_outliers(signal) == 1

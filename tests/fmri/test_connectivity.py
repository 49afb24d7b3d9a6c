import numpy as np
import pandas as pd
import pytest
import torch

from neurolearn_cli.fmri.connectivity import connectivity, parcel_means, select_confounds

T = 400


def _signals():
    """A chain X1 -> X2 -> X3: corr(X1, X3) > 0 but their partial correlation given X2 is 0."""
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(T)
    x2 = x1 + rng.standard_normal(T)
    x3 = x2 + rng.standard_normal(T)
    return np.stack([x1, x2, x3], axis=1)


def test_parcel_means_average_each_label():
    labels = torch.zeros(6, 7, 8, dtype=torch.int64)
    labels[:3] = 5
    labels[3:, :2] = 9
    bold = torch.arange(6 * 7 * 8, dtype=torch.float32).reshape(6, 7, 8, 1).repeat(1, 1, 1, 2)
    means = parcel_means(bold, labels, [5, 9, 11])
    assert means.shape == (2, 3)
    assert float(means[0, 0]) == pytest.approx(float(bold[:3, ..., 0].mean()))
    assert float(means[1, 1]) == pytest.approx(float(bold[3:, :2, :, 0].mean()))
    assert torch.isnan(means[:, 2]).all()


def test_connectivity_recovers_chain_after_removing_a_confound():
    truth = _signals()
    rng = np.random.default_rng(1)
    confound = rng.standard_normal(T)
    labels = torch.zeros(6, 7, 8, dtype=torch.int64)
    labels[:2], labels[2:4], labels[4:] = 1, 2, 3
    bold = torch.zeros(6, 7, 8, T)
    for k in range(3):
        voxels = labels == k + 1
        noise = 0.05 * torch.randn(int(voxels.sum()), T, generator=torch.Generator().manual_seed(k))
        bold[voxels] = torch.tensor(truth[:, k] + 5 * confound, dtype=torch.float32) + noise
    series = parcel_means(bold, labels, [1, 2, 3])
    table = pd.DataFrame({"white_matter": confound, "non_steady_state_outlier00": np.eye(T)[0]})
    confounds = table[["white_matter"]]
    kept = np.arange(1, T)
    result = connectivity(series, ["A", "B", "C"], confounds, kept, 2.0, high_pass_hz=None)
    expected = np.corrcoef(truth[1:], rowvar=False)
    np.testing.assert_allclose(result.pearson.to_numpy(), expected, atol=0.03)
    # precision of the chain is [[2, -1, 0], [-1, 2, -1], [0, -1, 1]]
    partial = [[1, 0.5, 0], [0.5, 1, 0.5**0.5], [0, 0.5**0.5, 1]]
    np.testing.assert_allclose(result.partial.to_numpy(), partial, atol=0.08)
    assert result.timeseries.shape == (T - 1, 3)
    assert result.pearson.index.name == "Node"


def test_select_confounds_strategy_and_scrubbing():
    table = pd.DataFrame(
        {
            "csf": [1.0, 2, 3, 4],
            "csf_derivative1": [np.nan, 1, 1, 1],
            "csf_power2": [1.0, 4, 9, 16],
            "csf_derivative1_power2": [np.nan, 1, 1, 1],
            "white_matter": 1.0,
            "white_matter_derivative1": 0.0,
            "white_matter_power2": 1.0,
            "white_matter_derivative1_power2": 0.0,
            "cosine00": 0.5,
            "non_steady_state_outlier00": [1.0, 0, 0, 0],
            "motion_outlier00": [0.0, 0, 1, 0],
        }
    )
    selected, kept = select_confounds(table, ["wm_csf", "high_pass", "scrub"])
    assert list(selected.columns)[-1] == "cosine00" and selected.shape == (4, 9)
    assert selected["csf_derivative1"][0] == 0.0
    np.testing.assert_array_equal(kept, [1, 3])
    with pytest.raises(ValueError, match="lacks columns"):
        select_confounds(table, ["motion"])

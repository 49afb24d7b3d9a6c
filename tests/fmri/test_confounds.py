import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from nilearn.interfaces.fmriprep import load_confounds

from neurolearn_cli.engine.transforms import AffineTransform
from neurolearn_cli.fmri.compcor import cosine_basis, left_singular, regress_out
from neurolearn_cli.fmri.confounds import build_confounds, expand, noise_masks
from neurolearn_cli.fmri.dvars import compute_dvars
from neurolearn_cli.fmri.motion import motion_parameters, relative_rmsd

TR = 2.0
N = 80
SHAPE = (12, 13, 14)


def _phantom():
    """Brain with GM shell, WM block and CSF block; WM/CSF carry a known noise signal."""
    gen = torch.Generator().manual_seed(0)
    gm = torch.zeros(SHAPE)
    wm = torch.zeros(SHAPE)
    csf = torch.zeros(SHAPE)
    gm[1:11, 1:12, 1:13] = 1
    wm[2:7, 2:11, 2:12] = 1
    csf[7:10, 2:11, 2:12] = 1
    gm[wm.bool() | csf.bool()] = 0
    t = torch.arange(N, dtype=torch.float32)
    noise = torch.sin(2 * math.pi * t * TR / 40.0)
    bold = 1000 + 5 * torch.randn(*SHAPE, N, generator=gen)
    bold[(wm + csf).bool()] += 30 * noise
    bold[..., :2] += 300.0
    brain = (gm + wm + csf) > 0
    return bold, brain, gm, wm, csf, noise


def _motion():
    rot = torch.zeros(N, 3, dtype=torch.float64)
    trans = torch.zeros(N, 3, dtype=torch.float64)
    trans[40:, 0] = 0.8  # one jump: FD = 0.8 at volume 40
    return AffineTransform.rigid(rot, trans, (0.0, 0.0, 0.0))


def test_dvars_of_white_noise_is_standardized_to_one():
    gen = torch.Generator().manual_seed(3)
    bold = 1000 + 10 * torch.randn(9, 8, 7, 200, generator=gen)
    result = compute_dvars(bold, torch.ones(9, 8, 7, dtype=torch.bool))
    assert torch.isnan(result.dvars[0]) and torch.isnan(result.std_dvars[0])
    assert float(result.std_dvars[1:].mean()) == pytest.approx(1.0, abs=0.03)
    assert float(result.dvars[1:].mean()) == pytest.approx(10 * math.sqrt(2), rel=0.03)


def test_cosine_basis_is_orthonormal_with_nilearn_order():
    basis = cosine_basis(156, 2.0)
    assert basis.shape == (156, 4)
    np.testing.assert_allclose((basis.T @ basis).numpy(), np.eye(4), atol=1e-10)


def test_expansion_derivative_and_powers():
    table = expand(pd.DataFrame({"csf": [1.0, 3.0, 2.0]}))
    assert list(table.columns) == ["csf", "csf_derivative1", "csf_power2", "csf_derivative1_power2"]
    assert np.isnan(table["csf_derivative1"][0])
    np.testing.assert_allclose(table.iloc[1:, 1:], [[2.0, 9.0, 4.0], [-1.0, 4.0, 1.0]])


def test_confounds_table_reads_with_nilearn(tmp_path):
    bold, brain, gm, wm, csf, noise = _phantom()
    masks = noise_masks(brain, gm, wm, csf)
    transforms = _motion()
    confounds = build_confounds(
        bold,
        masks,
        motion_parameters(transforms, (0, 0, 0)),
        relative_rmsd(transforms, (0, 0, 0)),
        TR,
        n_nonsteady=2,
    )
    table = confounds.table
    assert len(table) == N
    assert list(table.filter(like="non_steady_state_outlier").columns) == [
        "non_steady_state_outlier00",
        "non_steady_state_outlier01",
    ]
    spikes = table.filter(like="motion_outlier").to_numpy()
    np.testing.assert_array_equal(
        spikes.argmax(axis=0), [2, 40]
    )  # the dummy-to-steady drop, the 0.8 mm jump
    assert table["framewise_displacement"][40] == pytest.approx(0.8)
    component = table["a_comp_cor_00"].to_numpy()[2:]
    assert abs(np.corrcoef(component, noise.numpy()[2:])[0, 1]) > 0.95
    assert confounds.metadata["a_comp_cor_00"]["Mask"] == "combined"
    assert confounds.metadata["a_comp_cor_00"]["Retained"] is True
    assert all(
        k in confounds.metadata
        for k in ("c_comp_cor_00", "w_comp_cor_00", "t_comp_cor_00", "cosine00")
    )

    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    stem = "sub-01_task-rest"
    table.to_csv(
        func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a"
    )
    (func / f"{stem}_desc-confounds_timeseries.json").write_text(json.dumps(confounds.metadata))
    img = func / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    img.touch()
    loaded, sample_mask = load_confounds(
        str(img),
        strategy=("motion", "high_pass", "wm_csf", "compcor", "scrub"),
        motion="full",
        wm_csf="full",
        compcor="anat_combined",
        n_compcor="all",
        scrub=0,
        fd_threshold=0.5,
        std_dvars_threshold=1.5,
    )
    assert "trans_x_derivative1_power2" in loaded and "csf_derivative1_power2" in loaded
    assert "a_comp_cor_00" in loaded and "cosine00" in loaded
    assert 40 not in sample_mask and 0 not in sample_mask and 1 not in sample_mask
    assert not loaded.isna().any().any()


def test_noise_masks_lower_the_threshold_only_when_a_roi_would_be_empty():
    _, brain, gm, wm, csf, _ = _phantom()
    strict = noise_masks(brain, gm, wm, csf)
    thin = noise_masks(brain, gm, wm, csf * 0.95)  # partial-volumed CSF: nothing above 0.99
    assert int(strict.csf.sum()) >= 10
    assert torch.equal(thin.csf, strict.csf)  # found again at the next threshold (0.9)
    assert torch.equal(thin.wm, strict.wm)
    near_gm = noise_masks(brain, gm + csf, wm, csf)  # every CSF voxel next to GM
    assert torch.equal(near_gm.csf, csf.bool() & brain.bool())  # GM exclusion dropped, not empty
    none = noise_masks(brain, gm, wm, csf * 0.4)
    assert int(none.csf.sum()) < 10


def test_noise_masks_never_hold_a_lesion_voxel_nor_its_neighbours():
    _, brain, gm, wm, csf, _ = _phantom()
    lesion = torch.zeros(SHAPE)
    lesion[3:5, 4:7, 5:8] = 1.0  # inside the WM block
    lesion[8, 5, 6] = 0.3  # a CSF voxel partly in the lesion
    plain = noise_masks(brain, gm, wm, csf)
    masks = noise_masks(brain, gm, wm, csf, lesion=lesion)
    near = torch.nn.functional.max_pool3d((lesion > 0).float()[None, None], 3, stride=1, padding=1)[0, 0] > 0
    assert bool((plain.wm & near).any()) and bool((plain.csf & near).any())
    assert not bool((masks.combined & near).any())
    assert torch.equal(masks.wm, plain.wm & ~near) and torch.equal(masks.csf, plain.csf & ~near)
    assert torch.equal(masks.brain, plain.brain)


def test_left_singular_is_the_same_on_1_and_2_threads(threads):
    """LAPACK's SVD of a 200 x 200 Gram matrix splits its work by thread count; compcor's does not."""
    matrix = torch.randn(200, 5000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    results = []
    for count in (1, 2):
        threads(count)
        results.append(left_singular(matrix))
    first, second = results
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_regress_out_gives_the_same_bits_on_every_call_and_thread_count(threads):
    """LAPACK's least squares moved the last bits between calls and thread counts (300 volumes); the projection does not."""
    series = torch.randn(300, 20000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    basis = cosine_basis(300, TR)
    results = []
    for count in (1, 2, 1, 2, 2, 1):
        threads(count)
        results.append(regress_out(series.clone(), basis))
    assert all(torch.equal(results[0], other) for other in results[1:])
    design = torch.cat([torch.ones(300, 1, dtype=torch.float64), basis], dim=1)
    beta = torch.linalg.lstsq(design, series).solution
    torch.testing.assert_close(results[0], series - design @ beta, rtol=0, atol=1e-12)

"""Thick-slice T1w: smri completes on a real scan averaged over 6 mm slices, with a sane mask; the report says so.

A folded-cortex phantom with known tissue fractions checks the partial-volume mixture the thick slices switch on.
"""

from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from neurolearn_cli.boilerplate.facts import AnatFacts
from neurolearn_cli.boilerplate.summary import participant_summary
from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image
from neurolearn_cli.engine.resample import resample
from neurolearn_cli.example_data.reslice import thick_slices
from neurolearn_cli.smri.priors import gaussian_smooth
from neurolearn_cli.smri.segmentation import segment

T1W = "sub-0001/anat/sub-0001_T1w.nii.gz"
REFERENCE_MASK = "reference/fmriprep/sub-0001/anat/sub-0001_desc-brain_mask.nii.gz"


def test_thick_slices_keep_each_voxel_at_the_world_point_it_averages() -> None:
    data = np.arange(7 * 8 * 12, dtype=np.float32).reshape(7, 8, 12)
    affine = np.diag([0.9, 1.1, 1.3, 1.0])
    affine[:3, 3] = [-3.0, 4.0, 5.0]
    thick, thick_affine = thick_slices(data, affine, axis=2, factor=5)
    assert thick.shape == (7, 8, 2)
    np.testing.assert_allclose(thick[2, 3, 1], data[2, 3, 5:10].mean())
    np.testing.assert_allclose(nib.affines.apply_affine(thick_affine, [2, 3, 1]),
                               nib.affines.apply_affine(affine, [2, 3, 7]))
    fine, fine_affine = thick_slices(data, affine, axis=1, factor=4, in_plane=2)
    assert fine.shape == (14, 2, 24)
    np.testing.assert_allclose(nib.affines.voxel_sizes(fine_affine), [0.45, 4.4, 0.65])
    # a fine voxel's centre lies a quarter of an original voxel from the original's
    np.testing.assert_allclose(nib.affines.apply_affine(fine_affine, [1, 0, 1]),
                               nib.affines.apply_affine(affine, [0.25, 1.5, 0.25]))


def folded_cortex(slice_voxels: int) -> tuple[Image, torch.Tensor, torch.Tensor]:
    """A folded 3 mm GM ribbon over WM around a GM nucleus, in CSF and a skull shell, drawn at 0.5 mm and averaged to 1 x 1 x 0.5*N mm.

    Returns the noisy image, priors (GM, WM, CSF, other: the true fractions
    smoothed by 6 mm) and the true GM, WM, CSF volumes in mL.
    """
    fine_mm, n = 0.5, 136
    axis = (torch.arange(n, dtype=torch.float32) - (n - 1) / 2) * fine_mm
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    radius = torch.sqrt(x**2 + y**2 + z**2).clamp_min(1e-3)
    white = 17.0 + 4.0 * torch.sin(5 * torch.acos(z / radius)) * torch.cos(4 * torch.atan2(y, x))
    labels = torch.full((n, n, n), 4)  # GM, WM, CSF, skull, air
    labels[radius < 32] = 3
    labels[radius < 29] = 2
    labels[radius < white + 3.0] = 0
    labels[radius < white] = 1
    labels[radius < 7.0] = 0  # deep grey matter, as the thalamus: pure GM the thick slices keep
    blocks = (2, 2, slice_voxels)
    kept = [n // b * b for b in blocks]
    labels = labels[: kept[0], : kept[1], : kept[2]]
    shape = [k // b for k, b in zip(kept, blocks, strict=True)]
    fractions = torch.stack([(labels == k).float().reshape(shape[0], 2, shape[1], 2, shape[2], slice_voxels)
                             .mean((1, 3, 5)) for k in range(5)])
    means = torch.tensor([110.0, 170.0, 40.0, 80.0, 0.0]).view(5, 1, 1, 1)
    noise = 5.0 * torch.randn(shape, generator=torch.Generator().manual_seed(0))
    data = ((means * fractions).sum(0) + noise).clamp_min(0.0) + (fractions[4] < 1).float()
    spacing = (1.0, 1.0, fine_mm * slice_voxels)
    image = Image(data, torch.diag(torch.tensor([*spacing, 1.0], dtype=torch.float64)))
    priors = gaussian_smooth(torch.cat([fractions[:3], fractions[3:].sum(0, keepdim=True)]), spacing, 6.0)
    priors = priors.clamp_min(1e-3)
    volumes = fractions[:3].sum((1, 2, 3)) * math.prod(spacing) / 1000
    return image, priors / priors.sum(0, keepdim=True), volumes


def test_partial_volume_mixture_recovers_tissue_volumes_of_thick_slices() -> None:
    image, priors, truth = folded_cortex(slice_voxels=10)  # 1 x 1 x 5 mm
    pure = segment(image, priors, mrf_beta=0.3).posteriors[:3].sum((1, 2, 3)) * 5 / 1000
    mixed = segment(image, priors, mrf_beta=0.3, partial_volume=True).posteriors[:3].sum((1, 2, 3)) * 5 / 1000
    assert float((pure[0] / truth[0] - 1).abs()) > 0.2  # pure classes: every mixed voxel is one tissue
    np.testing.assert_allclose(mixed.numpy(), truth.numpy(), rtol=0.05)


def test_summary_gives_the_effective_resolution() -> None:
    def row(voxel: tuple[float, float, float]) -> str:
        facts = AnatFacts(participant="01", t1w_images=1, template=None, voxel_mm=voxel)
        return dict(participant_summary("01", facts, []))["T1w resolution"]

    assert row((1.0, 1.0, 1.0)) == "1 x 1 x 1 mm"
    assert row((1.0, 1.0, 5.0)).startswith("1 x 1 x 5 mm (anisotropic: the effective resolution is 5 mm")


@pytest.mark.realdata
def test_smri_on_thick_slices(cli, shared_data, tmp_path) -> None:
    source = nib.load(shared_data / "aomic" / "bids" / T1W)
    affine = source.affine.copy()
    affine[:3, :3] *= 2  # every second voxel (2 mm), as the other real-data tests, then 6 mm axial slices
    axis = nib.aff2axcodes(affine).index("I")
    data, thick_affine = thick_slices(np.asanyarray(source.dataobj)[::2, ::2, ::2], affine, axis=axis, factor=3)
    root = tmp_path / "bids"
    (root / "sub-0001" / "anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "thick", "BIDSVersion": "1.9.0"}))
    nib.save(nib.Nifti1Image(data, thick_affine), root / T1W)
    out = tmp_path / "out"
    code, _, err = cli(root, out, "participant", "--stages", "smri")
    assert code == 0, err
    anat = out / "sub-0001" / "anat"
    mask = load_image(anat / "sub-0001_desc-brain_mask.nii.gz", torch.device("cpu"))
    assert sorted(mask.spacing) == pytest.approx([2.0, 2.0, 6.0], abs=1e-4)  # kept on its native grid
    reference = load_image(shared_data / "aomic" / REFERENCE_MASK, torch.device("cpu"))
    ours = resample(mask, reference.grid, order="nearest").data > 0.5
    truth = reference.data > 0.5
    assert float(2 * (ours & truth).sum() / (ours.sum() + truth.sum())) > 0.93
    qc = json.loads((anat / "sub-0001_seg-neurolearnGM108_stat-gmvolume_morph.json").read_text())["QC"]
    assert 550 < qc["volume_GM_ml"] < 800 and 400 < qc["volume_WM_ml"] < 600  # aomic at 1 mm: about 690 and 480

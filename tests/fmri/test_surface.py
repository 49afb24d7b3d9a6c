"""BOLD on the surface: a series whose value is a known function of position is recovered at every vertex."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import nilearn
import numpy as np
import pytest
import torch

from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.transforms import AffineTransform, Chain
from neurolearn_cli.fmri.surface import DEPTHS, RibbonSampling, resample_series, sample_ribbon
from neurolearn_cli.surfaces.gifti import read_mesh, timeseries_gifti
from neurolearn_cli.surfaces.mesh import Mesh
from neurolearn_cli.surfaces.resample import barycentric_weights

CPU = torch.device("cpu")
FSAVERAGE5 = Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5"
SHAPE = (21, 22, 24)  # axes all differ
N_VOLUMES = 7
CENTRE = np.array([1.0, -2.0, 3.0])  # world mm of the ribbon's centre
SHIFT = np.array([2.0, -1.5, 1.0])  # T1w -> BOLD translation (mm)


def _sphere(radius: float) -> Mesh:
    sphere = read_mesh(FSAVERAGE5 / "sphere_left.gii.gz")
    unit = sphere.vertices / np.linalg.norm(sphere.vertices, axis=1, keepdims=True)
    return sphere.with_vertices(CENTRE + radius * unit)


def _field(points: np.ndarray) -> np.ndarray:
    """A positive linear function of world position."""
    return 500.0 + 4.0 * points[..., 0] - 3.0 * points[..., 1] + 2.0 * points[..., 2]


def _bold() -> tuple[Image, np.ndarray]:
    """A 4D BOLD (3 x 3 x 3.3 mm, 7 volumes): the linear field times a per-volume gain, and the gains."""
    affine = np.array([[3.0, 0, 0, -30.0], [0, 3.0, 0, -35.0], [0, 0, 3.3, -36.0], [0, 0, 0, 1]])
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij"), axis=-1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    gains = 1.0 + 0.1 * np.sin(np.arange(N_VOLUMES))
    data = _field(world)[..., None] * gains
    return Image(torch.tensor(data, dtype=torch.float32), torch.tensor(affine)), gains


def _to_bold() -> Chain:
    """T1w -> BOLD points: a translation, then an identity head motion per volume."""
    shift = torch.eye(4, dtype=torch.float64)
    shift[:3, 3] = torch.tensor(SHIFT)
    return Chain([AffineTransform(shift), AffineTransform(torch.eye(4, dtype=torch.float64).repeat(N_VOLUMES, 1, 1))])


def _brain(bold: Image, keep_left_of: float | None = None) -> Image:
    """A T1w-space brain mask on the BOLD's grid: everything, or the voxels with x below ``keep_left_of``."""
    mask = torch.ones(SHAPE)
    if keep_left_of is not None:
        x = bold.affine[0, 0] * torch.arange(SHAPE[0]) + bold.affine[0, 3]
        mask[x >= keep_left_of] = 0
    return Image(mask, bold.affine)


def test_a_linear_field_is_recovered_at_mid_depth_through_the_transform_chain():
    bold, gains = _bold()
    white, pial = _sphere(12.0), _sphere(16.0)
    sampled = sample_ribbon(bold, white, pial, _to_bold(), _brain(bold))
    mid = (white.vertices + pial.vertices) / 2 + SHIFT  # depths average to mid-thickness (linear field)
    expected = _field(mid)[:, None] * gains
    assert sampled.series.shape == (len(white.vertices), N_VOLUMES)
    assert sampled.kept == len(DEPTHS) * len(white.vertices) and sampled.outside == sampled.unreliable == 0
    np.testing.assert_allclose(sampled.series, expected, rtol=1e-4)


def test_samples_outside_the_brain_are_left_out_and_empty_vertices_are_missing():
    bold, gains = _bold()
    white, pial = _sphere(12.0), _sphere(16.0)
    cut = float(CENTRE[0])  # the mask keeps x < cut (the samples, at T1w points, are checked against it)
    sampled = sample_ribbon(bold, white, pial, _to_bold(), _brain(bold, keep_left_of=cut))
    # T1w points are checked against the mask by linear interpolation: a voxel's worth of margin either side
    inside = pial.vertices[:, 0] < cut - 3.0
    outside = white.vertices[:, 0] > cut + 3.0
    assert np.isnan(sampled.series[outside]).all()
    assert np.isfinite(sampled.series[inside]).all() and sampled.outside > 0
    all_depths = (white.vertices[:, 0] < cut - 3.0) & inside
    mid = (white.vertices + pial.vertices) / 2 + SHIFT
    np.testing.assert_allclose(sampled.series[all_depths], _field(mid[all_depths])[:, None] * gains, rtol=1e-4)


def _ribbon_with_noisy_patch(seed: int, patch: tuple[slice, slice, slice]) -> RibbonSampling:
    """The ribbon between spheres of radius 12 and 16 sampled from a run whose ``patch`` of voxels is noisy."""
    bold, _ = _bold()
    noisy = bold.data.clone()
    shape = tuple(s.stop - s.start for s in patch) + (N_VOLUMES,)
    gain = 1.0 + 0.5 * np.random.default_rng(seed).standard_normal(shape)
    noisy[patch] *= torch.tensor(gain, dtype=torch.float32)
    return sample_ribbon(bold.with_data(noisy), _sphere(12.0), _sphere(16.0), _to_bold(), _brain(bold))


def test_a_noisy_patch_is_left_out_as_goodvoxels_does():
    sampled = _ribbon_with_noisy_patch(0, (slice(5, 8), slice(9, 13), slice(10, 14)))  # voxels the ribbon crosses
    assert 0 < sampled.unreliable < 0.1 * sampled.kept


def test_series_reach_fsaverage5_through_the_sphere_and_nilearn_reads_them(tmp_path: Path):
    sphere = read_mesh(FSAVERAGE5 / "sphere_left.gii.gz")
    rotation = np.array([[np.cos(0.3), -np.sin(0.3), 0.0], [np.sin(0.3), np.cos(0.3), 0.0], [0.0, 0.0, 1.0]])
    ours = sphere.with_vertices(sphere.vertices @ rotation.T)  # "our" vertices, registered onto fsaverage's sphere
    series = np.stack([ours.vertices[:, 2] * (t + 1) for t in range(3)], axis=1).astype(np.float32)
    series[:5] = np.nan  # missing vertices are left out of each mix; a target on one of them is missing
    on_template = resample_series(series, barycentric_weights(sphere.vertices, ours))
    present = np.isfinite(on_template[:, 0])
    assert on_template.shape == (10242, 3) and 10242 - 5 <= present.sum() < 10242
    np.testing.assert_allclose(on_template[present, 0], sphere.vertices[present, 2], atol=0.5)  # a z rotation keeps z
    path = tmp_path / "sub-01_task-x_hemi-L_space-fsaverage5_bold.func.gii"
    path.write_bytes(timeseries_gifti(on_template, "L", 2.0))
    from nilearn.surface import load_surf_data

    loaded = load_surf_data(str(path))
    assert loaded.shape == (10242, 3)
    np.testing.assert_array_equal(loaded, on_template)
    assert nib.load(str(path)).darrays[0].meta["TimeStep"] == "2000"


@pytest.mark.parametrize("angle", [0.0, 1.0])
def test_sphere_resampling_rows_are_barycentric(angle: float):
    sphere = read_mesh(FSAVERAGE5 / "sphere_left.gii.gz")
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])
    weights = barycentric_weights(sphere.vertices @ rotation.T, sphere)
    assert np.allclose(weights.sum(axis=1), 1.0) and (weights.data >= 0).all() and (weights.getnnz(axis=1) <= 3).all()
    if angle == 0.0:
        assert np.allclose(weights.diagonal(), 1.0)


def _rotation_x(angle: float) -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(angle), -np.sin(angle)], [0.0, np.sin(angle), np.cos(angle)]])


def test_fslr_is_reached_through_a_templateflow_home_by_project_unproject(tmp_path: Path):
    from neurolearn_cli.spaces import parse_output_space
    from neurolearn_cli.surfaces.gifti import surface_gifti
    from neurolearn_cli.surfaces.resample import project_unproject
    from neurolearn_cli.surfaces.template import template_spheres

    fslr = parse_output_space("fsLR")
    assert "no fsaverage 164k sphere" in str(template_spheres(fslr, tmp_path))
    sphere = read_mesh(FSAVERAGE5 / "sphere_left.gii.gz")  # stands in for every sphere of the home
    rotation = _rotation_x(0.4)  # fsaverage's sphere deformed onto fsLR's: here a rotation
    files = {"tpl-fsaverage/tpl-fsaverage_hemi-L_den-164k_sphere.surf.gii": sphere,
             "tpl-fsLR/tpl-fsLR_space-fsaverage_hemi-L_den-164k_sphere.surf.gii": sphere.with_vertices(
                 sphere.vertices @ rotation.T),
             "tpl-fsLR/tpl-fsLR_hemi-L_den-32k_sphere.surf.gii": sphere}
    for name, mesh in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(surface_gifti(mesh, "L", "Spherical"))
    assert "no fsaverage 164k sphere (tpl-fsaverage_hemi-R" in str(template_spheres(fslr, tmp_path))
    for name in files:  # the right hemisphere's files, the same meshes
        right = tmp_path / name.replace("hemi-L", "hemi-R")
        right.write_bytes((tmp_path / name).read_bytes())
    found = template_spheres(fslr, tmp_path)
    assert not isinstance(found, str) and found["L"].unproject_from is not None and found["L"].project_to is not None
    ours = sphere.with_vertices(sphere.vertices @ _rotation_x(-0.2).T)  # "our" registered sphere on fsaverage's
    on_fslr = project_unproject(ours.vertices, read_mesh(found["L"].project_to),
                                read_mesh(found["L"].unproject_from).vertices)
    np.testing.assert_allclose(on_fslr, ours.vertices @ rotation.T, atol=0.05)
    values = ours.vertices[:, 1:2].astype(np.float32)  # y on fsaverage's sphere
    target = read_mesh(found["L"].sphere).vertices
    resampled = resample_series(values, barycentric_weights(target, ours.with_vertices(on_fslr)))
    expected = (target @ rotation)[:, 1]  # the fsLR point's place on fsaverage's sphere
    np.testing.assert_allclose(resampled[:, 0], expected, atol=0.6)


def test_a_vertex_whose_every_sample_is_unreliable_keeps_them():
    sampled = _ribbon_with_noisy_patch(1, (slice(5, 9), slice(8, 13), slice(9, 14)))  # whole depths of some vertices
    assert sampled.unreliable > 0 and np.isfinite(sampled.series).all()

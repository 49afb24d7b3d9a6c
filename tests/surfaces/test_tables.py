"""The surfaces stage's tables: per-parcel thickness from the nearest cortical voxel, tissue volumes from meshes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from neurolearn_cli.surfaces.mesh import Mesh, signed_volume
from neurolearn_cli.surfaces.parcels import UNLABELLED, parcel_means, vertex_labels
from neurolearn_cli.surfaces.volumes import VOLUME_COLUMNS, posterior_fossa, surface_volumes

#: 2 mm voxels, shifted: world = 2 * index + (-10, 20, 5).
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, 20], [0, 0, 2.0, 5], [0, 0, 0, 1]])


def _grid_labels() -> tuple[np.ndarray, np.ndarray]:
    """A 7x8x9 label grid: parcel 1 at x index < 3, parcel 2 beyond; cortex only on the slab z index 4."""
    labels = np.zeros((7, 8, 9), dtype=int)
    labels[:3], labels[3:] = 1, 2
    cortex = np.zeros(labels.shape, dtype=bool)
    cortex[:, :, 4] = True
    return labels, cortex


def test_vertices_take_the_nearest_cortical_voxels_label() -> None:
    labels, cortex = _grid_labels()
    world = lambda i, j, k: AFFINE[:3, :3] @ np.array([i, j, k], float) + AFFINE[:3, 3]  # noqa: E731
    points = np.array([
        world(1, 2, 4.4),   # in the slab, parcel 1
        world(5, 7, 3.2),   # just below the slab, parcel 2
        world(2.4, 0, 5.0),  # nearest slab voxel at x index 2: parcel 1
        world(6, 6, 8),     # 8 mm from the slab: beyond the 5 mm reach
    ])
    found = vertex_labels(points, labels, cortex, AFFINE)
    np.testing.assert_array_equal(found, [1, 2, 1, UNLABELLED])
    # a labelled voxel outside the cortex is never chosen
    np.testing.assert_array_equal(vertex_labels(points[:1], labels, np.zeros_like(cortex), AFFINE), [UNLABELLED])


def test_parcel_means_are_missing_where_no_vertex_falls() -> None:
    table = pd.DataFrame({"index": [1, 2, 7], "name": ["A", "B", "deep"]})
    means = parcel_means(np.array([2.0, 3.0, 4.0, 9.0]), np.array([1, 1, 2, UNLABELLED]), table)
    assert means["A"] == 2.5 and means["B"] == 4.0
    assert math.isnan(means["deep"])


def _cube(low: float, high: float) -> Mesh:
    """A closed axis-aligned cube mesh, faces outward."""
    corners = np.array([[x, y, z] for x in (low, high) for y in (low, high) for z in (low, high)], float)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    mesh = Mesh(corners, faces)
    return mesh if signed_volume(mesh) > 0 else Mesh(corners, faces[:, ::-1].copy())


def test_surface_volumes_split_the_brain_at_the_surfaces() -> None:
    """Two cube 'hemispheres' (white 20 mm, pial 30 mm sides) and a grid of 1 mL voxels with known tissues."""
    whites = {"L": _cube(0, 20), "R": _cube(100, 120)}
    pials = {"L": _cube(-5, 25), "R": _cube(95, 125)}
    shape = (5, 6, 7)  # 42 voxels per x index
    inside_white = np.zeros(shape, bool)
    inside_white[:2] = True
    inside_pial = inside_white.copy()
    inside_pial[2] = True  # the ribbon
    deep = np.zeros(shape, bool)
    deep[0] = deep[2, :3] = True  # 42 voxels inside white, 21 in the ribbon (not counted)
    fossa = np.zeros(shape, bool)
    fossa[3] = True  # index 4: outside the pial, but not in the posterior fossa
    brain = np.ones(shape, bool)
    tissues = {"GM": np.full(shape, 0.25), "WM": np.full(shape, 0.5), "CSF": np.full(shape, 0.125)}
    volumes = surface_volumes(whites, pials, inside_white, inside_pial, tissues, brain, deep, fossa, voxel_ml=1.0)
    assert list(volumes) == list(VOLUME_COLUMNS)
    cortical = 2 * (30**3 - 20**3) / 1000.0
    assert math.isclose(volumes["cortical_GM"], cortical)
    assert math.isclose(volumes["subcortical_GM"], 42 * 0.25)
    assert math.isclose(volumes["cerebellar_GM"], 42 * 0.25)
    assert math.isclose(volumes["cerebellar_WM"], 42 * 0.5)
    assert math.isclose(volumes["cerebral_WM"], 2 * 20**3 / 1000.0 - 42 * 0.25 - 84 * 0.125)
    assert math.isclose(volumes["GM_surface"], cortical + 42 * 0.25 + 42 * 0.25)
    assert math.isclose(volumes["WM_surface"], volumes["cerebral_WM"] + 42 * 0.5)
    # the posterior fossa is a box in template mm; its brainstem, in front of the fourth ventricle, is not in it,
    # the vermis behind it and the cerebellar hemispheres beside it are
    points = np.array([[0.0, -50, -20], [0, -50, 10], [0, 10, -20], [0, -35, -30], [0, -60, -30], [30, -35, -30]])
    np.testing.assert_array_equal(posterior_fossa(points), [True, False, False, False, True, True])

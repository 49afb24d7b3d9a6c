"""Binary morphology against scipy.ndimage on 7x8x9 masks, one of them touching the grid's faces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch

from neurolearn_cli.engine import morphology as mm

SHAPE = (7, 8, 9)


def _random(seed: int, fraction: float) -> np.ndarray:
    return np.random.default_rng(seed).random(SHAPE) < fraction


def _masks() -> dict[str, np.ndarray]:
    blob = np.zeros(SHAPE, dtype=bool)
    blob[1:6, 2:7, 2:8] = True
    blob[3, 4, 4] = False  # a hole
    edge = np.zeros(SHAPE, dtype=bool)
    edge[0:4, :5, 3:9] = True  # touches the faces x=0, y=0 and z=8
    edge[5, 7, 0] = True  # an isolated corner voxel
    return {"sparse": _random(0, 0.15), "dense": _random(1, 0.7), "blob": blob, "edge": edge, "empty": ~blob & blob}


ELEMENTS = {
    "cube": None,
    "cross": mm.cross(),
    "box": mm.box((1, 2, 0)),
    "ball": mm.ball((2, 1, 2)),
    "corner": np.array([[[0, 0, 0], [0, 1, 1], [0, 0, 0]]] + [[[0, 0, 0], [0, 0, 0], [0, 1, 0]]] * 2, dtype=bool),
}


def _scipy_structure(element: np.ndarray | None) -> np.ndarray:
    return np.ones((3, 3, 3), dtype=bool) if element is None else element


@pytest.mark.parametrize("iterations", [1, 2])
@pytest.mark.parametrize("element", list(ELEMENTS))
@pytest.mark.parametrize("name", list(_masks()))
def test_dilate_erode_open_close_match_scipy(name: str, element: str, iterations: int) -> None:
    mask = _masks()[name]
    structure = ELEMENTS[element]
    expected = _scipy_structure(structure)
    tensor = torch.from_numpy(mask)
    pairs = [
        (mm.dilate, ndi.binary_dilation),
        (mm.erode, ndi.binary_erosion),
        (mm.opening, ndi.binary_opening),
        (mm.closing, ndi.binary_closing),
    ]
    for ours, theirs in pairs:
        result = ours(tensor, iterations, structure=structure)
        assert result.dtype == torch.bool and result.shape == SHAPE
        assert np.array_equal(result.numpy(), theirs(mask, structure=expected, iterations=iterations)), ours.__name__


@pytest.mark.parametrize("element", ["cross", "ball", "corner"])
@pytest.mark.parametrize("name", ["sparse", "edge"])
def test_convolution_path_matches_scipy(name: str, element: str) -> None:
    """The device path for elements other than a box (scipy runs them for CPU tensors)."""
    mask, structure = _masks()[name], ELEMENTS[element]
    tensor = torch.from_numpy(mask)
    assert np.array_equal(mm._dilate_once(tensor, structure, host=False).numpy(), ndi.binary_dilation(mask, structure))
    assert np.array_equal(mm._erode_once(tensor, structure, host=False).numpy(), ndi.binary_erosion(mask, structure))


def test_edge_rule_outside_is_background() -> None:
    full = torch.ones(SHAPE, dtype=torch.bool)
    eroded = mm.erode(full)
    assert int(eroded.sum()) == 5 * 6 * 7  # the faces' voxels go
    assert not bool(mm.dilate(torch.zeros(SHAPE, dtype=torch.bool)).any())
    closed = mm.closing(torch.from_numpy(_masks()["edge"]))
    assert not bool(closed[0].any())  # scipy's closing erodes the face x=0


def test_extended_closing_contains_the_mask_and_is_scipy_on_a_padded_grid() -> None:
    mask = _masks()["edge"]
    mask[2, 7, 6] = False
    mask[6, 6:8, 2] = True
    ball = mm.ball((2, 1, 1))
    closed = mm.closing(torch.from_numpy(mask), structure=ball, extend=True).numpy()
    padded = np.pad(mask, [(2, 2), (1, 1), (1, 1)])
    expected = ndi.binary_closing(padded, structure=ball)[2:-2, 1:-1, 1:-1]
    assert np.array_equal(closed, expected)
    assert not (mask & ~closed).any()
    assert (closed & ~ndi.binary_closing(mask, structure=ball)).any()


def test_box_dilation_by_radius_equals_repeated_cube() -> None:
    mask = torch.from_numpy(_masks()["sparse"])
    assert torch.equal(mm.dilate(mask, structure=mm.box(2)), mm.dilate(mask, 2))
    cube = torch.nn.functional.max_pool3d(mask[None, None].float(), 5, stride=1, padding=2)[0, 0] > 0
    assert torch.equal(mm.dilate(mask, structure=mm.box(2)), cube)
    assert mm.radius_voxels((0.7, 1.0, 3.0), 2.0) == (3, 2, 1)
    assert mm.radius_voxels((1.0, 1.0, 5.0), 2.0) == (2, 2, 0)  # thick slices: the ball stays in its slice
    assert mm.radius_voxels((5.0, 5.0, 5.0), 2.0) == (1, 1, 1)  # the finest axis keeps at least one voxel


@pytest.mark.parametrize("connectivity", [1, 2, 3])
@pytest.mark.parametrize("name", ["sparse", "edge"])
def test_largest_component_matches_scipy_label(name: str, connectivity: int) -> None:
    mask = _masks()[name]
    labels, count = ndi.label(mask, structure=ndi.generate_binary_structure(3, connectivity))
    sizes = np.bincount(labels.ravel())[1:]
    expected = labels == 1 + int(np.argmax(sizes))
    assert np.array_equal(mm.largest_component(torch.from_numpy(mask), connectivity).numpy(), expected)
    assert count > 1


def test_largest_component_of_empty_and_single() -> None:
    empty = torch.zeros(SHAPE, dtype=torch.bool)
    assert not bool(mm.largest_component(empty).any())
    blob = torch.from_numpy(_masks()["blob"])
    assert torch.equal(mm.largest_component(blob), blob)


@pytest.mark.parametrize("name", ["sparse", "dense", "blob", "edge"])
def test_fill_holes_matches_scipy(name: str) -> None:
    mask = _masks()[name]
    assert np.array_equal(mm.fill_holes(torch.from_numpy(mask)).numpy(), ndi.binary_fill_holes(mask))
    for axis in range(3):
        expected = np.stack([ndi.binary_fill_holes(plane) for plane in np.moveaxis(mask, axis, 0)], axis=axis)
        assert np.array_equal(mm.fill_holes(torch.from_numpy(mask), plane_axis=axis).numpy(), expected)


def test_fill_holes_in_plane_only() -> None:
    tunnel = _masks()["blob"]
    tunnel[3, 4, :] = False  # open to the faces z=0 and z=8
    filled = mm.fill_holes(torch.from_numpy(tunnel))
    assert not bool(filled[3, 4].any())
    across_z = mm.fill_holes(torch.from_numpy(tunnel), plane_axis=2)
    assert bool(across_z[3, 4, 2:8].all()) and not bool(across_z[3, 4, :2].any())
    assert not bool(mm.fill_holes(torch.from_numpy(tunnel), plane_axis=0)[3, 4].any())

"""The surface pipeline on synthetic phantoms of known geometry and topology."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("skimage")

from neurolearn_cli.surfaces.mesh import euler_characteristic, extract, self_intersections  # noqa: E402
from neurolearn_cli.surfaces.reconstruct import reconstruct_hemisphere  # noqa: E402
from neurolearn_cli.surfaces.topology import grow, seed_ball, simple_for_growth  # noqa: E402

SHAPE = (40, 43, 46)
CENTRE = torch.tensor([19.6, 21.3, 22.8])


def _radius(shape: tuple[int, int, int] = SHAPE, centre: torch.Tensor = CENTRE) -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return ((points - centre) ** 2).sum(dim=-1).sqrt()


def test_sphere_in_shell_thickness_and_topology() -> None:
    """A WM ball of radius 11 in a 3-voxel GM shell: white at 11, pial at 14, thickness 3 within 0.1 voxel."""
    radius = _radius()
    wm = (11.5 - radius).clamp(0, 1)
    inside = (14.5 - radius).clamp(0, 1)
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, 3] = torch.tensor([-20.0, -30.0, 10.0])
    result = reconstruct_hemisphere(wm, inside, affine)
    centre = CENTRE.numpy() + affine[:3, 3].numpy()
    white_radius = np.linalg.norm(result.white.vertices - centre, axis=1)
    pial_radius = np.linalg.norm(result.pial.vertices - centre, axis=1)
    assert abs(white_radius.mean() - 11.0) < 0.1 and white_radius.std() < 0.1
    assert abs(pial_radius.mean() - 14.0) < 0.1 and pial_radius.std() < 0.1
    assert np.abs(result.thickness - 3.0).max() < 0.1
    assert (result.euler_before, result.voxels_cut) == (2, 0)
    assert (result.euler_white, result.euler_pial) == (2, 2)
    assert (result.intersections_white, result.intersections_pial) == (0, 0)
    assert abs(result.curvature.mean() + 1.0 / 11.0) < 0.01


def test_growth_cuts_the_handle_of_a_torus() -> None:
    """A solid torus (genus 1) grown from a ball ends genus 0, losing only a thin cut."""
    axes = [torch.arange(n, dtype=torch.float32) for n in (40, 41, 42)]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    ring = ((x - 20) ** 2 + (y - 20) ** 2).sqrt()
    torus = ((ring - 12) ** 2 + (z - 21) ** 2) <= 16
    assert euler_characteristic(extract(torus.numpy())) == 0
    grown = grow(seed_ball(torus, (1.0, 1.0, 1.0)), torus.float(), [0.5])
    mesh = extract(grown.numpy())
    assert euler_characteristic(mesh) == 2
    assert self_intersections(mesh) == 0
    assert 0 < int((torus & ~grown).sum()) < 0.03 * int(torus.sum())


def test_simple_point_cases() -> None:
    """A voxel touching the object by a face is simple; one touching only by a corner, or nothing, is not;
    one that would close a ring is not."""
    cases = torch.zeros(4, 27, dtype=torch.bool)
    cases[1, 4] = True  # the face neighbour at (-1, 0, 0)
    cases[2, 0] = True  # the corner (-1, -1, -1) only
    cases[3, [4, 22]] = True  # face neighbours on both sides along x: joining would merge/close
    assert simple_for_growth(cases).tolist() == [False, True, False, False]

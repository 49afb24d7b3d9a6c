"""The surface pipeline on synthetic phantoms of known geometry and topology."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("skimage")

from neurolearn_cli.surfaces.mesh import (  # noqa: E402
    closest_points_on_triangles,
    distance_to_surface,
    euler_characteristic,
    extract,
    intersecting_faces,
    intersecting_pairs,
    self_intersections,
    vertex_normals,
)
from neurolearn_cli.surfaces.placement import untangle  # noqa: E402
from neurolearn_cli.surfaces.reconstruct import reconstruct_hemisphere, white_matter_object  # noqa: E402
from neurolearn_cli.surfaces.topology import depth_mm, grow, seed_ball, simple_for_growth  # noqa: E402

SHAPE = (40, 43, 46)
CENTRE = torch.tensor([19.6, 21.3, 22.8])


def _radius(shape: tuple[int, int, int] = SHAPE, centre: torch.Tensor = CENTRE) -> torch.Tensor:
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    return ((points - centre) ** 2).sum(dim=-1).sqrt()


def test_sphere_in_shell_thickness_and_topology() -> None:
    """A WM ball of radius 11 in a 3-voxel GM shell: white at 11, pial at 14, thickness 3 within 0.1 voxel.

    The tissue probabilities ramp linearly over two voxels (partial volume), so
    that their trilinear 0.5 levels lie on the spheres.
    """
    radius = _radius()
    wm = ((11.0 - radius) / 2 + 0.5).clamp(0, 1)
    inside = ((14.0 - radius) / 2 + 0.5).clamp(0, 1)
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
    grown = grow(seed_ball(torus, depth_mm(torus, (1.0, 1.0, 1.0)), (1.0, 1.0, 1.0)), torus.float(), [0.5])
    mesh = extract(grown.numpy())
    assert euler_characteristic(mesh) == 2
    assert self_intersections(mesh) == 0
    assert 0 < int((torus & ~grown).sum()) < 0.03 * int(torus.sum())


def test_growth_cuts_a_handle_at_its_thinnest() -> None:
    """A solid torus, thickest at one side (where the growth starts) and pinched to a thin neck a quarter turn on:
    the white matter object keeps the whole thick ring and loses only voxels of the neck. Grown by intensity alone,
    the two fronts would meet and cut opposite the start, across the thick tube."""
    axes = [torch.arange(n, dtype=torch.float32) for n in (44, 45, 30)]
    x, y, z = torch.meshgrid(*axes, indexing="ij")
    angle = torch.atan2(y - 22.0, x - 22.0)
    ring = ((x - 22.0) ** 2 + (y - 22.0) ** 2).sqrt()
    tube = 4.5 + 1.0 * torch.cos(angle).clamp(min=0.0) ** 8  # thickest (the seed) at angle 0
    neck = (angle - torch.pi / 2).abs() < 0.25
    tube = torch.where(neck, torch.full_like(tube, 1.6), tube)
    torus = ((ring - 14.0) ** 2 + (z - 15.0) ** 2) <= tube**2
    grown, euler_before, voxels_cut = white_matter_object(torus.float(), (1.0, 1.0, 1.0))
    assert euler_before == 0
    assert euler_characteristic(extract(grown.numpy())) == 2
    cut = torus & ~grown
    assert voxels_cut == int(cut.sum()) > 0
    assert bool(neck[cut].all())
    by_intensity = grow(seed_ball(torus, depth_mm(torus, (1.0, 1.0, 1.0)), (1.0, 1.0, 1.0)), torus.float(), [0.5])
    assert not bool(neck[torus & ~by_intensity].any())


def test_simple_point_cases() -> None:
    """A voxel touching the object by a face is simple; one touching only by a corner, or nothing, is not;
    one that would close a ring is not."""
    cases = torch.zeros(4, 27, dtype=torch.bool)
    cases[1, 4] = True  # the face neighbour at (-1, 0, 0)
    cases[2, 0] = True  # the corner (-1, -1, -1) only
    cases[3, [4, 22]] = True  # face neighbours on both sides along x: joining would merge/close
    assert simple_for_growth(cases).tolist() == [False, True, False, False]


def _ball_mesh() -> tuple[np.ndarray, np.ndarray]:
    radius = _radius((20, 21, 22), torch.tensor([9.6, 10.3, 10.8])).numpy()
    mesh = extract(radius < 7)
    return mesh.vertices, mesh.faces


def test_distance_to_surface_is_the_brute_force_minimum() -> None:
    """Points near and far from a ball's mesh: the exact nearest-triangle distance, as a search over every face."""
    vertices, faces = _ball_mesh()
    from neurolearn_cli.surfaces.mesh import Mesh

    mesh = Mesh(vertices, faces)
    points = np.random.default_rng(3).uniform(-3, 24, size=(200, 3))
    corners = vertices[faces]
    brute = [np.linalg.norm(closest_points_on_triangles(p, corners[:, 0], corners[:, 1], corners[:, 2]) - p,
                            axis=1).min() for p in points]
    np.testing.assert_allclose(distance_to_surface(points, mesh), brute, rtol=0, atol=1e-12)
    # a point over a triangle's middle projects into it; one beyond a corner lands on the corner
    triangle = np.array([[0.0, 0, 0], [2, 0, 0], [0, 3, 0]])
    np.testing.assert_allclose(closest_points_on_triangles(np.array([0.5, 0.5, 4.0]), *triangle), [0.5, 0.5, 0])
    np.testing.assert_allclose(closest_points_on_triangles(np.array([-1.0, -2.0, 1.0]), *triangle), [0, 0, 0])


def test_crossings_are_found_and_untangled() -> None:
    """A vertex pushed through the far side of a ball makes faces cross; undoing moves restores an embedded mesh."""
    from neurolearn_cli.surfaces.mesh import Mesh

    vertices, faces = _ball_mesh()
    mesh = Mesh(vertices, faces)
    assert self_intersections(mesh) == 0
    poked = int(vertices[:, 0].argmax())
    top = vertices[:, 2] > vertices[:, 2].max() - 2.0
    pushed = vertices.copy()
    pushed[poked] -= 16.0 * vertex_normals(mesh)[poked]  # through the ball and out on the other side
    pushed[top] += 0.1  # a harmless move elsewhere, kept
    crossing = intersecting_faces(mesh.with_vertices(pushed))
    assert crossing.size > 0 and np.isin(crossing, np.flatnonzero((faces == poked).any(axis=1))).any()
    fixed = untangle(vertices, pushed, mesh)
    assert self_intersections(mesh.with_vertices(fixed)) == 0
    np.testing.assert_array_equal(fixed[poked], vertices[poked])
    np.testing.assert_array_equal(fixed[top], pushed[top])


def test_crossing_pairs_are_every_overlapping_candidate_once() -> None:
    """On a crumpled ball, the grid's candidates are exactly the face pairs whose boxes overlap (each once), and
    the pairs with one of ``among`` are those of all pairs that hold one, sorted, smaller face first."""
    from neurolearn_cli.surfaces.mesh import Mesh, _cell_pairs, _sharing_a_cell

    vertices, faces = _ball_mesh()
    rng = np.random.default_rng(5)
    crumpled = vertices + rng.normal(scale=0.6, size=vertices.shape)
    corners = crumpled[faces]
    low, high = corners.min(axis=1), corners.max(axis=1)
    overlap = np.all((low[:, None] <= high[None]) & (low[None] <= high[:, None]), axis=2)
    brute = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(overlap, 1)), strict=True)}
    among = rng.random(len(faces)) < 0.1
    for wanted, expected in ((None, brute), (among, {p for p in brute if among[p[0]] or among[p[1]]})):
        candidates = np.sort(_cell_pairs(low, high, 1.3, wanted), axis=1)
        assert len(candidates) == len(expected) and set(map(tuple, candidates.tolist())) == expected
    everywhere = intersecting_pairs(Mesh(crumpled, faces))
    assert len(everywhere) > 0 and (everywhere[:, 0] < everywhere[:, 1]).all()
    np.testing.assert_array_equal(everywhere, np.unique(everywhere, axis=0))
    np.testing.assert_array_equal(intersecting_pairs(Mesh(crumpled, faces), among),
                                  everywhere[among[everywhere].any(axis=1)])
    assert len(intersecting_pairs(Mesh(crumpled, faces), np.zeros(len(faces), dtype=bool))) == 0
    few = np.zeros(len(faces), dtype=bool)
    few[:3] = True
    near = _sharing_a_cell(low, high, 1.3, few)  # the faces kept for pairs with one of ``few``: a few, not all
    partners = [face for pair in brute if few[pair[0]] or few[pair[1]] for face in pair]
    assert near[partners].all() and near.sum() < len(faces) // 4


def test_untangle_shrinks_a_crossing_move_before_undoing_it() -> None:
    """With halvings, a vertex pushed a little too far through the ball's far side keeps part of its move
    (halved once, it ends inside the ball), and the mesh ends embedded."""
    from neurolearn_cli.surfaces.mesh import Mesh

    vertices, faces = _ball_mesh()
    mesh = Mesh(vertices, faces)
    poked = int(vertices[:, 0].argmax())
    inward = -vertex_normals(mesh)[poked]
    pushed = vertices.copy()
    pushed[poked] += 16.0 * inward
    fixed = untangle(vertices, pushed, mesh, halvings=3)
    assert self_intersections(mesh.with_vertices(fixed)) == 0
    travelled = float((fixed[poked] - vertices[poked]) @ inward)
    assert travelled == pytest.approx(8.0)  # halved once: inside the ball, through nothing

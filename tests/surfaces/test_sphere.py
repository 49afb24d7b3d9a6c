"""Inflation, the sphere, resampling between spheres and registration to fsaverage5, on known geometry."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import sparse

pytest.importorskip("skimage")

from neurolearn_cli.surfaces.inflate import inflate, spiky_faces, total_area  # noqa: E402
from neurolearn_cli.surfaces.mesh import (  # noqa: E402
    Mesh,
    cotangent_laplacian,
    euler_characteristic,
    extract,
    face_normals,
    symmetric_solve,
    vertex_areas,
)
from neurolearn_cli.surfaces.register import RASTER_SHAPE, register, rigid, rotation_matrix, sample  # noqa: E402
from neurolearn_cli.surfaces.resample import sphere_to_sphere  # noqa: E402
from neurolearn_cli.surfaces.sphere import (  # noqa: E402
    SPHERE_RADIUS,
    control_sphere,
    flipped_faces,
    log_area_ratio,
    to_sphere,
    unfold,
)
from neurolearn_cli.surfaces.template import fsaverage5  # noqa: E402


def _folded_ball() -> tuple[Mesh, np.ndarray]:
    """A genus-0 ball with deep grooves (radius 14 mm, grooves 5 mm deep) as a mesh, and each vertex's radius."""
    axes = [np.arange(n, dtype=np.float64) for n in (40, 42, 44)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    dx, dy, dz = x - 19.7, y - 20.6, z - 21.4
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    colatitude = np.arccos(np.clip(dz / np.maximum(r, 1e-9), -1, 1))
    longitude = np.arctan2(dy, dx)
    surface = 14.0 - 5.0 * np.clip(np.cos(4 * longitude) * np.sin(colatitude) ** 2 - 0.2, 0, None)
    mesh = extract(r <= surface)
    centre = np.array([19.7, 20.6, 21.4])
    return mesh, np.linalg.norm(mesh.vertices - centre, axis=1)


def test_folded_ball_inflates_and_maps_to_the_sphere_without_flips() -> None:
    """Grooves are positive sulcal depth, the sphere of the genus-0 ball has radius 100 and no flipped face, and
    faces flipped on it (two neighbours swapped) are unfolded."""
    mesh, radius = _folded_ball()
    assert euler_characteristic(mesh) == 2
    inflation = inflate(mesh)
    assert abs(inflation.sulc.mean()) < 1e-9
    assert np.corrcoef(inflation.sulc, radius)[0, 1] < -0.9  # deep in a groove: small radius, positive sulc
    mapping = to_sphere(mesh, inflation.inflated, "L")
    assert mapping.flipped == 0
    np.testing.assert_allclose(np.linalg.norm(mapping.sphere.vertices, axis=1), SPHERE_RADIUS)
    assert len(flipped_faces(mapping.sphere)) == 0
    folded = mapping.sphere.vertices.copy()
    first, second = mesh.faces[100, :2]
    folded[[first, second]] = folded[[second, first]]  # two neighbours swapped: their faces flip
    assert len(flipped_faces(mesh.with_vertices(folded))) > 0
    unfolded = unfold(mesh.with_vertices(folded))
    assert len(flipped_faces(unfolded)) == 0
    np.testing.assert_allclose(np.linalg.norm(unfolded.vertices, axis=1), SPHERE_RADIUS)
    # only the fold's neighbourhood moves: the far side of the sphere keeps its exact positions
    far = np.linalg.norm(folded - folded[first], axis=1) > 0.5 * SPHERE_RADIUS
    assert far.sum() > len(far) // 2
    np.testing.assert_array_equal(unfolded.vertices[far], folded[far])


def test_symmetric_solve_matches_a_dense_solve() -> None:
    """SuperLU's symmetric mode solves a mass-plus-Laplacian system of a grooved ball's mesh as a dense solver does."""
    mesh, _ = _folded_ball()
    matrix = sparse.diags(vertex_areas(mesh)) + 30.0 * cotangent_laplacian(mesh)
    right = np.random.default_rng(0).normal(size=(len(mesh.vertices), 3))
    np.testing.assert_allclose(symmetric_solve(matrix, right), np.linalg.solve(matrix.toarray(), right),
                               rtol=1e-9, atol=1e-9)


def test_log_area_ratio_shows_where_a_sphere_shrinks_an_ellipsoid() -> None:
    """A sphere against itself keeps every face's area share; against the ellipsoid stretched twofold along x it
    shrinks the faces around the x axis' equator (stretched on the ellipsoid) and swells those at its ends, and
    the white area shares weighted by the area ratios sum to one."""
    sphere = control_sphere(642)
    np.testing.assert_allclose(log_area_ratio(sphere, sphere), 0.0, atol=1e-12)
    ellipsoid = sphere.with_vertices(sphere.vertices * [2.0, 1.0, 1.0])
    ratio = log_area_ratio(sphere, ellipsoid)
    along_x = np.abs(sphere.vertices[sphere.faces].mean(axis=1)[:, 0])
    assert (ratio[along_x < 0.1] < -0.1).all() and (ratio[along_x > 0.95] > 0.3).all()
    white_area = np.linalg.norm(face_normals(ellipsoid), axis=1)
    assert abs((white_area / white_area.sum()) @ np.exp(ratio) - 1.0) < 1e-12


def test_the_sphere_of_an_elongated_ellipsoid_keeps_its_area_shares() -> None:
    """A 3:1:1 ellipsoid's conformal map shrinks its ends (the white-area-weighted SD of the log area ratio is 1.3
    and 59 % of its area is off by more than twofold); the area-equalised sphere keeps every part within a few
    percent of its share, with no face flipped."""
    axes = (24.0, 8.0, 8.0)
    shape = [int(2 * a) + 5 for a in axes]
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    mesh = extract(sum(((g - (n - 1) / 2 - 0.3) / a) ** 2 for g, n, a in zip(grid, shape, axes, strict=True)) <= 1)
    mapping = to_sphere(mesh, mesh, "L")
    assert mapping.flipped == 0
    ratio = log_area_ratio(mapping.sphere, mesh)
    white_area = np.linalg.norm(face_normals(mesh), axis=1)
    weights = white_area / white_area.sum()
    assert np.sqrt(weights @ (ratio - weights @ ratio) ** 2) < 0.2
    assert weights[np.abs(ratio) > np.log(2)].sum() < 0.02


def _ball_with_finger() -> Mesh:
    """A strand of white matter: a 2 mm wide finger 35 mm long on a ball of radius 10 mm, as a genus-0 mesh."""
    x, y, z = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in (30, 30, 56)], indexing="ij")
    ball = (x - 14.6) ** 2 + (y - 15.3) ** 2 + (z - 14.8) ** 2 <= 10**2
    finger = ((x - 14.6) ** 2 + (y - 15.3) ** 2 <= 1.0) & (z > 14) & (z < 50)
    mesh = extract(ball | finger)
    assert euler_characteristic(mesh) == 2
    return mesh


def test_a_thin_finger_is_drawn_into_the_inflated_surface() -> None:
    """The inflated ball keeps no spike where the finger was (umbrella smoothing stretched the finger into one
    several times the ball's radius long) and keeps the white surface's area."""
    mesh = _ball_with_finger()
    inflated = inflate(mesh).inflated
    assert not spiky_faces(inflated).any()
    radius = np.linalg.norm(inflated.vertices - inflated.vertices.mean(axis=0), axis=1)
    assert radius.max() < 1.5 * np.median(radius)
    np.testing.assert_allclose(total_area(inflated), total_area(mesh))


def test_a_ball_with_a_thin_finger_maps_to_the_sphere_without_flips() -> None:
    """The conformal map squeezes the finger into a tiny area of the sphere and folds at most a few of its faces
    (those with obtuse angles), which are unfolded."""
    mesh = _ball_with_finger()
    mapping = to_sphere(mesh, inflate(mesh).inflated, "L")
    assert mapping.flipped_at_projection <= 0.001 * len(mesh.faces) and mapping.flipped == 0
    np.testing.assert_allclose(np.linalg.norm(mapping.sphere.vertices, axis=1), SPHERE_RADIUS)


def test_resampling_fsaverage5_onto_itself_is_exact() -> None:
    template = fsaverage5("L")
    np.testing.assert_array_equal(sphere_to_sphere(template.sulc, template.sphere, template.sphere), template.sulc)


def test_resampling_reproduces_a_linear_field_on_a_rotated_sphere() -> None:
    """Barycentric interpolation of x + 2y - z between fsaverage5 and itself rotated by 7 degrees: error is what
    the chord's sag allows (a fraction of a percent of the radius)."""
    template = fsaverage5("R")
    rotation = rotation_matrix(torch.tensor([0.05, -0.08, 0.09], dtype=torch.float64)).numpy()
    rotated = template.sphere.with_vertices(template.sphere.vertices @ rotation.T)
    gradient = np.array([1.0, 2.0, -1.0])
    values = sphere_to_sphere(rotated.vertices @ gradient, rotated, template.sphere)
    error = np.abs(values - template.sphere.vertices @ gradient)
    assert error.max() < 0.005 * SPHERE_RADIUS * np.linalg.norm(gradient)


def test_registration_recovers_a_known_rotation_of_fsaverage5() -> None:
    """fsaverage5's own sphere turned by 15 degrees is turned back, and its vertices land on their places."""
    template = fsaverage5("L")
    axis = torch.tensor([0.15, -0.1, 0.2], dtype=torch.float64)
    turn = rotation_matrix(axis / axis.norm() * math.radians(15.0)).numpy()
    moved = template.sphere.with_vertices(template.sphere.vertices @ turn.T)
    result = register(moved, template.sulc, template.curv, template, torch.device("cpu"))
    residual = result.rotation @ turn
    angle = math.degrees(math.acos(np.clip((np.trace(residual) - 1) / 2, -1, 1)))
    assert angle < 2.0
    error = np.linalg.norm(result.sphere.vertices - template.sphere.vertices, axis=1)
    assert error.mean() < 1.0
    assert result.rigid_correlation > 0.95 and result.correlation > 0.95
    assert result.warped and result.unfolded == 0 and result.flipped == len(flipped_faces(result.sphere)) == 0


def test_the_rotation_search_gives_the_same_bits_on_1_and_2_threads(threads: Callable[[int], None]) -> None:
    """On more points than torch sums in one thread (a 2 mm scan's hemisphere), the rotation is thread-independent.

    The correlation's means, and the gradient of the mean it subtracts, were summed the torch way, so the
    rotation moved in its last bits with the thread count and the registered sphere with it.
    """
    generator = torch.Generator().manual_seed(4)
    points = torch.randn(39000, 3, dtype=torch.float64, generator=generator)
    points = points / points.norm(dim=1, keepdim=True)
    image = torch.rand(RASTER_SHAPE, dtype=torch.float64, generator=generator)
    feature = sample(image, points @ rotation_matrix(torch.tensor([0.1, -0.2, 0.15], dtype=torch.float64)).T)
    weights = torch.rand(len(points), dtype=torch.float64, generator=generator)
    weights = weights / weights.sum()
    rotations = []
    for count in (1, 2):
        threads(count)
        rotations.append(rigid(points, feature, weights, image))
    assert torch.equal(rotations[0], rotations[1])

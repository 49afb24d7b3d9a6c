"""The white surface mapped onto a sphere of radius 100 (FreeSurfer's ``?h.sphere``) without flipped faces.

The genus-0 white surface is mapped conformally onto the plane (Angenent,
Haker et al. 1999-2000: the cotangent Laplacian solved against a point
source on a triangle of the medial wall) and back onto the sphere by inverse stereographic
projection. A conformal map keeps angles, so it folds no triangle but the
few whose obtuse angles give negative cotangent weights, which :func:`unfold`
relaxes: each vertex of the folded region and a margin, grown by a ring each
round, moves to its neighbours' mean on the sphere, as in a Tutte embedding.
The map is fixed up to a Moebius transformation (the triangle chosen as the
pole only scales it): the one that centres the white surface's area on the
sphere is taken. A conformal map keeps angles but not area: the white
surface's gyri are blades of white matter, fingers that it shrinks
exponentially, while the flat medial wall swells, and the registration to
fsaverage's sulcal pattern is poorest where most cortex is shrunk.
:func:`equalize_area` therefore moves the vertices by a
density-equalising flow, coarse to fine, until each part of the white
surface holds about its share of the sphere, without folding more faces.
Last comes the rotation that best turns the sphere onto the inflated
surface's directions from its centroid, so that the sphere keeps the
participant's axes and the registration's rotation search starts near the
template.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import ConvexHull, cKDTree

from neurolearn_cli.surfaces.mesh import (
    Mesh,
    adjacency,
    cotangent_laplacian,
    face_normals,
    symmetric_solve,
    vertex_areas,
)

#: FreeSurfer's sphere radius (mm).
SPHERE_RADIUS = 100.0
#: Moebius centring: at most this many steps, until the area-weighted centroid lies this near the centre (unit
#: sphere).
CENTRING_STEPS = 100
CENTRING_TOLERANCE = 1e-6
#: Each hemisphere's direction towards the other, in RAS world coordinates.
MEDIAL = {"L": np.array([1.0, 0.0, 0.0]), "R": np.array([-1.0, 0.0, 0.0])}
#: The pole's search (mm): how near the ray from the centroid towards the other hemisphere, and how deep from
#: where the ray leaves the surface.
POLE_AXIS_MM = 10.0
POLE_DEPTH_MM = 2.0
#: Area equalisation: control spheres from coarse to fine and the steps on each; the reach of the kernel that
#: carries the control points' velocity to the vertices and of the smoothing of the log area ratio over the control
#: sphere (both in control spacings); each step's length as a fraction of the smoothing's time, capped at this
#: fraction of the kernel's reach; how many times a step that would flip more faces is halved before the level ends.
EQUALIZE_LEVELS = (162, 642, 2562)
EQUALIZE_STEPS = 10
KERNEL_REACH = 2.0
SMOOTHING_REACH = 2.0
EQUALIZE_GAIN = 0.5
MAX_MOVE = 0.1
HALVINGS = 8
#: Relaxation rounds, each on the folded faces' vertices grown by one more ring, with this many smoothing steps.
UNFOLD_ROUNDS = 60
UNFOLD_STEPS = 20


@dataclass(frozen=True)
class SphereMapping:
    """The spherical mesh (centred on the origin), how many of its faces the conformal map flipped and how many
    stay flipped (0 unless unfolding failed)."""

    sphere: Mesh
    flipped_at_projection: int
    flipped: int


def on_sphere(points: np.ndarray, radius: float = SPHERE_RADIUS) -> np.ndarray:
    """``points`` moved along their direction from the origin onto the sphere of ``radius``."""
    return radius * points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)


def flipped_faces(sphere: Mesh) -> np.ndarray:
    """The faces of a centred spherical mesh whose normal points inward (clockwise seen from outside)."""
    centroids = sphere.vertices[sphere.faces].mean(axis=1)
    return np.flatnonzero(np.einsum("ij,ij->i", face_normals(sphere), centroids) <= 0)


def log_area_ratio(sphere: Mesh, white: Mesh) -> np.ndarray:
    """Each face's log of its share of the sphere's area over its share of the white surface's area: 0 where the
    map keeps area, positive where it swells a face, negative where it shrinks one."""
    sphere_area = np.linalg.norm(face_normals(sphere), axis=1)
    white_area = np.maximum(np.linalg.norm(face_normals(white), axis=1), 1e-300)
    return np.log(np.maximum(sphere_area / sphere_area.sum(), 1e-300) / (white_area / white_area.sum()))


def control_sphere(count: int) -> Mesh:
    """``count`` near-uniform points on the unit sphere (a Fibonacci spiral), triangulated by their convex hull."""
    index = np.arange(count) + 0.5
    z = 1 - 2 * index / count
    phi = math.pi * (1 + math.sqrt(5)) * index
    r = np.sqrt(1 - z**2)
    points = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    faces = ConvexHull(points).simplices.astype(np.int64)
    centroids = points[faces].mean(axis=1)
    normals = np.cross(points[faces[:, 1]] - points[faces[:, 0]], points[faces[:, 2]] - points[faces[:, 0]])
    inward = np.einsum("ij,ij->i", normals, centroids) < 0
    faces[inward] = faces[inward][:, ::-1]
    return Mesh(points, faces)


def kernel_weights(points: np.ndarray, nodes: np.ndarray, reach: float) -> sparse.csr_matrix:
    """The (P, C) matrix, rows summing to one, of Wendland's C2 kernel of the distances from ``points`` to the
    ``nodes`` within ``reach``: a velocity given at the nodes, carried to the points, is smooth in their position."""
    pairs = cKDTree(points).sparse_distance_matrix(cKDTree(nodes), reach, output_type="coo_matrix")
    q = pairs.data / reach
    weights = sparse.csr_matrix(((1 - q) ** 4 * (4 * q + 1), (pairs.row, pairs.col)), shape=(len(points), len(nodes)))
    return (sparse.diags(1.0 / np.asarray(weights.sum(axis=1)).ravel()) @ weights).tocsr()


def tangent_gradient(sphere: Mesh, values: np.ndarray) -> np.ndarray:
    """The gradient (V, 3) of piecewise-linear ``values`` over a centred spherical mesh at each vertex: its faces'
    gradients weighted by their areas, made tangent to the sphere."""
    corners = sphere.vertices[sphere.faces]
    normals = face_normals(sphere)
    unit = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    weighted = sum(values[sphere.faces[:, k], None] * np.cross(unit, corners[:, (k + 2) % 3] - corners[:, (k + 1) % 3])
                   for k in range(3)) / 2
    gradient = np.zeros_like(sphere.vertices)
    for k in range(3):
        np.add.at(gradient, sphere.faces[:, k], weighted)
    gradient /= np.maximum(3 * vertex_areas(sphere), 1e-300)[:, None]
    directions = on_sphere(sphere.vertices, 1.0)
    return gradient - np.einsum("ij,ij->i", gradient, directions)[:, None] * directions


def equalize_area(sphere: Mesh, white: Mesh) -> Mesh:
    """``sphere`` (centred on the origin, ``white`` mapped onto it) moved towards giving each part of the white
    surface its share of the sphere's area, with no more flipped faces than it had.

    A density-equalising flow (Gastner and Newman 2004), coarse to fine
    on :data:`EQUALIZE_LEVELS`: on a control sphere of near-uniform points,
    the log of the sphere's area over the white's area that the kernel
    (:func:`kernel_weights`) gathers around each control point is smoothed
    (implicit diffusion), and the vertices move along its gradient, carried
    by the same kernel, so that swollen regions shrink and shrunk ones grow.
    The velocity is smooth at the kernel's scale, so a small step folds no
    face; a step that would flip more faces is halved. What stays distorted
    is finer than the finest control sphere: the crowns of single gyri.
    """
    radius = float(np.linalg.norm(sphere.vertices, axis=1).mean())
    white_area = vertex_areas(white)
    white_share = white_area / white_area.sum()
    allowed = len(flipped_faces(sphere))
    points = sphere.vertices / radius
    for count in EQUALIZE_LEVELS:
        control = control_sphere(count)
        spacing = math.sqrt(4 * math.pi / count)
        reach, time = KERNEL_REACH * spacing, (SMOOTHING_REACH * spacing) ** 2
        laplacian = cotangent_laplacian(control)
        scale = 1.0
        for _ in range(EQUALIZE_STEPS):
            to_points = kernel_weights(points, control.vertices, reach)
            white_near = to_points.T @ white_share
            sphere_area = vertex_areas(sphere.with_vertices(points))
            sphere_near = to_points.T @ (sphere_area / sphere_area.sum())
            seen = (white_near > 0) & (sphere_near > 0)
            log_ratio = np.log(np.where(seen, sphere_near, 1.0) / np.where(seen, white_near, 1.0))
            weights = np.where(seen, sphere_near + white_near, 0.0) * count
            smoothed = symmetric_solve(sparse.diags(weights) + time * laplacian, weights * log_ratio)
            move = EQUALIZE_GAIN * time * (to_points @ tangent_gradient(control, smoothed))
            move -= np.einsum("ij,ij->i", move, points)[:, None] * points
            move *= min(1.0, MAX_MOVE * reach / max(float(np.linalg.norm(move, axis=1).max()), 1e-300))
            for _ in range(HALVINGS):
                trial = on_sphere(points + scale * move, 1.0)
                if len(flipped_faces(sphere.with_vertices(trial))) <= allowed:
                    break
                scale /= 2
            else:
                break
            points = trial
            scale = min(1.0, 2 * scale)
    return sphere.with_vertices(radius * points)


def unfold(sphere: Mesh, radius: float = SPHERE_RADIUS) -> Mesh:
    """``sphere`` (centred on the origin) with its flipped faces unfolded: the vertices of the flipped faces and a
    margin, grown by a ring each round, relaxed to their neighbours' mean on the sphere of ``radius``.

    After :data:`UNFOLD_ROUNDS` rounds without success, whichever of the input
    and the relaxed mesh has fewer flipped faces is returned.
    """
    flipped = flipped_faces(sphere)
    first = len(flipped)
    if not first:
        return sphere
    points = sphere.vertices.copy()
    neighbours = adjacency(sphere)
    degree = np.asarray(neighbours.sum(axis=1)).ravel()[:, None]
    region = np.zeros(len(points), dtype=bool)
    flipped_at_start = flipped
    for _ in range(UNFOLD_ROUNDS):
        region[sphere.faces[flipped].ravel()] = True
        region |= (neighbours @ region.astype(np.float64)) > 0
        rows = np.flatnonzero(region)
        around, around_degree = neighbours[rows], degree[rows]
        for _ in range(UNFOLD_STEPS):
            points[rows] = on_sphere(around @ points / around_degree, radius)
        # the faces with no corner in the region have not moved: they are flipped as they were at the start
        touched = region[sphere.faces].any(axis=1)
        near = np.flatnonzero(touched)
        flipped = np.union1d(flipped_at_start[~touched[flipped_at_start]],
                             near[flipped_faces(Mesh(points, sphere.faces[near]))])
        if not len(flipped):
            break
    return sphere.with_vertices(points) if len(flipped) < first else sphere


def pole_face(mesh: Mesh, medial: np.ndarray) -> int:
    """The face the point source sits on: in the medial wall, and of those there the nearest to equilateral.

    The map is least faithful around the pole. The medial wall, where the
    surface closes over the deep grey matter and holds no cortex, is where the
    ray from the surface's centroid along ``medial`` (the unit direction
    towards the other hemisphere) leaves it: of the faces within
    :data:`POLE_AXIS_MM` of that ray, those within :data:`POLE_DEPTH_MM` of
    the farthest along it. Of those the pole is the face with the largest ratio
    of its area to the sum of its squared edges (the first of ties): on a badly
    shaped face (an obtuse triangle at a crease) the map has come out
    mirrored, nearly every face flipped.
    """
    corners = mesh.vertices[mesh.faces]
    double_area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    squared_edges = ((corners - np.roll(corners, 1, axis=1)) ** 2).sum(axis=(1, 2))
    offsets = corners.mean(axis=1) - mesh.vertices.mean(axis=0)
    along = offsets @ medial
    near_ray = np.linalg.norm(offsets - along[:, None] * medial, axis=1) < POLE_AXIS_MM
    if not near_ray.any():
        near_ray[:] = True
    wall = near_ray & (along >= along[near_ray].max() - POLE_DEPTH_MM)
    quality = np.where(wall, double_area / np.maximum(squared_edges, 1e-300), -1.0)
    return int(np.argmax(quality))


def conformal_plane(mesh: Mesh, medial: np.ndarray) -> np.ndarray:
    """The genus-0 ``mesh`` mapped conformally onto the plane, its :func:`pole_face` (``medial``: towards the other
    hemisphere) sent to infinity: (N,) complex.

    Haker et al.'s discrete solution of Laplace's equation against the
    derivative of a point source on that face; the Laplacian is singular,
    so one vertex off the face is held at 0.
    """
    a, b, c = mesh.faces[pole_face(mesh, medial)]
    corner_a, corner_b, corner_c = mesh.vertices[[a, b, c]]
    along = corner_b - corner_a
    theta = np.dot(corner_c - corner_a, along) / np.dot(along, along)
    height = np.linalg.norm(corner_c - (corner_a + theta * along))
    source = np.zeros((len(mesh.vertices), 2))
    source[[a, b], 0] = -1 / np.linalg.norm(along), 1 / np.linalg.norm(along)
    source[[a, b, c], 1] = (1 - theta) / height, theta / height, -1 / height
    middle = mesh.faces[len(mesh.faces) // 2]
    held = middle[~np.isin(middle, [a, b, c])][0]
    free = np.arange(len(mesh.vertices)) != held
    laplacian = cotangent_laplacian(mesh)[free][:, free]
    plane = np.zeros_like(source)
    plane[free] = symmetric_solve(laplacian, source[free])
    return plane[:, 0] + 1j * plane[:, 1]


def inverse_stereographic(plane: np.ndarray) -> np.ndarray:
    """(N, 3) points of the unit sphere from (N,) complex points of the plane, orientation kept (the plane is
    seen from outside the sphere); the plane is first shifted to its coordinates' medians and scaled by the median
    distance from there, so that the points start spread over the sphere (:func:`moebius_centred` then balances them)."""
    centre = complex(np.median(plane.real), np.median(plane.imag))
    plane = (plane - centre) / np.median(np.abs(plane - centre))
    squared = np.abs(plane) ** 2
    return np.stack([2 * plane.real, -2 * plane.imag, squared - 1], axis=1) / (1 + squared)[:, None]


def moebius_centred(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unit-sphere ``points`` moved by the Moebius transformations that bring their ``weights``-weighted centroid
    to the centre (half the way each step, for :data:`CENTRING_STEPS` steps at most); angles are kept."""
    for _ in range(CENTRING_STEPS):
        centroid = weights @ points / weights.sum()
        if np.linalg.norm(centroid) < CENTRING_TOLERANCE:
            break
        shift = centroid / 2
        offset = points - shift
        points = ((1 - shift @ shift) * offset - (offset**2).sum(axis=1, keepdims=True) * shift) / (
            1 - 2 * points @ shift + shift @ shift)[:, None]
        points = points / np.linalg.norm(points, axis=1, keepdims=True)
    return points


def best_rotation(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The rotation matrix R minimising the ``weights``-weighted squared distances of ``source @ R.T`` to
    ``target`` (Kabsch)."""
    u, _, vt = np.linalg.svd((source * weights[:, None]).T @ target)
    handedness = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, handedness]) @ u.T


def to_sphere(white: Mesh, inflated: Mesh, hemisphere: str, radius: float = SPHERE_RADIUS) -> SphereMapping:
    """Map the genus-0 ``white`` surface of ``hemisphere`` (``"L"`` or ``"R"``, in RAS world coordinates)
    conformally onto the sphere of ``radius`` centred on the origin, its pole in the medial wall, its area
    equalised (:func:`equalize_area`), turned to the
    directions of ``inflated`` (the same mesh inflated) from its centroid, its flipped faces unfolded
    (:func:`unfold`)."""
    areas = vertex_areas(white)
    centred = moebius_centred(inverse_stereographic(conformal_plane(white, MEDIAL[hemisphere])), areas)
    equalized = equalize_area(white.with_vertices(centred), white).vertices
    directions = on_sphere(inflated.vertices - areas @ inflated.vertices / areas.sum(), 1.0)
    mapped = white.with_vertices(radius * equalized @ best_rotation(equalized, directions, areas).T)
    sphere = unfold(mapped, radius)
    return SphereMapping(sphere, len(flipped_faces(mapped)), len(flipped_faces(sphere)))

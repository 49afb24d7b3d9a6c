"""Registration of a participant's sphere to a template sphere (fsaverage5) by its folding pattern.

As FreeSurfer's ``mris_register``, coarse to fine on smoothed features:
first a rotation found from heavily smoothed sulcal depth (a grid of
rotations, then gradient steps), then a smooth non-rigid warp at finer and
finer scales. The warp moves the vertices of a control sphere (near-uniform
points whose convex hull is their triangulation); every participant vertex
keeps its barycentric coordinates in its control triangle, so the warp is one
to one while no control triangle folds (thin participant faces across a control
edge may still flip). The template's features are sampled on
a latitude-longitude raster by bilinear interpolation, differentiable in the
vertex positions. The cost is one minus the area-weighted correlation of the
participant's and the template's smoothed features, plus the warp's membrane
energy and an anti-folding term; the optimization sees a subsample of the
participant's vertices, and faces the warp still flips are unfolded at the end
(where that leaves clearly more than the rotation alone, the rotation is kept
and the result says so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from neurolearn_cli.engine.optimizers import Adam
from neurolearn_cli.engine.reduce import fixed_expand, fixed_sum
from neurolearn_cli.surfaces.mesh import Mesh, adjacency, edges, vertex_areas
from neurolearn_cli.surfaces.resample import barycentric, barycentric_weights, sphere_to_sphere
from neurolearn_cli.surfaces.sphere import SPHERE_RADIUS, control_sphere, flipped_faces, unfold
from neurolearn_cli.surfaces.template import SphereTemplate


@dataclass(frozen=True)
class Level:
    """One scale of the warp: the feature, its smoothing (mm on a sphere of radius 100), the control points."""

    feature: str
    sigma_mm: float
    control_points: int
    iterations: int


#: Smoothing (mm) of the sulcal depth the rotation is found on, and the rotation grid (degrees about each axis).
RIGID_SIGMA_MM = 12.0
RIGID_GRID_DEGREES = (-24.0, -12.0, 0.0, 12.0, 24.0)
RIGID_ITERATIONS = 60
#: The non-rigid scales, coarse to fine.
LEVELS = (
    Level("sulc", 20.0, 162, 120),
    Level("sulc", 10.0, 642, 120),
    Level("sulc", 5.0, 2562, 120),
    Level("curv", 3.0, 2562, 80),
)
#: Weight of the warp's membrane energy (squared displacement differences along control edges, in control
#: spacings) in the cost.
SMOOTHNESS = 5.0
#: About how many participant vertices the optimization sees (every k-th vertex).
SAMPLE_POINTS = 20000
#: A control triangle whose area falls below this fraction of its original area is penalised (anti-folding).
MIN_AREA_FRACTION = 0.3
FOLDING = 100.0
#: The warp is kept while the faces it leaves flipped, after unfolding, exceed those of the rotation alone by at
#: most this fraction of all faces (thin triangles of the white surface's strands, folded across a control edge).
EXTRA_FLIPPED_FRACTION = 1e-3
#: Rows (colatitude 0 to 180 degrees) and columns (longitude -180 to 180) of the template raster.
RASTER_SHAPE = (361, 721)


@dataclass(frozen=True)
class SphereRegistration:
    """The participant's vertices on the template's sphere, the rotation found first, and the fit before and after.

    ``rigid_correlation`` and ``correlation``: the correlation of the
    participant's sulcal depth, resampled onto the template's vertices, with the
    template's, after the rotation only and after the warp; ``unfolded`` counts
    the faces the warp flipped, unfolded before the result. ``warped`` is False
    where the warp left more flipped faces than the rotation alone, by more than
    :data:`EXTRA_FLIPPED_FRACTION` of the faces: the result is then the rotation
    alone. ``flipped`` counts the result's flipped faces (those
    of the input sphere, if it had any, or 0).
    """

    template: str
    sphere: Mesh
    rotation: np.ndarray
    rigid_correlation: float
    correlation: float
    unfolded: int
    warped: bool
    flipped: int


def mean_edge_length(mesh: Mesh) -> float:
    """The mean length of the mesh's edges."""
    pairs = edges(mesh.faces)
    return float(np.linalg.norm(mesh.vertices[pairs[:, 0]] - mesh.vertices[pairs[:, 1]], axis=1).mean())


def smoothed_on_sphere(sphere: Mesh, values: np.ndarray, sigmas_mm: set[float]) -> dict[float, np.ndarray]:
    """``values`` smoothed over ``sphere`` by about a Gaussian of each of ``sigmas_mm`` (mm on a sphere of radius
    100), standardized.

    Each half-own, half-neighbours averaging step spreads by about a quarter of
    the squared edge length per axis, so ``4 sigma^2 / h^2`` steps give sigma;
    the scales are reached one after the other.
    """
    neighbours = adjacency(sphere)
    degree = np.asarray(neighbours.sum(axis=1)).ravel()
    step = (0.5 * sparse.identity(len(degree)) + 0.5 * sparse.diags(1.0 / degree) @ neighbours).tocsr()
    spacing = mean_edge_length(sphere) * SPHERE_RADIUS / float(np.linalg.norm(sphere.vertices, axis=1).mean())
    current, done, out = np.asarray(values, dtype=np.float64), 0, {}
    for sigma in sorted(sigmas_mm):
        for _ in range(math.ceil(4 * sigma**2 / spacing**2) - done):
            current = step @ current
            done += 1
        out[sigma] = (current - current.mean()) / max(float(current.std()), 1e-12)
    return out


def _unit(points: torch.Tensor) -> torch.Tensor:
    return points / points.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def raster_weights(sphere: Mesh) -> sparse.csr_matrix:
    """The matrix that takes values on ``sphere``'s vertices to a latitude-longitude grid of :data:`RASTER_SHAPE`
    (rows from the north pole, columns from longitude -180 degrees), flattened row by row."""
    rows, columns = RASTER_SHAPE
    theta, phi = np.meshgrid(np.linspace(0.0, np.pi, rows), np.linspace(-np.pi, np.pi, columns), indexing="ij")
    points = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)
    return barycentric_weights(points.reshape(-1, 3), sphere)


def raster(weights: sparse.csr_matrix, values: np.ndarray, device: torch.device) -> torch.Tensor:
    """``values`` on a sphere's vertices as a (rows, columns) image, through :func:`raster_weights`."""
    return torch.as_tensor((weights @ values).reshape(RASTER_SHAPE), dtype=torch.float64, device=device)


def sample(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a :func:`raster` at unit ``points`` (N, 3), differentiable in the points."""
    rows, columns = image.shape
    x, y, z = points.unbind(dim=-1)
    row = torch.acos(z.clamp(-1 + 1e-9, 1 - 1e-9)) / math.pi * (rows - 1)
    column = (torch.atan2(y, x) + math.pi) / (2 * math.pi) * (columns - 1)
    top = row.detach().floor().clamp(0, rows - 2)
    left = column.detach().floor().clamp(0, columns - 2)
    down, right = row - top, column - left
    corner = (top * columns + left).long()
    flat = image.reshape(-1)
    upper = (1 - right) * flat[corner] + right * flat[corner + 1]
    lower = (1 - right) * flat[corner + columns] + right * flat[corner + columns + 1]
    return (1 - down) * upper + down * lower


def _correlation(feature: torch.Tensor, sampled: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The ``weights``-weighted Pearson correlation of two vectors, the same bits on any thread count."""
    a = feature - fixed_sum(weights * feature)
    b = sampled - fixed_expand(fixed_sum(weights * sampled)[None], sampled.shape[0])
    return fixed_sum(weights * a * b) / (fixed_sum(weights * a * a) * fixed_sum(weights * b * b)).sqrt().clamp_min(1e-12)


def rotation_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """The rotation of an axis-angle vector (radians), through the matrix exponential of its skew matrix."""
    x, y, z = axis_angle.unbind()
    zero = torch.zeros_like(x)
    skew = torch.stack([torch.stack([zero, -z, y]), torch.stack([z, zero, -x]), torch.stack([-y, x, zero])])
    return torch.linalg.matrix_exp(skew)


def _euler_grid(degrees: tuple[float, ...], dtype: torch.dtype) -> list[torch.Tensor]:
    """Rotations composed of one grid angle about each axis."""
    out = []
    for a in degrees:
        for b in degrees:
            for c in degrees:
                out.append(rotation_matrix(torch.tensor([math.radians(a), 0.0, 0.0], dtype=dtype))
                           @ rotation_matrix(torch.tensor([0.0, math.radians(b), 0.0], dtype=dtype))
                           @ rotation_matrix(torch.tensor([0.0, 0.0, math.radians(c)], dtype=dtype)))
    return out


def rigid(points: torch.Tensor, feature: torch.Tensor, weights: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The rotation (3, 3) that best aligns the participant's ``feature`` at unit ``points`` with the template's
    ``image``: the best of a grid of rotations, refined by gradient steps."""
    grid = [r.to(points.device) for r in _euler_grid(RIGID_GRID_DEGREES, points.dtype)]
    with torch.no_grad():
        scores = [float(_correlation(feature, sample(image, points @ r.T), weights)) for r in grid]
    start = grid[int(np.argmax(scores))]
    axis_angle = torch.zeros(3, dtype=points.dtype, device=points.device, requires_grad=True)
    optimizer = Adam(axis_angle, lr=0.01)
    for _ in range(RIGID_ITERATIONS):
        optimizer.zero_grad()
        loss = 1 - _correlation(feature, sample(image, points @ (rotation_matrix(axis_angle) @ start).T), weights)
        loss.backward()
        optimizer.step()
    return (rotation_matrix(axis_angle) @ start).detach()


def _triangle_volumes(points: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    return (a * torch.cross(b, c, dim=-1)).sum(dim=-1)


def warp(points: torch.Tensor, feature: torch.Tensor, weights: torch.Tensor, image: torch.Tensor,
         level: Level, chosen: torch.Tensor) -> torch.Tensor:
    """Unit ``points`` moved by a smooth warp of ``level``'s control sphere towards the template's ``image``,
    fitted on the ``chosen`` points (``feature`` and ``weights`` are theirs)."""
    control = control_sphere(level.control_points)
    dtype, device = points.dtype, points.device
    corners_np, coordinates_np = barycentric(points.cpu().numpy(), control)
    corners = torch.as_tensor(corners_np, device=device)
    coordinates = torch.as_tensor(coordinates_np, dtype=dtype, device=device)
    start = torch.as_tensor(control.vertices, dtype=dtype, device=device)
    faces = torch.as_tensor(control.faces, device=device)
    pairs = torch.as_tensor(edges(control.faces), device=device)
    original = _triangle_volumes(start, faces)
    spacing = mean_edge_length(control)
    displacement = torch.zeros_like(start, requires_grad=True)
    optimizer = Adam(displacement, lr=spacing / 10)

    def mapped(moved: torch.Tensor, rows_corners: torch.Tensor, rows_coordinates: torch.Tensor) -> torch.Tensor:
        return _unit((rows_coordinates[:, :, None] * moved[rows_corners]).sum(dim=1))

    fit_corners, fit_coordinates = corners[chosen], coordinates[chosen]
    for _ in range(level.iterations):
        optimizer.zero_grad()
        moved = _unit(start + displacement)
        fit = 1 - _correlation(feature, sample(image, mapped(moved, fit_corners, fit_coordinates)), weights)
        shift = moved - start
        membrane = ((shift[pairs[:, 0]] - shift[pairs[:, 1]]) ** 2).sum(dim=-1).mean() / spacing**2
        shrink = torch.relu(MIN_AREA_FRACTION - _triangle_volumes(moved, faces) / original)
        loss = fit + SMOOTHNESS * membrane + FOLDING * (shrink**2).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return mapped(_unit(start + displacement), corners, coordinates)


def register(sphere: Mesh, sulc: np.ndarray, curv: np.ndarray, template: SphereTemplate,
             device: torch.device) -> SphereRegistration:
    """Register the participant's ``sphere`` (centred on the origin) to ``template`` by ``sulc`` and ``curv``.

    Returns the participant's vertices on the template's sphere (its radius and
    orientation), so that a template vertex's value is the barycentric
    interpolation of the participant's values around it
    (:func:`neurolearn_cli.surfaces.resample.sphere_to_sphere`).
    """
    dtype = torch.float64
    scales = {"sulc": {RIGID_SIGMA_MM} | {lv.sigma_mm for lv in LEVELS if lv.feature == "sulc"},
              "curv": {lv.sigma_mm for lv in LEVELS if lv.feature == "curv"}}
    inputs = {"sulc": (sulc, template.sulc), "curv": (curv, template.curv)}
    to_raster = raster_weights(template.sphere)
    chosen = torch.arange(0, len(sphere.vertices), max(1, len(sphere.vertices) // SAMPLE_POINTS), device=device)
    ours, theirs = {}, {}
    for name, sigmas in scales.items():
        for sigma, values in smoothed_on_sphere(sphere, inputs[name][0], sigmas).items():
            ours[name, sigma] = torch.as_tensor(values, dtype=dtype, device=device)[chosen]
        for sigma, values in smoothed_on_sphere(template.sphere, inputs[name][1], sigmas).items():
            theirs[name, sigma] = raster(to_raster, values, device)
    areas = torch.as_tensor(vertex_areas(sphere), dtype=dtype, device=device)[chosen]
    weights = areas / fixed_sum(areas)
    points = _unit(torch.as_tensor(sphere.vertices, dtype=dtype, device=device))
    rotation = rigid(points[chosen], ours["sulc", RIGID_SIGMA_MM], weights, theirs["sulc", RIGID_SIGMA_MM])
    points = points @ rotation.T
    radius = float(np.linalg.norm(template.sphere.vertices, axis=1).mean())
    rigid_sphere = sphere.with_vertices(radius * points.cpu().numpy())
    for level in LEVELS:
        key = (level.feature, level.sigma_mm)
        points = warp(points, ours[key], weights, theirs[key], level, chosen)
    warped = sphere.with_vertices(radius * points.cpu().numpy())
    unfolded = unfold(warped, radius)
    allowed = len(flipped_faces(rigid_sphere)) + EXTRA_FLIPPED_FRACTION * len(sphere.faces)
    kept = len(flipped_faces(unfolded)) <= allowed
    registered = unfolded if kept else rigid_sphere
    return SphereRegistration(template=template.name, sphere=registered, rotation=rotation.cpu().numpy(),
                              rigid_correlation=sulc_correlation(rigid_sphere, sulc, template),
                              correlation=sulc_correlation(registered, sulc, template),
                              unfolded=len(flipped_faces(warped)), warped=kept,
                              flipped=len(flipped_faces(registered)))


def sulc_correlation(registered: Mesh, sulc: np.ndarray, template: SphereTemplate) -> float:
    """The correlation, over the template's vertices, of the participant's ``sulc`` resampled there with the
    template's."""
    return float(np.corrcoef(sphere_to_sphere(sulc, registered, template.sphere), template.sulc)[0, 1])

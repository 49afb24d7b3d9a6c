"""The inflated surface mapped onto a sphere of radius 100 (FreeSurfer's ``?h.sphere``) without flipped faces.

The inflated surface is smoothed further, until it is nearly convex (as
FreeSurfer's ``mris_sphere`` starts from a more inflated surface), and every
vertex is projected from its centroid onto the sphere. Where that still folds
the mesh (a triangle seen from outside turns clockwise), the folded region and
a margin around it are relaxed: each of their vertices moves to its
neighbours' mean, back on the sphere, which unfolds the region as a Tutte
embedding does. The margin grows until no face is flipped, or for
:data:`UNFOLD_ROUNDS` rounds: the faces still flipped then are counted, for
the caller to report (a white surface that does not unfold to a star shape,
e.g. with long thin protrusions, can keep some).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurolearn_cli.surfaces.inflate import inflate
from neurolearn_cli.surfaces.mesh import Mesh, adjacency, face_normals

#: FreeSurfer's sphere radius (mm).
SPHERE_RADIUS = 100.0
#: The further smoothing of the inflated surface before projection (umbrella iterations of unit step).
SPHERE_SMOOTHING = 2400.0
#: Relaxation rounds, each on the folded faces' vertices grown by one more ring, with this many smoothing steps.
UNFOLD_ROUNDS = 60
UNFOLD_STEPS = 20


@dataclass(frozen=True)
class SphereMapping:
    """The spherical mesh (centred on the origin), how many of its faces the projection flipped (0 when the
    smoothed surface was star-shaped about its centroid) and how many stay flipped (0 unless unfolding failed)."""

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
    for _ in range(UNFOLD_ROUNDS):
        region[sphere.faces[flipped].ravel()] = True
        region |= (neighbours @ region.astype(np.float64)) > 0
        for _ in range(UNFOLD_STEPS):
            points[region] = on_sphere((neighbours @ points / degree)[region], radius)
        flipped = flipped_faces(sphere.with_vertices(points))
        if not len(flipped):
            break
    return sphere.with_vertices(points) if len(flipped) < first else sphere


def to_sphere(inflated: Mesh, radius: float = SPHERE_RADIUS) -> SphereMapping:
    """Map the genus-0 ``inflated`` mesh onto the sphere of ``radius`` centred on the origin, its flipped faces
    unfolded (:func:`unfold`)."""
    smooth = inflate(inflated, smoothing=SPHERE_SMOOTHING).inflated.vertices
    projected = inflated.with_vertices(on_sphere(smooth - smooth.mean(axis=0), radius))
    sphere = unfold(projected, radius)
    return SphereMapping(sphere, len(flipped_faces(projected)), len(flipped_faces(sphere)))

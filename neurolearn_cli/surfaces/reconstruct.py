"""One hemisphere's surfaces from its tissue fields: white (genus 0), pial, thickness, curvature.

The pure pipeline of the surface stage: the filled white matter (the white
field at or above 0.5) is grown topology-preserving from a ball
(:mod:`~neurolearn_cli.surfaces.topology`), meshed, placed on the field's 0.5
level, then the pial surface is found outward from it. A hemisphere whose surface cannot be made genus 0 raises
:class:`SurfaceError` with a one-line reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from neurolearn_cli.engine.geometry import voxel_spacing
from neurolearn_cli.engine.image import bounding_box
from neurolearn_cli.engine.morphology import largest_component
from neurolearn_cli.surfaces.measures import mean_curvature, thickness
from neurolearn_cli.surfaces.mesh import Mesh, euler_characteristic, extract, self_intersections
from neurolearn_cli.surfaces.pial import place_pial
from neurolearn_cli.surfaces.placement import MAX_THICKNESS_MM, place_white
from neurolearn_cli.surfaces.topology import depth_mm, grow, seed_ball

#: Levels of the white field the topology-preserving growth admits in turn: a handle is cut where the field is lowest.
GROWTH_LEVELS = (0.9, 0.7, 0.5)
#: Depths into the white matter (mm, from its boundary) that the growth admits in turn among the voxels at or above
#: the first growth level, deepest first: a handle through confident white matter (a loop around the temporal horn)
#: is then cut at its thinnest, not across a whole gyrus where two growth fronts happen to meet.
DEPTH_STEPS_MM = (3.0, 2.0, 1.2)


class SurfaceError(RuntimeError):
    """A hemisphere's surfaces could not be made; the message is the one-line reason."""


@dataclass(frozen=True)
class HemisphereSurfaces:
    """White and pial meshes (world mm, one connectivity), per-vertex measures and topology figures.

    ``euler_before`` is the Euler characteristic of the white matter's own
    boundary before the topology-preserving growth (2 - 2 * handles), and
    ``voxels_cut`` how many WM voxels the growth left out to remove them;
    ``seconds`` the wall time of each step (topology, white, pial, measures,
    intersections).
    """

    white: Mesh
    pial: Mesh
    thickness: np.ndarray
    curvature: np.ndarray
    euler_before: int
    voxels_cut: int
    euler_white: int
    euler_pial: int
    intersections_white: int
    intersections_pial: int
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def midthickness(self) -> Mesh:
        """The surface halfway between white and pial, vertex by vertex (fMRIPrep's midthickness)."""
        return self.white.with_vertices((self.white.vertices + self.pial.vertices) / 2)


def _to_world(mesh: Mesh, origin: tuple[int, int, int], affine: torch.Tensor) -> Mesh:
    matrix = affine.double().cpu().numpy()
    voxel = mesh.vertices + np.asarray(origin, dtype=np.float64)
    return mesh.with_vertices(voxel @ matrix[:3, :3].T + matrix[:3, 3])


def white_matter_object(field: torch.Tensor, spacing: tuple[float, float, float]) -> tuple[torch.Tensor, int, int]:
    """The largest 6-connected component of ``field >= 0.5`` grown from a ball into it with its topology kept,
    by :func:`growth_priority`.

    Returns the genus-0 object, the Euler characteristic of the component's
    own boundary (2 when it had no handle) and how many of its voxels were left out.
    """
    target = largest_component(field >= 0.5, connectivity=1)
    if not bool(target.any()):
        raise SurfaceError("no white matter found (the white field is nowhere above 0.5)")
    box = bounding_box(target, margin=2)
    depth = depth_mm(target[box], spacing)
    priority, levels = growth_priority(torch.where(target[box], field[box], 0.0), depth)
    grown = torch.zeros_like(target)
    grown[box] = grow(seed_ball(target[box], depth, spacing), priority, levels)
    euler = euler_characteristic(extract(target[box].cpu().numpy()))
    return grown, euler, int((target & ~grown).sum())


def growth_priority(field: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """The priority and levels for :func:`~neurolearn_cli.surfaces.topology.grow`: the white field's
    :data:`GROWTH_LEVELS`, the first split by :data:`DEPTH_STEPS_MM` into the deepest voxels first.

    A confident voxel's priority is the first level plus the number of depth
    steps it reaches, so the levels are those sums, highest first, then the
    remaining field levels.
    """
    confident = GROWTH_LEVELS[0]
    steps = sum((depth >= step).to(field.dtype) for step in DEPTH_STEPS_MM)
    priority = torch.where(field >= confident, confident + steps, field)
    levels = [confident + count for count in range(len(DEPTH_STEPS_MM), 0, -1)] + list(GROWTH_LEVELS)
    return priority, levels


def reconstruct_hemisphere(white: torch.Tensor, inside: torch.Tensor, affine: torch.Tensor) -> HemisphereSurfaces:
    """White and pial surfaces of one hemisphere.

    ``white`` is the hemisphere's white field, whose 0.5 level the white
    surface takes and whose higher values the growth admits first (the
    T1w's grey-to-white contrast or the WM probability, with deep grey and
    ventricles set to 1, the other hemisphere and the cerebellum 0:
    :func:`~neurolearn_cli.surfaces.hemispheres.hemisphere_fields`), and
    ``inside`` the probability of being WM or GM there, on the grid of
    ``affine``.
    """
    clock = _Stopwatch()
    spacing = voxel_spacing(affine)
    grown, euler_before, voxels_cut = white_matter_object(white, spacing)
    clock.lap("topology")
    box = bounding_box(grown, margin=1)
    origin = (box[0].start, box[1].start, box[2].start)
    staircase = _to_world(extract(grown[box].cpu().numpy()), origin, affine)
    if (euler := euler_characteristic(staircase)) != 2:
        raise SurfaceError(f"white surface has Euler characteristic {euler} after topology correction, not 2")
    # the voxels the topology correction left out count as outside, so the surface does not close the cut
    white_field = torch.where((white >= 0.5) & ~grown, torch.minimum(white, torch.full_like(white, 0.45)), white)
    white_mesh = place_white(staircase, white_field, affine)
    clock.lap("white")
    pial = place_pial(white_mesh, inside, grown, affine, max_mm=MAX_THICKNESS_MM)
    clock.lap("pial")
    cortical_thickness, curvature = thickness(white_mesh, pial), mean_curvature(white_mesh)
    clock.lap("measures")
    intersections_white, intersections_pial = self_intersections(white_mesh), self_intersections(pial)
    clock.lap("intersections")
    return HemisphereSurfaces(
        white=white_mesh, pial=pial, thickness=cortical_thickness, curvature=curvature, euler_before=euler_before,
        voxels_cut=voxels_cut, euler_white=euler_characteristic(white_mesh), euler_pial=euler_characteristic(pial),
        intersections_white=intersections_white, intersections_pial=intersections_pial,
        seconds=clock.laps)


class _Stopwatch:
    """Wall seconds per named step, each lap from the end of the previous one."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now

"""Report figures of the cortical surfaces: white and pial contours over the T1w, thickness maps.

The contours follow fMRIPrep's surface reportlet: each mesh is cut by the
slice planes (in the T1w's voxel coordinates) and the cut, a set of line
segments, is drawn over the bias-corrected T1w. The thickness map is drawn
by an orthographic projection of the mesh (painter's algorithm: faces facing
the viewer, far to near, shaded by the angle to the viewer) in four views,
lateral and medial of each hemisphere, with a colour bar. As in
:mod:`~neurolearn_cli.qc.figures`, each ``*_figure`` function returns the
figure and its namesake without the suffix the PNG.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from neurolearn_cli.palette import PIAL_SURFACE_COLOUR, THICKNESS_COLOURMAP, WHITE_SURFACE_COLOUR
from neurolearn_cli.qc.figures import _dark_legend, _plane, _png, _slice_positions, _window
from neurolearn_cli.surfaces.mesh import Mesh, face_normals

#: The thickness map's colour range (mm): most cortex lies in it, and one range compares participants.
THICKNESS_RANGE_MM = (1.0, 4.0)
#: Per view of :func:`thickness_map_figure`: hemisphere, title, and the viewer's direction (RAS world).
VIEWS = (("L", "left lateral", (-1.0, 0.0, 0.0)), ("R", "right lateral", (1.0, 0.0, 0.0)),
         ("L", "left medial", (1.0, 0.0, 0.0)), ("R", "right medial", (-1.0, 0.0, 0.0)))


def plane_segments(vertices: np.ndarray, faces: np.ndarray, axis: int, position: float) -> np.ndarray:
    """Where a mesh crosses the plane ``coordinate[axis] == position``, as (S, 2, 2) segments.

    ``vertices`` are in voxel coordinates; each segment joins the two points
    where a crossed face's edges meet the plane, given in the two other axes
    (in increasing axis order, as :func:`~neurolearn_cli.qc.figures._plane` shows them).
    """
    side = vertices[:, axis] - position
    distance = side[faces]  # (F, 3)
    above = distance > 0
    crossed = above.any(axis=1) & ~above.all(axis=1)
    corners, distance, above = vertices[faces[crossed]], distance[crossed], above[crossed]
    points = []
    for first, second in ((0, 1), (1, 2), (2, 0)):
        cut = above[:, first] != above[:, second]
        weight = distance[:, first] / np.where(cut, distance[:, first] - distance[:, second], 1.0)
        points.append((cut, corners[:, first] + weight[:, None] * (corners[:, second] - corners[:, first])))
    # a crossed face has exactly two cut edges: take them in order
    cuts = np.stack([cut for cut, _ in points], axis=1)
    where = np.stack([point for _, point in points], axis=1)  # (F, 3 edges, 3)
    order = np.argsort(~cuts, axis=1, kind="stable")[:, :2]
    ends = np.take_along_axis(where, order[:, :, None], axis=1)
    others = [a for a in range(3) if a != axis]
    return ends[:, :, others]


def to_voxels(mesh: Mesh, affine: np.ndarray) -> np.ndarray:
    """The mesh's world vertices in the voxel coordinates of ``affine``."""
    inverse = np.linalg.inv(affine)
    return mesh.vertices @ inverse[:3, :3].T + inverse[:3, 3]


def surface_contours(t1w: np.ndarray, affine: np.ndarray, whites: Mapping[str, Mesh],
                     pials: Mapping[str, Mesh], n_slices: int = 6) -> bytes:
    """PNG of :func:`surface_contours_figure`."""
    return _png(surface_contours_figure(t1w, affine, whites, pials, n_slices))


def surface_contours_figure(t1w: np.ndarray, affine: np.ndarray, whites: Mapping[str, Mesh],
                            pials: Mapping[str, Mesh], n_slices: int = 6) -> Figure:
    """The white and pial surfaces of every hemisphere cut by sagittal, coronal and axial slices of the T1w.

    ``t1w`` is the bias-corrected T1w (RAS voxel order) and ``affine`` its
    voxel-to-world matrix; the meshes are in world mm. Slices are spread over
    the extent of the pial surfaces; a legend names the two surfaces.
    """
    low, high = _window(t1w)
    meshes = {"white": [to_voxels(m, affine) for m in whites.values()],
              "pial": [to_voxels(m, affine) for m in pials.values()]}
    faces = {"white": [m.faces for m in whites.values()], "pial": [m.faces for m in pials.values()]}
    colours = {"white": WHITE_SURFACE_COLOUR, "pial": PIAL_SURFACE_COLOUR}
    extent = np.zeros(t1w.shape, dtype=bool)
    for vertices in meshes["pial"]:
        index = np.clip(np.rint(vertices).astype(int), 0, np.asarray(t1w.shape) - 1)
        extent[tuple(index.T)] = True
    figure = Figure(figsize=(1.9 * n_slices, 1.9 * 3), facecolor="black")
    for row, axis in enumerate((0, 1, 2)):
        for col, index in enumerate(_slice_positions(extent, axis, n_slices)[:n_slices]):
            ax = figure.add_subplot(3, n_slices, row * n_slices + col + 1)
            ax.imshow(_plane(t1w, axis, index), cmap="gray", vmin=low, vmax=high, origin="lower",
                      interpolation="none")
            for surface in ("white", "pial"):
                segments = [plane_segments(v, f, axis, float(index))
                            for v, f in zip(meshes[surface], faces[surface], strict=True)]
                ax.add_collection(LineCollection(np.concatenate(segments), colors=colours[surface],
                                                 linewidths=0.6))
            ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.02, left=0, right=1, bottom=0, top=1)
    _dark_legend(figure, [Line2D([], [], color=colours[s], lw=1.5, label=f"{s} surface") for s in colours])
    return figure


def _projection(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Screen axes (right, up) for a viewer looking along ``-direction`` (from ``direction``), head up (+z)."""
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(up, direction)
    return right / np.linalg.norm(right), up


def draw_projection(ax: Axes, mesh: Mesh, values: np.ndarray, direction: tuple[float, float, float],
                    norm: Normalize) -> None:
    """Draw ``mesh`` coloured by per-vertex ``values``, seen from ``direction`` (orthographic, far to near)."""
    toward = np.asarray(direction, dtype=np.float64)
    right, up = _projection(toward)
    normals = face_normals(mesh)
    length = np.linalg.norm(normals, axis=1)
    facing = normals @ toward > 0
    faces = mesh.faces[facing]
    corners = mesh.vertices[faces]  # (F, 3, 3)
    depth = corners.mean(axis=1) @ toward
    order = np.argsort(depth, kind="stable")  # far (small) first
    faces, corners = faces[order], corners[order]
    shade = (normals[facing][order] @ toward) / np.maximum(length[facing][order], 1e-12)
    colours = colormaps[THICKNESS_COLOURMAP](norm(values[faces].mean(axis=1)))
    colours[:, :3] *= (0.35 + 0.65 * shade)[:, None]
    screen = np.stack([corners @ right, corners @ up], axis=-1)
    # an (F, 3, 2) array, not a list of polygons: matplotlib builds the paths at once (its stubs miss this)
    ax.add_collection(PolyCollection(screen, facecolors=colours, edgecolors="none",  # type: ignore[arg-type]
                                     antialiased=False))
    ax.set_xlim(screen[..., 0].min(), screen[..., 0].max())
    ax.set_ylim(screen[..., 1].min(), screen[..., 1].max())


def thickness_map(meshes: Mapping[str, Mesh], thickness: Mapping[str, np.ndarray], surface: str) -> bytes:
    """PNG of :func:`thickness_map_figure`."""
    return _png(thickness_map_figure(meshes, thickness, surface), dpi=110)


def thickness_map_figure(meshes: Mapping[str, Mesh], thickness: Mapping[str, np.ndarray], surface: str) -> Figure:
    """Cortical thickness of both hemispheres on ``meshes`` (by ``L``/``R``), lateral and medial views.

    ``surface`` names the meshes in the titles (``midthickness``, ``inflated``);
    the colour bar spans :data:`THICKNESS_RANGE_MM`.
    """
    norm = Normalize(*THICKNESS_RANGE_MM, clip=True)
    figure = Figure(figsize=(9.0, 6.4), facecolor="white")
    axes = figure.subplots(2, 2)
    for ax, (hemisphere, title, direction) in zip(axes.ravel(), VIEWS, strict=True):
        draw_projection(ax, meshes[hemisphere], thickness[hemisphere], direction, norm)
        ax.set_aspect("equal")
        ax.set_title(f"{title} ({surface})", fontsize=9)
        ax.set_axis_off()
    figure.subplots_adjust(wspace=0.02, hspace=0.12, left=0.01, right=0.88, bottom=0.02, top=0.94)
    bar_axes = figure.add_axes((0.9, 0.2, 0.02, 0.6))
    bar = figure.colorbar(ScalarMappable(norm, THICKNESS_COLOURMAP), cax=bar_axes, extend="both")
    bar.set_label("cortical thickness (mm)", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    return figure

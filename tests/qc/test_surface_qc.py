"""Surface IQMs and figures: defects from the Euler characteristic, asymmetry, contours cut from the meshes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection

from neurolearn_cli.palette import PIAL_SURFACE_COLOUR, WHITE_SURFACE_COLOUR
from neurolearn_cli.qc.iqm_catalog import CATALOG
from neurolearn_cli.qc.measures import Missing
from neurolearn_cli.qc.surface_figures import (
    plane_segments,
    surface_contours_figure,
    thickness_map_figure,
)
from neurolearn_cli.qc.surfaces import HemisphereQC, handles, surface_iqms, thickness_asymmetry
from neurolearn_cli.surfaces.mesh import Mesh, extract


def _ball(centre: tuple[float, float, float], radius: float, shape: tuple[int, int, int] = (30, 34, 26)) -> Mesh:
    grid = np.indices(shape).astype(float)
    return extract(((grid - np.reshape(centre, (3, 1, 1, 1))) ** 2).sum(0) <= radius**2)


def _hemisphere(centre: tuple[float, float, float], thickness: float, euler: int | None) -> HemisphereQC:
    white, pial = _ball(centre, 5), _ball(centre, 8)
    return HemisphereQC(white, pial, pial, np.full(len(pial.vertices), thickness), euler, 12, 3)


def test_defects_asymmetry_and_totals() -> None:
    assert handles(2) == 0 and handles(-4) == 3
    assert isinstance(handles(None), Missing)
    assert math.isclose(thickness_asymmetry(2.75, 2.25), 0.2)
    iqms = surface_iqms({"L": _hemisphere((10, 17, 13), 2.75, -2), "R": _hemisphere((20, 17, 13), 2.25, 2)})
    assert iqms["surf_handles_L"] == 2 and iqms["surf_handles_R"] == 0
    assert iqms["surf_voxels_cut"] == 24 and iqms["surf_intersections"] == 6
    assert math.isclose(iqms["surf_thickness_asym"], 0.2)
    assert all(name in CATALOG and CATALOG[name].group == "Surfaces" for name in iqms)
    unrecorded = surface_iqms({"L": _hemisphere((10, 17, 13), 2.5, None)})
    assert isinstance(unrecorded["surf_handles_L"], Missing) and "surf_thickness_asym" not in unrecorded


def test_plane_cuts_a_tetrahedron_where_expected() -> None:
    vertices = np.array([[0.0, 0, 0], [4, 0, 0], [0, 6, 0], [0, 0, 8]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    segments = plane_segments(vertices, faces, axis=2, position=4.0)  # halfway up: a triangle of sides halved
    assert segments.shape == (3, 2, 2)
    ends = {tuple(np.round(point, 6)) for segment in segments for point in segment}
    assert ends == {(0.0, 0.0), (2.0, 0.0), (0.0, 3.0)}
    assert len(plane_segments(vertices, faces, axis=2, position=9.0)) == 0


def test_figures_draw_both_surfaces_and_four_views() -> None:
    hemispheres = {"L": _hemisphere((10, 17, 13), 2.0, 2), "R": _hemisphere((20, 17, 13), 3.0, 2)}
    t1w = np.random.default_rng(0).random((30, 34, 26))
    contours = surface_contours_figure(t1w, np.eye(4), {h: s.white for h, s in hemispheres.items()},
                                       {h: s.pial for h, s in hemispheres.items()}, n_slices=3)
    colours = {tuple(c.get_colors()[0]) for ax in contours.axes for c in ax.collections
               if isinstance(c, LineCollection) and len(c.get_segments())}
    assert len(colours) == 2  # white and pial drawn on the slices
    assert [t.get_text() for t in contours.legends[0].get_texts()] == ["white surface", "pial surface"]
    assert {h.get_color() for h in contours.legends[0].legend_handles} == {WHITE_SURFACE_COLOUR, PIAL_SURFACE_COLOUR}
    figure = thickness_map_figure({h: s.display for h, s in hemispheres.items()},
                                  {h: s.thickness for h, s in hemispheres.items()}, "midthickness")
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["left lateral (midthickness)", "right lateral (midthickness)",
                      "left medial (midthickness)", "right medial (midthickness)"]
    polygons = [c for ax in figure.axes for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polygons) == 4 and all(len(p.get_paths()) > 0 for p in polygons)
    assert figure.axes[-1].get_ylabel() == "cortical thickness (mm)"


@pytest.mark.parametrize("side", ["L", "R"])
def test_lateral_view_shows_the_outer_side(side: str) -> None:
    """Faces are kept only when they face the viewer: the left lateral view sees the faces with x normal < 0."""
    mesh = _ball((15, 17, 13), 8)
    values = np.where(mesh.vertices[:, 0] < 15, 1.0, 4.0)  # thin on the left half, thick on the right
    figure = thickness_map_figure({side: mesh, "L" if side == "R" else "R": mesh},
                                  {"L": values, "R": values}, "midthickness")
    lateral = figure.axes[0 if side == "L" else 1]
    colours = next(c for c in lateral.collections if isinstance(c, PolyCollection)).get_facecolor()
    # viridis is dark at 1 mm and bright at 4 mm: the left half seen from the left is dark
    brightness = colours[:, :3].mean()
    assert (brightness < 0.35) if side == "L" else (brightness > 0.35)

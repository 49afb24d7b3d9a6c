"""The surface stage's computation as one pure function: smri's tissue maps in, both hemispheres out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from neurolearn_cli.engine.image import Image, world_grid
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.smri.morphometry import voxel_ml
from neurolearn_cli.surfaces.hemispheres import (
    HEMISPHERES,
    deep_region,
    hemisphere_fields,
)
from neurolearn_cli.surfaces.placement import tissue_contrast
from neurolearn_cli.surfaces.reconstruct import HemisphereSurfaces, reconstruct_hemisphere
from neurolearn_cli.surfaces.ribbon import inside
from neurolearn_cli.surfaces.volumes import posterior_fossa, surface_volumes


@dataclass(frozen=True)
class SurfaceResult:
    """Both hemispheres' surfaces and measures, the cortical ribbon on the T1w grid (1 inside, 0 outside),
    each hemisphere's ribbon voxels (bool arrays on that grid) and the tissue volumes the surfaces give (mL,
    :data:`~neurolearn_cli.surfaces.volumes.VOLUME_COLUMNS`)."""

    hemispheres: dict[str, HemisphereSurfaces]
    ribbon: Image
    ribbons: dict[str, np.ndarray]
    volumes: dict[str, float]


def reconstruct_surfaces(tissues: Mapping[str, Image], mask: Image, to_template: Transform,
                         t1w: Image | None = None) -> SurfaceResult:
    """White and pial surfaces of both hemispheres from smri's outputs, and the volumes they enclose.

    ``tissues``: the GM, WM and CSF probabilities on the T1w grid; ``mask``: the
    brain mask; ``to_template``: maps T1w world points to template points (the
    normalization), which places the midline, the deep grey and the brainstem
    cut; ``t1w``: the bias-corrected T1w, whose intensity between grey and
    white matter places the white surface
    (:func:`~neurolearn_cli.surfaces.placement.tissue_contrast`; without it,
    the WM probability's 0.5 level does).
    """
    grid = mask.grid
    template_points = to_template.map_points(world_grid(grid).reshape(-1, 3)).reshape(*grid.shape, 3)
    wm, gm = tissues["WM"].data, tissues["GM"].data
    contrast = None if t1w is None else tissue_contrast(t1w.data, wm, gm, grid.spacing)
    fields = hemisphere_fields(wm, gm, mask.data, template_points, contrast)
    affine = mask.affine
    hemispheres = {h: reconstruct_hemisphere(fields[h].boundary, fields[h].inside, affine)
                   for h in HEMISPHERES}
    matrix = affine.double().cpu().numpy()
    shape = grid.shape
    inside_white, inside_pial = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    ribbons = {}
    for hemisphere, surfaces in hemispheres.items():
        white, pial = inside(surfaces.white, shape, matrix), inside(surfaces.pial, shape, matrix)
        ribbons[hemisphere] = pial & ~white
        inside_white |= white
        inside_pial |= pial
    cortex = np.logical_or.reduce(list(ribbons.values()))
    deep = deep_region(template_points, "L") | deep_region(template_points, "R")
    volumes = surface_volumes(
        {h: s.white for h, s in hemispheres.items()}, {h: s.pial for h, s in hemispheres.items()},
        inside_white, inside_pial, {name: image.data.cpu().numpy() for name, image in tissues.items()},
        mask.data.cpu().numpy() > 0.5, deep.cpu().numpy(),
        posterior_fossa(template_points.cpu().numpy()), voxel_ml(mask))
    return SurfaceResult(hemispheres, mask.with_data(torch.from_numpy(cortex.astype(np.float32))), ribbons, volumes)

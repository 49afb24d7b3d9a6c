"""The surface stage's computation as one pure function: smri's tissue maps in, both hemispheres out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from neurolearn_cli.engine.image import Image, world_grid
from neurolearn_cli.engine.transforms import Transform
from neurolearn_cli.surfaces.hemispheres import HEMISPHERES, hemisphere_fields
from neurolearn_cli.surfaces.placement import tissue_contrast
from neurolearn_cli.surfaces.reconstruct import HemisphereSurfaces, reconstruct_hemisphere
from neurolearn_cli.surfaces.ribbon import ribbon


@dataclass(frozen=True)
class SurfaceResult:
    """Both hemispheres' surfaces and measures, and the cortical ribbon on the T1w grid (1 inside, 0 outside)."""

    hemispheres: dict[str, HemisphereSurfaces]
    ribbon: Image


def reconstruct_surfaces(tissues: Mapping[str, Image], mask: Image, to_template: Transform,
                         t1w: Image | None = None) -> SurfaceResult:
    """White and pial surfaces of both hemispheres from smri's outputs.

    ``tissues``: the GM and WM probabilities on the T1w grid; ``mask``: the
    brain mask; ``to_template``: maps T1w world points to template points (the
    normalization), which places the midline, the deep grey and the brainstem
    cut; ``t1w``: the bias-corrected T1w, whose intensity midway between grey
    and white matter places the white surface (without it, the WM
    probability's 0.5 level does).
    """
    grid = mask.grid
    template_points = to_template.map_points(world_grid(grid).reshape(-1, 3)).reshape(*grid.shape, 3)
    wm, gm = tissues["WM"].data, tissues["GM"].data
    contrast = None if t1w is None else tissue_contrast(t1w.data, wm, gm, grid.spacing)
    fields = hemisphere_fields(wm, gm, mask.data, template_points, contrast)
    affine = mask.affine
    hemispheres = {h: reconstruct_hemisphere(fields[h].wm, fields[h].inside, affine, fields[h].boundary)
                   for h in HEMISPHERES}
    matrix = affine.double().cpu().numpy()
    shape = grid.shape
    cortex = np.zeros(shape, dtype=bool)
    for surfaces in hemispheres.values():
        cortex |= ribbon(surfaces.white, surfaces.pial, shape, matrix)
    return SurfaceResult(hemispheres, mask.with_data(torch.from_numpy(cortex.astype(np.float32))))

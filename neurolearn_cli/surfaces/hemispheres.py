"""Hemisphere split and fill: each cerebral hemisphere's white matter as one solid, as FreeSurfer's ``filled``.

Works from smri's tissue probabilities and the template coordinates of every
T1w voxel (the normalization pulled back): the template's midline (x = 0)
splits left from right; a region around the basal ganglia, thalami and
lateral ventricles, defined in template millimetres, is filled into the white
matter; the brainstem is cut below the thalami, so that the cerebellum's white
matter, left as a separate piece, drops out with every other piece but the
largest. Enclosed cavities of the white matter are filled too. The brain
mask's outermost voxel layer is never white matter: the cortex and its CSF
lie between the white matter and the brain's edge, so a bright voxel there is
dura, a venous sinus or fat, and the white surface must not reach it; nor
may it take a bright voxel the tissue posteriors do not call grey or white.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neurolearn_cli.engine.morphology import cross, erode, fill_holes
from neurolearn_cli.surfaces.template import HEMISPHERES

#: Deep grey and ventricles, as an ellipsoid per hemisphere in template mm: centre (|x|, y, z) and radii. It
#: holds the lateral ventricles, caudate, putamen, pallidum and thalamus from the midline to the external capsule
#: and from below the putamen to the top of the ventricles, with a few mm for the normalization's error; what
#: white matter it holds changes nothing.
DEEP_CENTRE_MM = (18.0, -10.0, 9.0)
DEEP_RADII_MM = (18.0, 40.0, 23.0)
#: The brainstem cut, in template mm: |x| below, y below, z below (the pons and medulla, the cerebellar peduncles).
STEM_HALF_WIDTH_MM = 20.0
STEM_Y_BELOW_MM = -10.0
STEM_Z_BELOW_MM = -15.0
#: Behind this y (template mm) the cut's top falls by STEM_TOP_SLOPE mm per mm, following the tentorium, so that it
#: stays below the occipital lobe's underside (about z = -15 at y = -85) and takes only the cerebellum there.
STEM_TOP_FALLS_BEHIND_Y_MM = -50.0
STEM_TOP_SLOPE = 0.5
#: The grey-or-white probability at which the pial surface lies: outside its 0.5 level, where the tissue posteriors
#: count the grey matter's partial volume with sulcal CSF as CSF. On aomic this level brings the pial surface
#: nearest FreeSurfer's (see the pial level's Reading in benchmarks/RESULTS.md).
PIAL_PROBABILITY = 0.35


@dataclass(frozen=True)
class HemisphereFields:
    """One hemisphere's pial field (``inside``: its WM-or-GM probability raised so that its 0.5 level lies at
    :data:`PIAL_PROBABILITY`; 0 elsewhere) and the field whose 0.5 level the white surface takes and whose higher
    values its topology-preserving growth admits first (``boundary``)."""

    inside: torch.Tensor
    boundary: torch.Tensor


def deep_region(template_points: torch.Tensor, hemisphere: str) -> torch.Tensor:
    """The deep grey nuclei and lateral ventricles of ``hemisphere``, from (X, Y, Z, 3) template coordinates."""
    sign = -1.0 if hemisphere == "L" else 1.0
    centre = torch.tensor([sign * DEEP_CENTRE_MM[0], *DEEP_CENTRE_MM[1:]], device=template_points.device)
    radii = torch.tensor(DEEP_RADII_MM, device=template_points.device)
    return (((template_points - centre) / radii) ** 2).sum(dim=-1) <= 1.0


def brainstem(template_points: torch.Tensor) -> torch.Tensor:
    """The brainstem below the thalami (cut so the cerebellum's white matter separates from the cerebrum's)."""
    x, y, z = template_points.unbind(dim=-1)
    top = STEM_Z_BELOW_MM - STEM_TOP_SLOPE * (STEM_TOP_FALLS_BEHIND_Y_MM - y).clamp(min=0.0)
    return (x.abs() < STEM_HALF_WIDTH_MM) & (y < STEM_Y_BELOW_MM) & (z < top)


def hemisphere_fields(wm: torch.Tensor, gm: torch.Tensor, mask: torch.Tensor, template_points: torch.Tensor,
                      contrast: torch.Tensor | None = None) -> dict[str, HemisphereFields]:
    """Per hemisphere, the pial surface's field (the WM + GM probability, shifted by ``0.5 - PIAL_PROBABILITY``)
    and the white surface's field.

    ``wm``, ``gm``: smri's tissue probabilities; ``mask``: its brain mask;
    ``template_points``: (X, Y, Z, 3) template coordinates of each voxel;
    ``contrast``: the T1w scaled so that its 0.5 level is the white surface
    (:func:`~neurolearn_cli.surfaces.placement.tissue_contrast`). The white
    surface's field is ``contrast`` (1 in the filled deep grey, ventricles
    and cavities of the white matter), or without it the filled WM
    probability. It is 0 in the brain mask's outermost voxel layer, and the
    contrast never exceeds the probability of grey or white matter: a bright
    voxel the posteriors call CSF or non-brain (a sinus, dura) is not white.
    """
    in_mask = mask > 0.5
    brain = in_mask & ~brainstem(template_points)
    below_edge = erode(in_mask, structure=cross())
    tissue = (wm + gm).clamp(max=1.0)
    fields = {}
    for hemisphere in HEMISPHERES:
        x = template_points[..., 0]
        side = brain & ((x < 0) if hemisphere == "L" else (x >= 0))
        deep = deep_region(template_points, hemisphere) & side
        white_side = side & below_edge
        filled_wm = torch.where(deep, torch.ones_like(wm), torch.where(white_side, wm, torch.zeros_like(wm)))
        cavities = fill_holes(filled_wm >= 0.5) & side
        filled_wm = torch.where(cavities, torch.ones_like(wm), filled_wm)
        probability = torch.maximum(filled_wm, tissue)
        inside = torch.where(side, (probability + (0.5 - PIAL_PROBABILITY)).clamp(max=1.0), torch.zeros_like(wm))
        boundary = filled_wm
        if contrast is not None:
            filled = deep | cavities
            boundary = torch.where(filled, torch.ones_like(wm),
                                   torch.where(white_side, torch.minimum(contrast, tissue), torch.zeros_like(wm)))
        fields[hemisphere] = HemisphereFields(inside, boundary)
    return fields

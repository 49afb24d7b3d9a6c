"""Grey- and white-matter volumes from the surfaces, as FreeSurfer's ``TotalGrayVol`` and white-matter volumes.

smri's volumes sum tissue probabilities (each voxel's expected share of each
tissue). Here the GM/WM border is the white surface:

- cortical GM: the volume between the white and pial surfaces (their enclosed
  volumes' difference, from the meshes);
- subcortical GM: the GM probability of the deep-grey region (basal ganglia
  and thalami, placed from the template) outside the cortical ribbon;
- cerebellar GM and WM: the GM and WM probabilities of the brain outside both
  pial surfaces within the posterior fossa (template y below
  :data:`FOSSA_Y_BELOW_MM` and z below :data:`FOSSA_Z_BELOW_MM`), the
  brainstem in front of the fourth ventricle left out;
- cerebral WM: the volume inside the white surfaces less the GM probability
  of the deep-grey region and the CSF probability inside them (the nuclei and
  ventricles filled into the white matter).

Totals: GM is cortical + subcortical + cerebellar GM, WM is cerebral +
cerebellar WM, all in mL.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neurolearn_cli.surfaces.mesh import Mesh, signed_volume

#: The posterior fossa, in template mm: behind and below these (the cerebellum lies there, outside the pial surfaces).
FOSSA_Y_BELOW_MM = -30.0
FOSSA_Z_BELOW_MM = 0.0
#: The brainstem within the posterior fossa, in template mm: |x| below, y above (in front of the fourth ventricle,
#: which parts it from the vermis).
FOSSA_STEM_HALF_WIDTH_MM = 15.0
FOSSA_STEM_FRONT_OF_Y_MM = -42.0

#: Column order of :func:`surface_volumes`, with what each holds (the table's sidecar).
VOLUME_COLUMNS = {
    "GM_surface": "grey matter: cortical + subcortical + cerebellar GM (mL)",
    "WM_surface": "white matter: cerebral + cerebellar WM (mL)",
    "cortical_GM": "volume between the white and pial surfaces, both hemispheres (mL)",
    "subcortical_GM": "GM probability of the deep-grey region (basal ganglia, thalami; placed from the template "
                      "through the normalization) outside the cortical ribbon (mL)",
    "cerebellar_GM": "GM probability of the brain mask outside both pial surfaces in the posterior fossa "
                     f"(template y < {FOSSA_Y_BELOW_MM:g} mm, z < {FOSSA_Z_BELOW_MM:g} mm), the brainstem (|x| < "
                     f"{FOSSA_STEM_HALF_WIDTH_MM:g} mm, y > {FOSSA_STEM_FRONT_OF_Y_MM:g} mm) left out (mL)",
    "cerebral_WM": "volume inside the white surfaces less the GM probability of the deep-grey region and the "
                   "CSF probability inside them (the nuclei and ventricles filled in) (mL)",
    "cerebellar_WM": "WM probability of the brain mask outside both pial surfaces in the posterior fossa, the "
                     "brainstem left out (mL)",
}


def posterior_fossa(template_points: np.ndarray) -> np.ndarray:
    """Whether each point of (..., 3) template coordinates lies in the posterior fossa box, not in its brainstem."""
    x, y, z = (template_points[..., axis] for axis in range(3))
    stem = (np.abs(x) < FOSSA_STEM_HALF_WIDTH_MM) & (y > FOSSA_STEM_FRONT_OF_Y_MM)
    return (y < FOSSA_Y_BELOW_MM) & (z < FOSSA_Z_BELOW_MM) & ~stem


def surface_volumes(whites: Mapping[str, Mesh], pials: Mapping[str, Mesh], inside_white: np.ndarray,
                    inside_pial: np.ndarray, tissues: Mapping[str, np.ndarray], brain: np.ndarray,
                    deep: np.ndarray, fossa: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """The volumes of :data:`VOLUME_COLUMNS` (mL).

    ``whites``/``pials``: both hemispheres' world meshes (mm); ``inside_white``/
    ``inside_pial``: the voxels inside any white / pial surface; ``tissues``:
    ``GM``, ``WM``, ``CSF`` probabilities; ``brain``: the brain mask; ``deep``:
    the deep-grey region; ``fossa``: the posterior fossa less its brainstem,
    all on one grid of ``voxel_ml`` mL voxels.
    """
    def summed(probability: np.ndarray, where: np.ndarray) -> float:
        return float(probability[where].sum(dtype=np.float64)) * voxel_ml

    cortical = sum(signed_volume(pials[h]) - signed_volume(whites[h]) for h in pials) / 1000.0
    white_volume = sum(signed_volume(mesh) for mesh in whites.values()) / 1000.0
    ribbon = inside_pial & ~inside_white
    subcortical = summed(tissues["GM"], deep & ~ribbon)
    cerebellum = brain & ~inside_pial & fossa
    cerebral_wm = white_volume - summed(tissues["GM"], deep & inside_white) - summed(tissues["CSF"], inside_white)
    volumes = {
        "cortical_GM": cortical,
        "subcortical_GM": subcortical,
        "cerebellar_GM": summed(tissues["GM"], cerebellum),
        "cerebral_WM": cerebral_wm,
        "cerebellar_WM": summed(tissues["WM"], cerebellum),
    }
    volumes["GM_surface"] = volumes["cortical_GM"] + volumes["subcortical_GM"] + volumes["cerebellar_GM"]
    volumes["WM_surface"] = volumes["cerebral_WM"] + volumes["cerebellar_WM"]
    return {name: volumes[name] for name in VOLUME_COLUMNS}

"""Grey- and white-matter volumes from the surfaces, as FreeSurfer's ``TotalGrayVol`` and white-matter volumes.

smri's volumes sum tissue probabilities, so the partial-volume voxels of the
GM/WM border count mostly as grey. Here the border is the white surface:

- cortical GM: the volume between the white and pial surfaces (their enclosed
  volumes' difference, from the meshes);
- subcortical GM: the GM probability inside the white surfaces within the
  deep-grey region (basal ganglia and thalami, placed from the template);
- cerebellar GM and WM: the GM and WM probabilities of the brain outside both
  pial surfaces, the brainstem below the thalami left out;
- cerebral WM: the volume inside the white surfaces less that subcortical GM
  and the CSF probability inside them (the ventricles).

Totals: GM is cortical + subcortical + cerebellar GM, WM is cerebral +
cerebellar WM, all in mL.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neurolearn_cli.surfaces.mesh import Mesh, signed_volume

#: Column order of :func:`surface_volumes`, with what each holds (the table's sidecar).
VOLUME_COLUMNS = {
    "GM_surface": "grey matter: cortical + subcortical + cerebellar GM (mL)",
    "WM_surface": "white matter: cerebral + cerebellar WM (mL)",
    "cortical_GM": "volume between the white and pial surfaces, both hemispheres (mL)",
    "subcortical_GM": "GM probability inside the white surfaces within the deep-grey region (basal ganglia, "
                      "thalami; placed from the template through the normalization) (mL)",
    "cerebellar_GM": "GM probability of the brain mask outside both pial surfaces, the brainstem left out (mL)",
    "cerebral_WM": "volume inside the white surfaces less the subcortical GM and the CSF probability inside "
                   "them (the ventricles) (mL)",
    "cerebellar_WM": "WM probability of the brain mask outside both pial surfaces, the brainstem left out (mL)",
}


def surface_volumes(whites: Mapping[str, Mesh], pials: Mapping[str, Mesh], inside_white: np.ndarray,
                    inside_pial: np.ndarray, tissues: Mapping[str, np.ndarray], brain: np.ndarray,
                    deep: np.ndarray, stem: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """The volumes of :data:`VOLUME_COLUMNS` (mL).

    ``whites``/``pials``: both hemispheres' world meshes (mm); ``inside_white``/
    ``inside_pial``: the voxels inside any white / pial surface; ``tissues``:
    ``GM``, ``WM``, ``CSF`` probabilities; ``brain``: the brain mask; ``deep``,
    ``stem``: the deep-grey region and the brainstem cut, all on one grid of
    ``voxel_ml`` mL voxels.
    """
    def summed(probability: np.ndarray, where: np.ndarray) -> float:
        return float(probability[where].sum(dtype=np.float64)) * voxel_ml

    cortical = sum(signed_volume(pials[h]) - signed_volume(whites[h]) for h in pials) / 1000.0
    white_volume = sum(signed_volume(mesh) for mesh in whites.values()) / 1000.0
    subcortical = summed(tissues["GM"], inside_white & deep)
    cerebellum = brain & ~inside_pial & ~stem
    cerebral_wm = white_volume - subcortical - summed(tissues["CSF"], inside_white)
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

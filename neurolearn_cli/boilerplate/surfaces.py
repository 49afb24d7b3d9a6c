"""The methods paragraph of the surfaces stage (cortical surfaces, thickness, volumes), from its facts."""

from __future__ import annotations

from collections.abc import Sequence

from neurolearn_cli.boilerplate.citations import Citations
from neurolearn_cli.boilerplate.document import Section
from neurolearn_cli.boilerplate.facts import SurfaceFacts
from neurolearn_cli.boilerplate.wording import plural, spread
from neurolearn_cli.surfaces.hemispheres import PIAL_PROBABILITY
from neurolearn_cli.surfaces.measures import THICKNESS_RINGS
from neurolearn_cli.surfaces.parcels import MAX_LABEL_DISTANCE_MM
from neurolearn_cli.surfaces.placement import (
    CONTRAST_FWHM_MM,
    MAX_THICKNESS_MM,
    WHITE_CONTRAST_LEVEL,
)
from neurolearn_cli.surfaces.reconstruct import DEPTH_STEPS_MM, GROWTH_LEVELS
from neurolearn_cli.surfaces.sphere import EQUALIZE_LEVELS


def _counted(surfaces: Sequence[SurfaceFacts], attribute: str) -> list[float]:
    return [float(value) for s in surfaces if (value := getattr(s, attribute)) is not None]


def _topology(surfaces: Sequence[SurfaceFacts]) -> str:
    handles, cut, crossing = (_counted(surfaces, a) for a in ("handles", "voxels_cut", "intersections"))
    parts = []
    if handles:
        parts.append(f"Before the correction the white matter's boundary had {spread(handles, 3)} handles "
                     "(topological defects) over both hemispheres")
    if cut:
        parts.append(f"the correction left out {spread(cut, 3)} voxels")
    sentence = "; ".join(parts) + "." if parts else ""
    if crossing:
        sentence += f" The white and pial surfaces had {spread(crossing, 3)} self-intersecting faces in all."
    return sentence.strip()


def _volumes(surfaces: Sequence[SurfaceFacts]) -> str:
    parts = []
    for column, what in (("GM_surface", "grey matter"), ("WM_surface", "white matter")):
        values = [s.volumes_ml[column] for s in surfaces if column in s.volumes_ml]
        if values:
            parts.append(f"{what} {spread(values, 4, 'mL')}")
    return f" Resulting volumes: {' and '.join(parts)}." if parts else ""


def surfaces_section(surfaces: Sequence[SurfaceFacts], cite: Citations) -> Section:
    """Cortical surface reconstruction, for one participant or pooled over several."""
    percents = [f"{100 * (WHITE_CONTRAST_LEVEL + level - 0.5):.0f}" for level in GROWTH_LEVELS]
    levels = ", ".join(percents[:-1]) + f" and {percents[-1]} %"
    depths = ", ".join(f"{step:g}" for step in DEPTH_STEPS_MM[:-1]) + f" and {DEPTH_STEPS_MM[-1]:g}"
    who = (f"participant {surfaces[0].participant}" if len(surfaces) == 1
           else plural(len(surfaces), "participant"))
    reconstruction = (
        f"Cortical surfaces were reconstructed for {who} from the structural outputs, without FreeSurfer. The "
        "brain was split into hemispheres at the template's midline, carried back through the normalization; in "
        "each, the deep grey nuclei and lateral ventricles were filled into the white matter and the brainstem "
        "was cut below the thalami. Each hemisphere's white matter, the voxels where the bias-corrected T1w has "
        f"risen at least {100 * WHITE_CONTRAST_LEVEL:.0f} % of the way from the local mean of confident grey "
        f"matter to that of white matter (means within {CONTRAST_FWHM_MM:g} mm FWHM), where FreeSurfer's white "
        "surface lies, was then grown from a ball deep inside it by adding only voxels whose addition keeps its "
        f"topology (simple points {cite('simplepoints')}), those at least {levels} of the way in turn, and "
        f"among the first those at least {depths} mm inside the white matter in turn, so that it has no handle; "
        "the voxels left out are those that would have closed a handle, cut where the intensity was lowest and "
        f"the white matter thinnest. Its boundary was meshed by marching cubes {cite('marchingcubes')} and moved onto "
        f"that {100 * WHITE_CONTRAST_LEVEL:.0f} % level, interpolated between voxels (the white surface, genus 0: "
        "Euler characteristic 2). The pial surface was found by moving each "
        "vertex outward along the field lines of a Laplace potential between the white matter and the "
        f"grey-matter/CSF boundary {cite('laplace')} until the grey-or-white probability fell below {PIAL_PROBABILITY:g}, or the "
        f"line reached the midline of a sulcus whose banks touch, or it had gone {MAX_THICKNESS_MM:g} mm; field "
        "lines do not cross; where the moved surface still turned over (over sulcal fundi, where field lines "
        "converge), those vertices were relaxed towards their neighbours, and where faces still crossed, the moves "
        "were shortened. Cortical thickness is "
        f"FreeSurfer's definition {cite('thickness')}: at each vertex, the mean of the distances from the white "
        "vertex to the nearest pial vertex and from the pial vertex to the nearest white vertex, each searched "
        f"within {THICKNESS_RINGS} edges of the vertex on its own side of the cortex and capped at "
        f"{MAX_THICKNESS_MM:g} mm, as FreeSurfer's mris_thickness measures it. The midthickness surface lies halfway between "
        "white and pial; mean curvature and each vertex's area (a third of the area of the triangles around it, "
        "FreeSurfer's area) were computed on the white surface. The white surface was inflated by conformalized "
        f"mean-curvature flow {cite('cmcf')}, which draws thin strands of white matter into the surface rather than "
        "leaving them as spikes, and kept at its area (its sulcal depth is how far each vertex moved along its "
        "normal while the folds flattened, as FreeSurfer's sulc); it was mapped conformally onto a sphere "
        f"{cite('conformal')}, centred so that its area is balanced, moved by a density-equalizing flow "
        f"{cite('densityequalizing')} until each part of the white surface held about its share of the sphere's "
        "area (coarse to fine, on control spheres of up to "
        f"{EQUALIZE_LEVELS[-1]} points, without folding more faces), turned to the participant's axes, and "
        "registered to fsaverage's sphere by its sulcal depth and curvature, coarse to fine: a rotation, then a "
        f"smooth warp {cite('sphericalregistration')}. " + _topology(surfaces)
    )
    tables = (
        "The mean thickness of each parcel of the atlas was computed by giving each midthickness vertex the "
        "parcel of the nearest atlas voxel in the cortical ribbon (the voxels between the white and pial "
        f"surfaces), up to {MAX_LABEL_DISTANCE_MM:g} mm away; a parcel no vertex falls in has no value. Tissue "
        "volumes were also taken from the surfaces: cortical grey matter as the volume between the white and "
        "pial surfaces, plus the grey matter of the deep nuclei (a region placed from the template, outside the "
        "ribbon) and of the cerebellum (the brain outside the pial surfaces in the posterior fossa, brainstem "
        "excluded); white matter as the volume inside the white surfaces less the deep grey matter and "
        "ventricles filled into it, plus the cerebellum's white matter. These count the "
        "GM/WM border at the white surface, where the probability-map volumes above split its partial-volume "
        "voxels by their tissue fractions." + _volumes(surfaces)
    )
    return Section("Cortical surfaces (surfaces)", (reconstruction, tables))

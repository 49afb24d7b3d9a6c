"""The surfaces stage for one participant: read smri's outputs, reconstruct both hemispheres, write GIFTIs.

IO stays here (engine reader in, derivatives writer out); the computation is
:func:`neurolearn_cli.surfaces.pipeline.reconstruct_surfaces`. Outputs follow
fMRIPrep's names in ``anat/`` (``hemi-L_white.surf.gii``, ``hemi-L_thickness.shape.gii``,
``desc-ribbon_mask.nii.gz``); GIFTI vertices are in the T1w's world
coordinates. Two tables go beside smri's morphometry: the mean thickness of
each parcel of the run's atlas (``seg-<atlas>_stat-thickness_morph.tsv``, read
by mvpa as smri's GM volumes are) and the tissue volumes the surfaces give
next to smri's probability-map volumes (``stat-volume_morph.tsv``). A hemisphere that cannot be reconstructed fails this stage only,
with a one-line reason: smri's volume outputs stay as written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurolearn_cli.dataset.plan import ParticipantPlan
from neurolearn_cli.errors import InputError, ProcessingError
from neurolearn_cli.messages import format_duration
from neurolearn_cli.stages import ParticipantContext
from neurolearn_cli.surfaces.template import HEMISPHERES

if TYPE_CHECKING:
    from neurolearn_cli.derivatives import DerivativesWriter
    from neurolearn_cli.surfaces.pipeline import SurfaceResult
    from neurolearn_cli.surfaces.register import SphereRegistration


SURFACES = ("white", "pial", "midthickness", "inflated", "sphere")
SHAPES = ("thickness", "curv", "sulc", "area")
T1W_WORLD = "T1w world (RAS mm)"
#: Where each surface's coordinates are, when not the T1w's world (RAS mm).
COORDINATES = {"inflated": "T1w world (RAS mm), inflated about the white surface's centroid",
               "sphere": "fsnative sphere (radius 100 mm, centred on the origin, the T1w's axes)"}
#: GIFTI GeometricType of each surface.
GEOMETRY = {"white": "Anatomical", "pial": "Anatomical", "midthickness": "Anatomical", "inflated": "Inflated",
            "sphere": "Spherical"}


def planned_entities(participant: ParticipantPlan) -> dict[str, dict[str, Any]]:
    """The entities of every file the stage writes, by role (``white_L``, ``thickness_R``, ``ribbon``)."""
    sub = {"subject": participant.label, "datatype": "anat"}
    entities: dict[str, dict[str, Any]] = {
        "ribbon": {**sub, "desc": "ribbon", "suffix": "mask", "extension": ".nii.gz"},
    }
    for hemisphere in HEMISPHERES:
        for surface in SURFACES:
            entities[f"{surface}_{hemisphere}"] = {**sub, "hemi": hemisphere, "suffix": surface,
                                                   "extension": ".surf.gii"}
        for shape in SHAPES:
            entities[f"{shape}_{hemisphere}"] = {**sub, "hemi": hemisphere, "suffix": shape,
                                                 "extension": ".shape.gii"}
        entities[f"regsphere_{hemisphere}"] = {**sub, "hemi": hemisphere, "desc": "reg", "suffix": "sphere",
                                               "extension": ".surf.gii"}
    return entities


def table_entities(participant: ParticipantPlan, atlas: str) -> dict[str, dict[str, Any]]:
    """The stage's tables, by role: per-parcel thickness of ``atlas`` (a ``seg-`` value) and the tissue volumes."""
    sub = {"subject": participant.label, "datatype": "anat", "suffix": "morph", "extension": ".tsv"}
    return {"thickness_morph": {**sub, "seg": atlas, "stat": "thickness"},
            "volume_morph": {**sub, "stat": "volume"}}


def planned_outputs(participant: ParticipantPlan, context: ParticipantContext) -> dict[str, Path]:
    """Every file the stage writes, by role."""
    from neurolearn_cli.smri.workflow import atlas_entity

    entities = {**planned_entities(participant), **table_entities(participant, atlas_entity(context.atlas.name))}
    return {role: context.writer.path(e) for role, e in entities.items()}


def outputs_current(participant: ParticipantPlan, context: ParticipantContext) -> bool:
    """Whether every surfaces output is recorded under ``context``'s fingerprint (True without a T1w)."""
    return not participant.t1w or context.writer.is_current(planned_outputs(participant, context).values())


def write_registration(writer: DerivativesWriter, path: Path, registration: SphereRegistration, hemisphere: str,
                       sources: list[str]) -> None:
    """The registered sphere and its sidecar: the template, the fit after the rotation alone and after the warp."""
    from neurolearn_cli.surfaces.gifti import surface_gifti

    writer.write_bytes(path, surface_gifti(registration.sphere, hemisphere, GEOMETRY["sphere"]))
    writer.write_sidecar(path, {
        "Sources": sources, "CoordinateSystem": f"{registration.template} sphere (radius 100 mm)",
        "SulcCorrelationRotationOnly": round(registration.rigid_correlation, 4),
        "SulcCorrelation": round(registration.correlation, 4), "FacesUnfoldedAfterWarp": registration.unfolded,
        "Warped": registration.warped, "FlippedFaces": registration.flipped})


def run_participant(participant: ParticipantPlan, context: ParticipantContext) -> None:
    """Cortical surfaces of one participant (the ``surfaces`` stage)."""
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.itkio import read_transform
    from neurolearn_cli.smri import workflow as smri
    from neurolearn_cli.surfaces.gifti import shape_gifti, surface_gifti
    from neurolearn_cli.surfaces.mesh import vertex_areas
    from neurolearn_cli.surfaces.pipeline import reconstruct_surfaces
    from neurolearn_cli.surfaces.reconstruct import SurfaceError
    from neurolearn_cli.surfaces.spherical import spherical_surfaces
    from neurolearn_cli.surfaces.template import fsaverage5

    if not participant.t1w:
        raise InputError(participant.subject, "no T1w image: the surfaces stage needs smri's outputs of one")
    device, writer, log = context.device, context.writer, context.log
    inputs = smri.planned_outputs(participant, context)
    tissues = {t: load_image(inputs[f"probseg_{t}"], device) for t in smri.TISSUES}
    try:
        started = time.perf_counter()
        result = reconstruct_surfaces(tissues, load_image(inputs["mask"], device),
                                      read_transform(inputs["xfm_from_template"]).to(device),
                                      load_image(inputs["preproc"], device))
        log.info("%s: surfaces: white and pial of both hemispheres in %s", participant.subject,
                 format_duration(time.perf_counter() - started))
        spherical = {}
        for hemisphere, surfaces in result.hemispheres.items():
            started = time.perf_counter()
            spherical[hemisphere] = spherical_surfaces(surfaces.white, hemisphere, surfaces.curvature,
                                                       fsaverage5(hemisphere), device)
            log.info("%s: surfaces hemi-%s: inflated, sphere and registration in %s", participant.subject,
                     hemisphere, format_duration(time.perf_counter() - started))
    except SurfaceError as error:
        raise ProcessingError(f"surfaces: {error}") from error
    entities = planned_entities(participant)
    sources = ["bids::" + writer.relative(inputs[role]) for role in ("preproc", "probseg_GM", "probseg_WM", "mask")]
    for hemisphere, surfaces in result.hemispheres.items():
        sphere = spherical[hemisphere]
        meshes = {"white": surfaces.white, "pial": surfaces.pial, "midthickness": surfaces.midthickness,
                  "inflated": sphere.inflated, "sphere": sphere.sphere}
        topology = {"white": (surfaces.euler_white, surfaces.intersections_white),
                    "pial": (surfaces.euler_pial, surfaces.intersections_pial)}
        for surface, mesh in meshes.items():
            path = writer.path(entities[f"{surface}_{hemisphere}"])
            writer.write_bytes(path, surface_gifti(mesh, hemisphere, GEOMETRY[surface]))
            metadata: dict[str, Any] = {"Sources": sources, "CoordinateSystem": COORDINATES.get(surface, T1W_WORLD)}
            if surface in topology:
                metadata["EulerCharacteristic"], metadata["SelfIntersectingFaces"] = topology[surface]
            if surface == "white":
                metadata["EulerCharacteristicBeforeCorrection"] = surfaces.euler_before
                metadata["VoxelsCutByTopologyCorrection"] = surfaces.voxels_cut
            if surface == "sphere":
                metadata["FlippedFacesAtProjection"] = sphere.flipped_at_projection
                metadata["FlippedFaces"] = sphere.flipped
            writer.write_sidecar(path, metadata)
        write_registration(writer, writer.path(entities[f"regsphere_{hemisphere}"]), sphere.registration,
                           hemisphere, sources)
        for shape, values in (("thickness", surfaces.thickness), ("curv", surfaces.curvature), ("sulc", sphere.sulc),
                              ("area", vertex_areas(surfaces.white))):
            writer.write_bytes(writer.path(entities[f"{shape}_{hemisphere}"]), shape_gifti(values, hemisphere))
        log.info("%s: surfaces hemi-%s: sphere registered to %s, sulc correlation %.2f after the rotation, "
                 "%.2f after the warp", participant.subject, hemisphere, sphere.registration.template,
                 sphere.registration.rigid_correlation, sphere.registration.correlation)
        if not sphere.registration.warped:
            log.warning("%s: surfaces hemi-%s: the warp to %s folded the sphere more than the rotation; the registered "
                        "sphere is the rotation alone", participant.subject, hemisphere, sphere.registration.template)
        log.info("%s: surfaces hemi-%s: %d vertices, mean thickness %.2f mm, Euler %d/%d, "
                 "self-intersecting faces %d/%d", participant.subject, hemisphere, len(surfaces.white.vertices),
                 float(surfaces.thickness.mean()), surfaces.euler_white, surfaces.euler_pial,
                 surfaces.intersections_white, surfaces.intersections_pial)
    writer.write_image(entities["ribbon"], result.ribbon, {"Type": "ribbon", "Sources": sources}, labels=True)
    _write_tables(participant, context, result, inputs)


def _write_tables(participant: ParticipantPlan, context: ParticipantContext, result: SurfaceResult,
                  inputs: dict[str, Path]) -> None:
    """The per-parcel thickness of the run's atlas and the tissue volumes, each with a sidecar saying how."""
    import pandas as pd

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.smri.workflow import atlas_entity
    from neurolearn_cli.surfaces.parcels import MAX_LABEL_DISTANCE_MM, parcel_thickness
    from neurolearn_cli.surfaces.volumes import VOLUME_COLUMNS

    writer, atlas = context.writer, context.atlas
    entities = table_entities(participant, atlas_entity(atlas.name))
    labels = load_image(inputs["atlas"], context.device)
    parcels = parcel_thickness(result.hemispheres, result.ribbons, labels.data.cpu().numpy().round().astype(int),
                               labels.affine.double().cpu().numpy(), atlas.table)
    thickness = pd.DataFrame([{"participant_id": participant.subject, **parcels}])
    surface_sources = ["bids::" + writer.relative(writer.path(e))
                       for role, e in planned_entities(participant).items() if role.startswith(("white_", "pial_"))]
    writer.write_tsv(entities["thickness_morph"], thickness, {
        "Atlas": atlas.name, "AtlasSpace": atlas.space, "Note": atlas.note, "Units": "mm",
        "Description": "Mean cortical thickness of each parcel over both hemispheres: each midthickness vertex "
                       "takes the parcel of the nearest voxel of the cortical ribbon that the atlas labels (on "
                       f"the T1w grid; none farther than {MAX_LABEL_DISTANCE_MM:g} mm); n/a where no vertex "
                       "falls in the parcel (e.g. deep grey matter)",
        "Sources": ["bids::" + writer.relative(inputs["atlas"]), *surface_sources]})
    smri_volumes = pd.read_csv(inputs["morph"], sep="\t", na_values="n/a").iloc[0]
    volumes = {"participant_id": participant.subject, "GM_probseg": float(smri_volumes["GM"]),
               "WM_probseg": float(smri_volumes["WM"]), **result.volumes}
    writer.write_tsv(entities["volume_morph"], pd.DataFrame([volumes]), {
        "Units": "mL",
        "Columns": {"GM_probseg": "smri's GM volume: the sum of its GM probability map (as in its "
                                  "stat-gmvolume table)",
                    "WM_probseg": "smri's WM volume: the sum of its WM probability map", **VOLUME_COLUMNS},
        "Sources": ["bids::" + writer.relative(inputs[role]) for role in ("morph", "probseg_GM", "probseg_WM",
                                                                          "probseg_CSF", "mask")]
                   + surface_sources})

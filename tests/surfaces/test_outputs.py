"""Surface outputs: fMRIPrep's names, GIFTI in world coordinates that nilearn reads, sidecars beside them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from nilearn.surface import load_surf_data, load_surf_mesh

from neurolearn_cli.dataset.plan import ParticipantPlan
from neurolearn_cli.derivatives import DerivativesWriter, build_relpath
from neurolearn_cli.surfaces.gifti import shape_gifti, surface_gifti
from neurolearn_cli.surfaces.mesh import Mesh
from neurolearn_cli.surfaces.workflow import planned_entities


def _participant() -> ParticipantPlan:
    return ParticipantPlan(label="01", sessions=(), t1w=(), bold=())


def test_names_follow_fmriprep() -> None:
    names = {role: build_relpath(e) for role, e in planned_entities(_participant()).items()}
    assert names["white_L"] == "sub-01/anat/sub-01_hemi-L_white.surf.gii"
    assert names["pial_R"] == "sub-01/anat/sub-01_hemi-R_pial.surf.gii"
    assert names["midthickness_L"] == "sub-01/anat/sub-01_hemi-L_midthickness.surf.gii"
    assert names["thickness_R"] == "sub-01/anat/sub-01_hemi-R_thickness.shape.gii"
    assert names["curv_L"] == "sub-01/anat/sub-01_hemi-L_curv.shape.gii"
    assert names["area_R"] == "sub-01/anat/sub-01_hemi-R_area.shape.gii"
    assert names["ribbon"] == "sub-01/anat/sub-01_desc-ribbon_mask.nii.gz"


def test_gifti_round_trip_through_the_writer(tmp_path: Path) -> None:
    """World coordinates and triangles come back from nilearn as written; the sidecar drops .surf.gii."""
    vertices = np.array([[10.5, -20.25, 30.0], [11.5, -20.25, 30.0], [10.5, -19.25, 30.0], [10.5, -20.25, 31.0]])
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    writer = DerivativesWriter(tmp_path, "sub-01", "fp")
    entities = planned_entities(_participant())
    surface = writer.write_bytes(writer.path(entities["white_L"]), surface_gifti(Mesh(vertices, faces), "L",
                                                                                  "Anatomical"))
    writer.write_sidecar(surface, {"EulerCharacteristic": 2})
    shape = writer.write_bytes(writer.path(entities["thickness_L"]), shape_gifti(np.array([1.0, 2, 3, 4]), "L"))
    mesh = load_surf_mesh(str(surface))
    np.testing.assert_allclose(mesh.coordinates, vertices, atol=1e-5)
    np.testing.assert_array_equal(mesh.faces, faces)
    np.testing.assert_allclose(load_surf_data(str(shape)), [1, 2, 3, 4])
    assert json.loads((surface.parent / "sub-01_hemi-L_white.json").read_text()) == {"EulerCharacteristic": 2}
    assert writer.is_current([surface, shape])


def test_spherical_outputs_follow_fmriprep_and_nilearn_reads_them(tmp_path: Path) -> None:
    """Inflated, sphere, registered sphere and sulc: fMRIPrep's names, GIFTI geometric types, sidecars."""
    import nibabel as nib

    from neurolearn_cli.surfaces.register import SphereRegistration
    from neurolearn_cli.surfaces.workflow import GEOMETRY, write_registration

    names = {role: build_relpath(e) for role, e in planned_entities(_participant()).items()}
    assert names["inflated_L"] == "sub-01/anat/sub-01_hemi-L_inflated.surf.gii"
    assert names["sphere_R"] == "sub-01/anat/sub-01_hemi-R_sphere.surf.gii"
    assert names["regsphere_L"] == "sub-01/anat/sub-01_hemi-L_desc-reg_sphere.surf.gii"
    assert names["sulc_R"] == "sub-01/anat/sub-01_hemi-R_sulc.shape.gii"
    vertices = 100.0 * np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]]) / np.array([1, 1, 1, 3**0.5])[:, None]
    faces = np.array([[0, 1, 2], [0, 3, 1], [1, 3, 2], [0, 2, 3]])
    writer = DerivativesWriter(tmp_path, "sub-01", "fp")
    entities = planned_entities(_participant())
    registration = SphereRegistration(template="fsaverage5", sphere=Mesh(vertices, faces), rotation=np.eye(3),
                                      rigid_correlation=0.51234, correlation=0.74321, unfolded=0,
                                      warped=True, flipped=0)
    path = writer.path(entities["regsphere_L"])
    write_registration(writer, path, registration, "L", ["bids::x"])
    sphere = writer.write_bytes(writer.path(entities["sphere_L"]),
                                surface_gifti(Mesh(vertices, faces), "L", GEOMETRY["sphere"]))
    inflated = writer.write_bytes(writer.path(entities["inflated_L"]),
                                  surface_gifti(Mesh(vertices, faces), "L", GEOMETRY["inflated"]))
    for surface, kind in ((path, "Spherical"), (sphere, "Spherical"), (inflated, "Inflated")):
        np.testing.assert_allclose(load_surf_mesh(str(surface)).coordinates, vertices, atol=1e-4)
        assert nib.load(surface).darrays[0].meta["GeometricType"] == kind
    sidecar = json.loads((path.parent / "sub-01_hemi-L_desc-reg_sphere.json").read_text())
    assert sidecar["SulcCorrelationRotationOnly"] == 0.5123 and sidecar["SulcCorrelation"] == 0.7432
    assert sidecar["CoordinateSystem"] == "fsaverage5 sphere (radius 100 mm)"
    assert writer.is_current([path, sphere, inflated])

"""GIFTI through nibabel: meshes and per-vertex values encoded (bytes for the derivatives writer) and read back."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from neurolearn_cli.surfaces.mesh import Mesh

#: GIFTI's AnatomicalStructurePrimary per hemisphere.
STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}


def _meta(pairs: dict[str, str]) -> nib.gifti.GiftiMetaData:
    return nib.gifti.GiftiMetaData(pairs)


def surface_gifti(mesh: Mesh, hemisphere: str, geometric_type: str) -> bytes:
    """A ``.surf.gii``: float32 world (scanner RAS) vertices and int32 triangles, as Workbench and nilearn read."""
    points = nib.gifti.GiftiDataArray(
        mesh.vertices.astype(np.float32), intent="NIFTI_INTENT_POINTSET", datatype="NIFTI_TYPE_FLOAT32",
        coordsys=nib.gifti.GiftiCoordSystem(dataspace=3, xformspace=3),
        meta=_meta({"AnatomicalStructurePrimary": STRUCTURES[hemisphere],
                    "GeometricType": geometric_type}))
    triangles = nib.gifti.GiftiDataArray(mesh.faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                         datatype="NIFTI_TYPE_INT32")
    image = nib.gifti.GiftiImage(darrays=[points, triangles],
                                 meta=_meta({"AnatomicalStructurePrimary": STRUCTURES[hemisphere]}))
    return bytes(image.to_xml())


def shape_gifti(values: np.ndarray, hemisphere: str) -> bytes:
    """A ``.shape.gii``: one float32 value per vertex."""
    array = nib.gifti.GiftiDataArray(values.astype(np.float32), intent="NIFTI_INTENT_SHAPE",
                                     datatype="NIFTI_TYPE_FLOAT32")
    image = nib.gifti.GiftiImage(darrays=[array], meta=_meta({"AnatomicalStructurePrimary": STRUCTURES[hemisphere]}))
    return bytes(image.to_xml())


def read_surface(path: Path) -> Mesh:
    """The mesh of a ``.surf.gii`` (its POINTSET and TRIANGLE arrays)."""
    image = nib.gifti.GiftiImage.from_filename(str(path))
    points = image.agg_data("NIFTI_INTENT_POINTSET")
    triangles = image.agg_data("NIFTI_INTENT_TRIANGLE")
    return Mesh(np.asarray(points, dtype=np.float64), np.asarray(triangles, dtype=np.int64))


def read_shape(path: Path) -> np.ndarray:
    """The per-vertex values of a ``.shape.gii``."""
    return np.asarray(nib.gifti.GiftiImage.from_filename(str(path)).agg_data(), dtype=np.float64)

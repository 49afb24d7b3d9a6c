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


def read_shape(path: Path) -> np.ndarray:
    """The per-vertex values of a ``.shape.gii``."""
    return np.asarray(nib.gifti.GiftiImage.from_filename(str(path)).agg_data(), dtype=np.float64)


def timeseries_gifti(series: np.ndarray, hemisphere: str, repetition_time: float) -> bytes:
    """A ``.func.gii``: one float32 data array per volume of the (V, T) ``series``, as fMRIPrep writes and nilearn
    stacks back to (V, T); NaN marks a missing vertex. Each array's ``TimeStep`` (ms) is Workbench's."""
    step = _meta({"TimeStep": f"{repetition_time * 1000.0:g}"})
    arrays = [nib.gifti.GiftiDataArray(np.ascontiguousarray(series[:, t], dtype=np.float32),
                                       intent="NIFTI_INTENT_TIME_SERIES", datatype="NIFTI_TYPE_FLOAT32", meta=step)
              for t in range(series.shape[1])]
    image = nib.gifti.GiftiImage(darrays=arrays, meta=_meta({"AnatomicalStructurePrimary": STRUCTURES[hemisphere]}))
    return bytes(image.to_xml())


def read_mesh(path: Path) -> Mesh:
    """A ``.surf.gii`` (or ``.gii.gz``) as a :class:`Mesh`: its point set and its triangles.

    Raises
    ------
    ValueError
        One line naming the file when it holds no point set or no triangles.
    """
    image = nib.load(str(path))
    if not isinstance(image, nib.gifti.GiftiImage):
        raise ValueError(f"{path}: not a GIFTI file")
    points = [a.data for a in image.darrays if a.intent == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]]
    triangles = [a.data for a in image.darrays if a.intent == nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"]]
    if not points or not triangles:
        raise ValueError(f"{path}: not a surface GIFTI (no point set and triangles)")
    return Mesh(np.asarray(points[0], dtype=np.float64), np.asarray(triangles[0], dtype=np.int64))

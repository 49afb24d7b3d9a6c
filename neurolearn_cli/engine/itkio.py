"""Read and write transforms in the file formats of ITK / ANTs (and nitransforms, fMRIPrep).

RAS vs LPS, once: our world coordinates are RAS mm (NIfTI); ITK's are LPS mm,
the same space with the x and y axes negated. With ``F = diag(-1, -1, 1, 1)``
a world-to-world affine converts as ``M_lps = F @ M_ras @ F`` (``F`` is its
own inverse), a displacement vector by negating its x and y components, and a
grid's voxel-to-world matrix as ``A_lps = F @ A_ras``.

Formats (chosen by the file's extension):

* ``.txt`` / ``.tfm``: ITK text (``#Insight Transform File V1.0``). One affine
  (``AffineTransform_double_3_3`` or ``MatrixOffsetTransformBase_*``: 9 matrix
  entries row by row + 3 translations, fixed parameters = centre); several
  affines without a composite header are one per volume (fMRIPrep's head-motion
  file), read as a batched :class:`AffineTransform`.
* ``.mat``: ITK's MATLAB v4 binary, as ANTs writes ``0GenericAffine.mat``
  (``AffineTransform_double_3_3`` 12x1 and ``fixed`` 3x1).
* ``.nii`` / ``.nii.gz``: ITK displacement field, shape (X, Y, Z, 1, 3), intent
  vector (1007), LPS displacement components, RAS affine.
* ``.h5``: ITK HDF5 composite as fMRIPrep writes (``TransformGroup/0`` the
  CompositeTransform, ``TransformGroup/1..`` its parts).

Order: ITK's composite stores its parts in queue order and applies the LAST one
to a point first, so a file's list ``[T1, ..., Tn]`` is our
``Chain([Tn, ..., T1])`` (ANTs command-line order).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import scipy.io
import torch

from neurolearn_cli.atomic import write_bytes, write_nifti, write_text
from neurolearn_cli.engine.image import Grid
from neurolearn_cli.engine.transforms import (
    AffineTransform,
    Chain,
    DisplacementField,
    Transform,
    VelocityField,
)
from neurolearn_cli.errors import InputError

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
_AFFINE_TYPES = ("AffineTransform_", "MatrixOffsetTransformBase_")
_FIELD_TYPE = "DisplacementFieldTransform_"
_READ_ERRORS = (
    OSError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    EOFError,
    scipy.io.matlab.MatReadError,
)


def _kind(path: Path) -> str:
    name = path.name.lower()
    for suffix, kind in (
        (".nii.gz", "field"),
        (".nii", "field"),
        (".txt", "text"),
        (".tfm", "text"),
        (".mat", "mat"),
        (".h5", "h5"),
    ):
        if name.endswith(suffix):
            return kind
    raise InputError(
        path, "unknown transform file type (expected .txt, .tfm, .mat, .h5, .nii or .nii.gz)"
    )


def _affine_from_itk(parameters: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """RAS 4x4 from ITK's 12 parameters (LPS matrix row-major + translation) and centre."""
    if parameters.size != 12 or fixed.size != 3:
        raise ValueError(
            f"expected 12 parameters and 3 fixed parameters, got {parameters.size} and {fixed.size}"
        )
    linear = parameters[:9].reshape(3, 3)
    centre = fixed.reshape(3)
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = parameters[9:] + centre - linear @ centre
    return _FLIP @ lps @ _FLIP


def _affine_to_itk(matrix_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ITK's 12 parameters and 3 fixed parameters (centre 0) of a RAS 4x4."""
    lps = _FLIP @ matrix_ras @ _FLIP
    return np.concatenate([lps[:3, :3].ravel(), lps[:3, 3]]), np.zeros(3)


def _grid_from_itk(fixed: np.ndarray) -> Grid:
    """Grid from a DisplacementFieldTransform's fixed parameters (size, origin, spacing, direction; LPS)."""
    size, origin, spacing, direction = fixed[:3], fixed[3:6], fixed[6:9], fixed[9:18].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = origin
    nx, ny, nz = (int(round(n)) for n in size)
    return Grid((nx, ny, nz), torch.from_numpy(_FLIP @ lps))


def _grid_to_itk(grid: Grid) -> np.ndarray:
    lps = _FLIP @ grid.affine.cpu().numpy()
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return np.concatenate(
        [np.asarray(grid.shape, dtype=float), lps[:3, 3], spacing, (lps[:3, :3] / spacing).ravel()]
    )


# ITK text -----------------------------------------------------------------------------------


def _read_text(path: Path) -> Transform:
    text = path.read_text(encoding="ascii")
    if not text.lstrip().startswith("#Insight Transform File"):
        raise ValueError("not an ITK transform file (missing '#Insight Transform File' header)")
    blocks = re.split(r"^#Transform \d+\s*$", text, flags=re.MULTILINE)[1:]
    parsed = []
    for block in blocks:
        fields = dict(re.findall(r"^(\w+): *(.*)$", block, flags=re.MULTILINE))
        parsed.append(
            (
                fields["Transform"].strip(),
                fields.get("Parameters", ""),
                fields.get("FixedParameters", ""),
            )
        )
    if not parsed:
        raise ValueError("no transform in the file")
    composite = parsed[0][0].startswith("CompositeTransform")
    parts = parsed[1:] if composite else parsed
    matrices = []
    for kind, params, fixed in parts:
        if not kind.startswith(_AFFINE_TYPES):
            raise ValueError(f"unsupported transform type {kind}")
        matrices.append(
            _affine_from_itk(
                np.array(params.split(), dtype=float), np.array(fixed.split(), dtype=float)
            )
        )
    if composite:
        return Chain([AffineTransform(torch.from_numpy(m)) for m in reversed(matrices)])
    stacked = torch.from_numpy(np.stack(matrices))
    return AffineTransform(stacked[0] if len(matrices) == 1 else stacked)


def _format(values: np.ndarray) -> str:
    return " ".join(repr(float(v)) for v in values)


def _text_block(index: int, matrix_ras: np.ndarray) -> str:
    params, fixed = _affine_to_itk(matrix_ras)
    return (
        f"#Transform {index}\nTransform: AffineTransform_double_3_3\n"
        f"Parameters: {_format(params)}\nFixedParameters: {_format(fixed)}\n"
    )


def _write_text(transform: Transform, path: Path) -> Path:
    if not isinstance(transform, AffineTransform):
        raise ValueError(f"{path}: ITK text files hold affine transforms only (use .h5 for chains and warps)")
    matrices = transform.matrix.cpu().numpy().reshape(-1, 4, 4)
    body = "".join(_text_block(i, m) for i, m in enumerate(matrices))
    return write_text(path, "#Insight Transform File V1.0\n" + body)


# ITK MATLAB ---------------------------------------------------------------------------------


def _read_mat(path: Path) -> Transform:
    content = scipy.io.loadmat(str(path))
    keys = [k for k in content if k.startswith(_AFFINE_TYPES)]
    if len(keys) != 1 or "fixed" not in content:
        raise ValueError("expected one AffineTransform_* variable and 'fixed' in the MATLAB file")
    matrix = _affine_from_itk(
        np.asarray(content[keys[0]], dtype=float).ravel(),
        np.asarray(content["fixed"], float).ravel(),
    )
    return AffineTransform(torch.from_numpy(matrix))


def _write_mat(transform: Transform, path: Path) -> Path:
    if not isinstance(transform, AffineTransform) or transform.n_volumes is not None:
        raise ValueError(f"{path}: a .mat file holds one affine transform")
    params, fixed = _affine_to_itk(transform.matrix.cpu().numpy())
    buffer = io.BytesIO()
    scipy.io.savemat(
        buffer, {"AffineTransform_double_3_3": params[:, None], "fixed": fixed[:, None]}, format="4"
    )
    return write_bytes(path, buffer.getvalue())


# ITK displacement-field NIfTI ---------------------------------------------------------------


def _read_field(path: Path) -> Transform:
    img = nib.load(str(path))
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise ValueError(f"expected an ITK displacement field image, got {type(img).__name__}")
    if len(img.shape) != 5 or img.shape[3] != 1 or img.shape[4] != 3:
        raise ValueError(
            f"expected an ITK displacement field of shape (X, Y, Z, 1, 3), got {img.shape}"
        )
    data = np.asarray(img.get_fdata(dtype=np.float32))[:, :, :, 0, :] * np.array(
        [-1.0, -1.0, 1.0], np.float32
    )
    nx, ny, nz = data.shape[:3]
    grid = Grid((nx, ny, nz), torch.from_numpy(np.asarray(img.affine, dtype=np.float64)))
    return DisplacementField(torch.from_numpy(np.ascontiguousarray(data)), grid)


def _as_field(transform: Transform, path: Path) -> DisplacementField:
    if isinstance(transform, VelocityField):
        return transform.exp()
    if isinstance(transform, DisplacementField):
        return transform
    raise ValueError(f"{path}: cannot store a {type(transform).__name__} as a displacement field")


def _write_field(transform: Transform, path: Path) -> Path:
    field = _as_field(transform, path)
    lps = field.displacement.cpu().numpy() * np.array([-1.0, -1.0, 1.0], np.float32)
    img = nib.Nifti1Image(lps[:, :, :, None, :].astype(np.float32), field.grid.affine.cpu().numpy())
    img.header.set_intent("vector")
    img.header.set_xyzt_units("mm")
    img.set_qform(field.grid.affine.cpu().numpy(), code=1)
    img.set_sform(field.grid.affine.cpu().numpy(), code=1)
    return write_nifti(path, img)


# ITK HDF5 composite -------------------------------------------------------------------------


def _h5_part(group: h5py.Group) -> Transform:
    kind = group["TransformType"][0]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    prefix = "Transform" if "TransformParameters" in group else "Tranform"  # an old ITK typo
    params = np.asarray(group[f"{prefix}Parameters"], dtype=float).ravel()
    fixed = np.asarray(group[f"{prefix}FixedParameters"], dtype=float).ravel()
    if kind.startswith(_AFFINE_TYPES):
        return AffineTransform(torch.from_numpy(_affine_from_itk(params, fixed)))
    if kind.startswith(_FIELD_TYPE):
        grid = _grid_from_itk(fixed)
        field = params.reshape(*reversed(grid.shape), 3).transpose(2, 1, 0, 3) * np.array(
            [-1.0, -1.0, 1.0]
        )
        return DisplacementField(
            torch.from_numpy(np.ascontiguousarray(field, dtype=np.float32)), grid
        )
    raise ValueError(f"unsupported transform type {kind}")


def _read_h5(path: Path) -> Transform:
    with h5py.File(str(path), "r") as handle:
        groups = handle["TransformGroup"]
        keys = sorted(groups, key=int)
        first = groups[keys[0]]["TransformType"][0]
        first = first.decode() if isinstance(first, bytes) else str(first)
        if not first.startswith("CompositeTransform"):
            return _h5_part(groups[keys[0]])
        parts = [_h5_part(groups[k]) for k in keys[1:]]
    if not parts:
        raise ValueError("empty composite transform")
    return Chain(list(reversed(parts)))


def _h5_entry(group: h5py.Group, kind: str, params: np.ndarray, fixed: np.ndarray) -> None:
    text = h5py.string_dtype(encoding="ascii")
    group.create_dataset("TransformType", data=np.array([kind], dtype=object), dtype=text)
    group.create_dataset("TransformParameters", data=params.astype(np.float64))
    group.create_dataset("TransformFixedParameters", data=fixed.astype(np.float64))


def _write_h5(transform: Transform, path: Path) -> Path:
    parts = transform.transforms if isinstance(transform, Chain) else [transform]
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        groups = handle.create_group("TransformGroup")
        composite = groups.create_group("0")
        composite.create_dataset(
            "TransformType",
            data=np.array(["CompositeTransform_double_3_3"], dtype=object),
            dtype=h5py.string_dtype(encoding="ascii"),
        )
        for index, part in enumerate(reversed(parts), start=1):
            group = groups.create_group(str(index))
            if isinstance(part, AffineTransform) and part.n_volumes is None:
                params, fixed = _affine_to_itk(part.matrix.cpu().numpy())
                _h5_entry(group, "AffineTransform_double_3_3", params, fixed)
                continue
            field = _as_field(part, path)
            lps = field.displacement.cpu().numpy().astype(np.float64) * np.array([-1.0, -1.0, 1.0])
            params = lps.transpose(2, 1, 0, 3).ravel()
            _h5_entry(
                group, "DisplacementFieldTransform_double_3_3", params, _grid_to_itk(field.grid)
            )
    return write_bytes(path, buffer.getvalue())


# Public API ---------------------------------------------------------------------------------

_READERS = {"text": _read_text, "mat": _read_mat, "field": _read_field, "h5": _read_h5}
_WRITERS = {"text": _write_text, "mat": _write_mat, "field": _write_field, "h5": _write_h5}


def read_transform(path: str | Path) -> Transform:
    """Read an ITK/ANTs transform file (format from the extension) as a :class:`Transform` on the CPU.

    Raises
    ------
    InputError
        For missing or unreadable files, unsupported transform types, and
        singular or non-finite affines, naming the file.
    """
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise InputError(path, "transform file not found")
    try:
        return _READERS[kind](path)
    except InputError as error:
        raise InputError(path, error.problem) from error
    except (*_READ_ERRORS, nib.filebasedimages.ImageFileError) as error:
        raise InputError(
            path, f"cannot read transform ({type(error).__name__}: {error})"
        ) from error


def write_transform(transform: Transform, path: str | Path) -> Path:
    """Write ``transform`` atomically in the ITK format its extension names; returns the path.

    ``.txt``/``.tfm`` take affines (batched ones as one transform per volume),
    ``.mat`` one affine, ``.nii``/``.nii.gz`` one displacement (or velocity,
    written as its exponential) field, ``.h5`` any chain of unbatched affines
    and fields.
    """
    path = Path(path)
    return _WRITERS[_kind(path)](transform, path)

"""Checks that a directory is a usable BIDS dataset and that its images are sane.

Dataset-level problems (no ``dataset_description.json``, invalid file names)
stop the run before any work; image-level problems are returned as one-line
strings naming the file, so only that participant is skipped.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from neurolearn_cli.errors import InputError


def check_dataset_description(bids_dir: Path) -> dict:
    """Return the parsed ``dataset_description.json``; raise :class:`InputError` when unusable."""
    if not bids_dir.exists():
        raise InputError(bids_dir, "BIDS directory does not exist")
    if not bids_dir.is_dir():
        raise InputError(bids_dir, "not a directory")
    description = bids_dir / "dataset_description.json"
    if not description.is_file():
        raise InputError(description, "missing: not a BIDS dataset")
    try:
        content = json.loads(description.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(description, f"not valid JSON ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(content, dict):
        raise InputError(description, "must hold a JSON object")
    for key in ("Name", "BIDSVersion"):
        if not content.get(key):
            raise InputError(description, f"required field {key} is missing")
    return content


#: Lesion masks as BIDS 1.1 and fMRIPrep name them; the validator's rules no longer list the ``roi`` suffix.
LESION_MASK = re.compile(
    r"/sub-(?P<sub>[a-zA-Z0-9]+)/(?:ses-(?P<ses>[a-zA-Z0-9]+)/)?anat/sub-(?P=sub)(?:_ses-(?P=ses))?"
    r"(?:_acq-[a-zA-Z0-9]+)?(?:_rec-[a-zA-Z0-9]+)?(?:_run-[0-9]+)?_label-lesion_roi\.(?:nii\.gz|nii|json)"
)


def invalid_file_names(bids_dir: Path) -> list[str]:
    """List files under ``sub-*`` whose names do not parse as BIDS (dataset-relative paths).

    Lesion masks (:data:`LESION_MASK`) are valid, as fMRIPrep reads them.
    """
    from bids_validator import BIDSValidator

    validator = BIDSValidator()
    invalid = []
    for path in sorted(bids_dir.glob("sub-*/**/*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        relative = "/" + path.relative_to(bids_dir).as_posix()
        if not validator.is_bids(relative) and not LESION_MASK.fullmatch(relative):
            invalid.append(relative.lstrip("/"))
    return invalid


def json_problem(path: Path) -> str | None:
    """One line saying why a JSON sidecar cannot be read (or is not an object), or None when it can."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{path}: not valid JSON ({exc})"
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})"
    return None if isinstance(content, dict) else f"{path}: must hold a JSON object"


def broken_sidecars(bids_dir: Path) -> dict[Path, str]:
    """The JSON files of the raw dataset (``sub-*`` and top-level files) that cannot be read, with why.

    Checked before indexing: pybids stops the whole dataset at the first
    unreadable JSON, where only the participant owning it should be skipped.
    """
    candidates = [*bids_dir.glob("*.json"), *bids_dir.glob("sub-*/**/*.json")]
    found = {}
    for path in sorted(candidates):
        if path.name.startswith(".") or not path.is_file():
            continue
        problem = json_problem(path)
        if problem:
            found[path] = problem
    return found


def _decompressed_size(path: Path) -> int | None:
    """Bytes a gzip file decompresses to, or None when the stream is truncated or corrupt."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            try:
                size += len(decompressor.decompress(chunk))
            except zlib.error:
                return None
            if decompressor.eof:
                return size
    return size if decompressor.eof else None


def _has_finite_voxels(image: nib.Nifti1Image) -> bool:
    """Whether a floating-point image holds at least one finite value (read slab by slab)."""
    proxy = image.dataobj
    return any(np.isfinite(np.asarray(proxy[..., index])).any() for index in range(image.shape[-1]))


def _has_geometry(path: Path, image: nib.Nifti1Image) -> bool:
    """Whether the header gives voxel geometry: an sform or qform, or positive voxel sizes.

    Read from the raw header, since nibabel silently replaces zero voxel sizes with 1 when it loads one.
    """
    header = image.header
    if int(header["sform_code"]) > 0 or int(header["qform_code"]) > 0:
        return True
    with nib.openers.ImageOpener(str(path)) as handle:
        raw = type(header).from_fileobj(handle, check=False)
    sizes = np.asarray(raw["pixdim"][1:4], dtype=float)
    return bool(np.all(np.isfinite(sizes)) and np.all(sizes > 0))


def nifti_problem(path: Path, *, ndim: int, full_check: bool = True) -> str | None:
    """Return a one-line problem with a NIfTI file, or None when it looks usable.

    Parameters
    ----------
    path : Path
        The image.
    ndim : int
        Dimensions expected: 3 (anatomical; a trailing axis of length 1 is
        accepted) or 4 (BOLD).
    full_check : bool
        Also check that a gzip stream is complete and that the data size matches
        the header (costs one decompression pass).
    """
    name = str(path)
    try:
        if path.stat().st_size == 0:
            return f"{name}: empty file (0 bytes)"
        with path.open("rb") as handle:  # nibabel reports an unreadable file as an unknown type
            handle.read(1)
        image = nib.load(str(path))
    except PermissionError:
        return f"{name}: not readable (permission denied)"
    except (OSError, EOFError, gzip.BadGzipFile, nib.filebasedimages.ImageFileError, ValueError) as exc:
        return f"{name}: cannot read NIfTI header ({exc.__class__.__name__})"
    if not isinstance(image, nib.Nifti1Image):  # NIfTI-2 images are Nifti1Image subclasses
        return f"{name}: not a NIfTI image ({type(image).__name__})"
    dtype = image.get_data_dtype()
    if dtype.kind not in "iuf":
        return f"{name}: unsupported data type {dtype}; expected integer or floating-point voxels"
    shape = tuple(int(n) for n in image.shape)
    squeezed = shape[:3] + tuple(n for n in shape[3:] if n != 1) if len(shape) > 3 else shape
    if len(shape) < 3 or min(shape[:3]) < 2:
        return f"{name}: {len(shape)}D image of shape {shape}; expected a {ndim}D volume"
    if ndim == 3 and len(squeezed) != 3:
        return f"{name}: {len(shape)}D image of shape {shape}; expected a 3D volume"
    if ndim == 4 and (len(shape) != 4 or shape[3] < 2):
        return f"{name}: {len(shape)}D image of shape {shape}; expected a 4D time series of at least 2 volumes"
    if not _has_geometry(path, image):
        return (f"{name}: voxel sizes in the header are zero or negative and it has no sform or qform: "
                "the voxel geometry is unknown")
    if full_check:
        try:
            size = _decompressed_size(path) if name.endswith(".gz") else path.stat().st_size
        except PermissionError:
            return f"{name}: not readable (permission denied)"
        except OSError as exc:
            return f"{name}: cannot read ({exc.__class__.__name__})"
        if size is None:
            return f"{name}: truncated or corrupt gzip stream"
        # nibabel types ``dataobj`` as any array-like; an image read from a file holds an ArrayProxy
        proxy = image.dataobj
        expected = int(proxy.offset) + proxy.dtype.itemsize * math.prod(shape)  # type: ignore[attr-defined]
        if size < expected:
            return f"{name}: truncated data ({size} of {expected} bytes)"
        if image.get_data_dtype().kind == "f" and not _has_finite_voxels(image):
            return f"{name}: no finite voxel values (NaN or infinite everywhere)"
    return None


#: BIDS SliceEncodingDirection values; the letter names the voxel axis.
SLICE_ENCODING_DIRECTIONS = ("i", "j", "k", "i-", "j-", "k-")


def slice_encoding_error(direction: str) -> str | None:
    """Why a SliceEncodingDirection is not valid BIDS, or None."""
    if direction in SLICE_ENCODING_DIRECTIONS:
        return None
    return f"SliceEncodingDirection {direction!r} is not one of {', '.join(SLICE_ENCODING_DIRECTIONS)}"


def slice_timing_error(slice_times: object, n_slices: int, repetition_time: float) -> str | None:
    """Why SliceTiming does not fit ``n_slices`` slices and the TR, or None.

    One finite time per slice, each in ``[0, RepetitionTime)`` seconds. The
    planner and the fmri stage share this check.
    """
    try:
        times = [float(t) for t in slice_times]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return "SliceTiming must be a list of numbers (seconds)"
    if len(times) != n_slices:
        return f"SliceTiming has {len(times)} values but the image has {n_slices} slices"
    if not all(math.isfinite(t) and 0 <= t < repetition_time for t in times):
        return f"SliceTiming values must lie in [0, RepetitionTime={repetition_time}) s"
    return None


def slice_timing_problem(path: Path, metadata: dict, shape: tuple[int, ...]) -> str | None:
    """Return a one-line problem with a BOLD sidecar's SliceTiming, or None when absent or usable.

    Checked at planning, so a bad sidecar is reported before any work starts.
    """
    times = metadata.get("SliceTiming")
    repetition_time = metadata.get("RepetitionTime")
    if times is None or not isinstance(repetition_time, (int, float)):
        return None
    direction = str(metadata.get("SliceEncodingDirection", "k"))
    error = slice_encoding_error(direction) or slice_timing_error(times, shape["ijk".index(direction[0])],
                                                                  repetition_time)
    return f"{path}: {error}" if error else None

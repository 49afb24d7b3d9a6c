"""The derivatives writer: BIDS-Derivatives names, sidecars, atomic writes, provenance.

Output paths are built from BIDS entities with pybids' ``build_path`` and the
patterns below (fMRIPrep/XCP-D names), never by concatenating strings. Every
file goes through :mod:`neurolearn_cli.atomic`. Each participant has a
manifest under ``logs/manifest/`` recording, for every output, its SHA-256 and
the fingerprint of the inputs, settings and version that produced it: this is
what ``--resume`` checks, and what ``neurolearn verify`` compares.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from neurolearn_cli import __version__, atomic
from neurolearn_cli.errors import InputError

PATH_PATTERNS = [
    "sub-{subject}[/ses-{session}]/{datatype<anat|func|fmap|figures>|anat}/sub-{subject}[_ses-{session}]"
    "[_task-{task}][_acq-{acquisition}][_ce-{ceagent}][_rec-{reconstruction}][_dir-{direction}][_run-{run}]"
    "[_echo-{echo}][_hemi-{hemi}][_from-{from}][_to-{to}][_mode-{mode}][_space-{space}][_cohort-{cohort}][_res-{res}][_den-{den}][_label-{label}]"
    "[_seg-{seg}][_stat-{stat}][_desc-{desc}]_{suffix}{extension}",
    "sub-{subject}{extension<.html>}",  # the participant report
    "group_{suffix}{extension<.tsv|.html>}",  # group tables and reports (no subject)
    "logs/CITATION{extension<.md>}",  # the methods text (no subject, no suffix)
]
#: Extensions of two parts, cut whole when naming a sidecar.
DOUBLE_EXTENSIONS = (".nii.gz", ".surf.gii", ".shape.gii", ".func.gii")


def sidecar_of(data_path: Path) -> Path:
    """The JSON sidecar of a data file: its name less the extension (``.surf.gii`` and the like counted whole)."""
    name = data_path.name
    double = next((ext for ext in DOUBLE_EXTENSIONS if name.endswith(ext)), None)
    stem = name[: -len(double)] if double else data_path.stem
    return data_path.with_name(stem + ".json")


def read_sidecar(data_path: Path) -> dict[str, Any]:
    """The metadata in the JSON sidecar of a data file (:func:`sidecar_of`)."""
    metadata: dict[str, Any] = json.loads(sidecar_of(data_path).read_text(encoding="utf-8"))
    return metadata


RAW_ENTITIES = ("subject", "session", "task", "acquisition", "ceagent", "reconstruction", "direction", "run", "echo")


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of bytes held in memory (a file about to be written, a member of an archive)."""
    return hashlib.sha256(data).hexdigest()


def fingerprint(inputs: Iterable[Path], settings: Mapping[str, Any],
                hashes: Mapping[Path, str] | None = None) -> str:
    """Digest of input bytes, settings and neurolearn's version: equal digests mean equal outputs.

    ``hashes`` may hold the inputs' SHA-256 already computed (several stages
    fingerprint the same files); missing ones are computed.
    """
    known = hashes or {}
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(Path(p) for p in inputs):
        digest.update(path.name.encode())
        digest.update((known.get(path) or sha256_file(path)).encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def raw_entities(entities: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the entities a derivative inherits from its raw source (subject, session, task, ...)."""
    return {k: v for k, v in entities.items() if k in RAW_ENTITIES}


def raw_source(relpath: str) -> str:
    """A BIDS URI naming a file of the raw dataset (``DatasetLinks`` calls it ``raw``)."""
    return f"bids:raw:{relpath}"


def build_relpath(entities: Mapping[str, Any]) -> str:
    """Dataset-relative derivative path for ``entities`` (which must include suffix and extension)."""
    from bids.layout.writing import build_path

    values = {k: v for k, v in entities.items() if v is not None}
    path = build_path(values, PATH_PATTERNS, strict=False)
    if path is None:
        raise ValueError(f"no derivative path pattern fits entities {sorted(values)}")
    return path


def dataset_link(output_dir: Path, source: Path) -> str:
    """The raw dataset as a POSIX path relative to the derivatives root (no absolute path: portable)."""
    return Path(os.path.relpath(Path(source).resolve(), Path(output_dir).resolve())).as_posix()


def dataset_description(output_dir: Path, source: Path) -> dict[str, Any]:
    """The derivative's ``dataset_description.json`` (GeneratedBy with version and container).

    The raw dataset (``raw`` in the sidecars' ``bids:raw:`` sources) is named
    by its path relative to ``output_dir``, never an absolute one: copies of
    a dataset, each with its outputs at the same place relative to it, give
    the same bytes.
    """
    generated_by: dict[str, Any] = {
        "Name": "neurolearn",
        "Version": __version__,
        "Description": "Torch-accelerated preprocessing, quality control and pattern analysis",
    }
    container = os.environ.get("NEUROLEARN_CONTAINER")
    if container:
        kind, _, tag = container.partition(":")
        generated_by["Container"] = {"Type": kind, "Tag": tag or "latest"}
    raw = dataset_link(output_dir, source)
    return {
        "Name": "neurolearn derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": [{"URL": raw}],
        "DatasetLinks": {"raw": raw},
    }


class DerivativesWriter:
    """Writes one participant's (or the group's) outputs and keeps its manifest.

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset root.
    owner : str
        ``sub-<label>`` or ``group``; names the manifest file.
    fingerprint : str
        Digest of the inputs and settings behind the outputs written through
        this writer (see :func:`fingerprint`).
    resume : bool
        Whether outputs recorded with the same fingerprint may be kept.
    """

    def __init__(self, output_dir: Path, owner: str, fingerprint: str, *, resume: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.owner = owner
        self.fingerprint = fingerprint
        self.resume = resume
        self.manifest_path = self.output_dir / "logs" / "manifest" / f"{owner}.json"
        self._manifest = self._read_manifest()

    def _read_manifest(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def with_fingerprint(self, fingerprint: str) -> DerivativesWriter:
        """A writer for another stage of the same owner: its own fingerprint, the same manifest.

        Stages record into one manifest per participant, each under the
        fingerprint of what it reads, so changing one stage's settings reruns
        that stage only.
        """
        writer = copy.copy(self)
        writer.fingerprint = fingerprint
        return writer

    # -- paths -------------------------------------------------------------
    def path(self, entities: Mapping[str, Any]) -> Path:
        """Absolute path of the derivative named by ``entities``."""
        return self.output_dir / build_relpath(entities)

    def relative(self, path: Path) -> str:
        """Path relative to the derivatives root, POSIX style."""
        return Path(path).relative_to(self.output_dir).as_posix()

    # -- resume ------------------------------------------------------------
    def is_current(self, paths: Iterable[Path]) -> bool:
        """True when every path exists with the bytes and fingerprint the manifest records."""
        if not self.resume:
            return False
        for path in paths:
            record = self._manifest.get(self.relative(path))
            if not record or record.get("fingerprint") != self.fingerprint or not path.is_file():
                return False
            if sha256_file(path) != record.get("sha256"):
                return False
        return True

    def recorded(self, fingerprint: str) -> dict[str, str]:
        """Path -> SHA-256 of the outputs the manifest records under ``fingerprint`` (what a later stage reads)."""
        return {path: record["sha256"] for path, record in sorted(self._manifest.items())
                if record.get("fingerprint") == fingerprint}

    # -- writes ------------------------------------------------------------
    def _record(self, path: Path) -> Path:
        self._manifest[self.relative(path)] = {"sha256": sha256_file(path), "fingerprint": self.fingerprint}
        atomic.write_json(self.manifest_path, dict(sorted(self._manifest.items())))
        return path

    def write_bytes(self, path: Path, data: bytes) -> Path:
        """Write raw bytes (e.g. a report) at ``path`` inside the derivatives tree."""
        return self._record(atomic.write_bytes(path, data))

    def write_text(self, path: Path, text: str) -> Path:
        """Write UTF-8 text at ``path`` inside the derivatives tree."""
        return self._record(atomic.write_text(path, text))

    def write_json(self, path: Path, payload: Any) -> Path:
        """Write deterministic JSON at ``path`` inside the derivatives tree."""
        return self._record(atomic.write_json(path, payload))

    def write_table(self, path: Path, frame: Any) -> Path:
        """Write a DataFrame as a BIDS TSV at ``path`` inside the derivatives tree."""
        return self._record(atomic.write_tsv(path, frame))

    def write_sidecar(self, data_path: Path, metadata: Mapping[str, Any]) -> Path:
        """Write the JSON sidecar that goes with ``data_path``."""
        return self.write_json(sidecar_of(data_path), dict(metadata))

    def write_nifti(self, entities: Mapping[str, Any], image: Any, metadata: Mapping[str, Any]) -> Path:
        """Write a NIfTI derivative and its sidecar (``metadata`` should hold ``Sources``)."""
        path = self.path({**entities, "extension": entities.get("extension", ".nii.gz")})
        self._record(atomic.write_nifti(path, image))
        self.write_sidecar(path, metadata)
        return path

    def write_image(self, entities: Mapping[str, Any], image: Any, metadata: Mapping[str, Any], *,
                    labels: bool = False, header: Any = None) -> Path:
        """Write an engine :class:`~neurolearn_cli.engine.image.Image` as NIfTI (uint8 when ``labels``)."""
        import nibabel as nib
        import numpy as np

        from neurolearn_cli.engine.io import to_nifti

        nifti = to_nifti(image, header=header)
        if labels:
            values = np.asanyarray(nifti.dataobj)
            data = np.rint(values).astype(np.int16 if values.max() > 255 else np.uint8)
            nifti = nib.Nifti1Image(data, nifti.affine, nifti.header)
            nifti.set_data_dtype(data.dtype)
        return self.write_nifti(entities, nifti, metadata)

    def write_transform(self, entities: Mapping[str, Any], transform: Any) -> Path:
        """Write an engine transform in the ITK format the ``extension`` entity names (.h5, .txt, .mat)."""
        from neurolearn_cli.engine.itkio import write_transform

        return self._record(write_transform(transform, self.path(entities)))

    def write_tsv(self, entities: Mapping[str, Any], frame: Any, metadata: Mapping[str, Any] | None = None) -> Path:
        """Write a TSV derivative (and a JSON sidecar when ``metadata`` is given)."""
        path = self.write_table(self.path({**entities, "extension": ".tsv"}), frame)
        if metadata is not None:
            self.write_sidecar(path, metadata)
        return path


def check_output_dir(output_dir: Path) -> None:
    """Raise :class:`InputError` (exit 2, before any work) when OUTPUT_DIR cannot hold the derivatives.

    A file in its place, or a folder (its nearest existing parent, when it does
    not exist yet) where no file can be created, e.g. read-only or not ours.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(output_dir, "is a file; OUTPUT_DIR must be a directory")
    existing = next(path for path in (output_dir, *output_dir.parents) if path.exists())
    if not existing.is_dir():
        raise InputError(existing, "is a file; OUTPUT_DIR cannot be created under it")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise InputError(existing, f"not writable ({exc.strerror or exc.__class__.__name__}): "
                                   "OUTPUT_DIR must be in a folder this user can write to") from None


def ensure_dataset_description(output_dir: Path, source: Path) -> Path:
    """Write ``dataset_description.json`` (recorded in the ``dataset`` manifest) unless an identical one is there.

    A description written by another tool means OUTPUT_DIR holds foreign derivatives: refused.
    """
    path = output_dir / "dataset_description.json"
    wanted = dataset_description(output_dir, source)
    if path.is_file():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if existing == wanted:
            return path
        names = [g.get("Name") for g in (existing or {}).get("GeneratedBy", []) if isinstance(g, dict)]
        if existing is not None and "neurolearn" not in names:
            raise InputError(path, "output directory holds derivatives of another tool; choose another OUTPUT_DIR")
    return DerivativesWriter(output_dir, "dataset", fingerprint="", resume=False).write_json(path, wanted)

"""Read the facts of the methods boilerplate from what the stages wrote (the edge: file IO only here).

The smri facts come from the preprocessed T1w's sidecar (its ``Sources``)
and the morphometry sidecar (atlas, ``QC`` numbers); the fmri facts from the
preprocessed BOLD sidecars (timing, non-steady-state volumes, SDC,
co-registration, the stage's notes on skipped steps, outlier thresholds),
the confounds table and its JSON (FD, DVARS, CompCor, high-pass) and the
connectivity sidecar; mvpa facts from each analysis' ``spec.yaml`` and
``results.json``. A file that is not there gives no facts; a value that is
not recorded stays None.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from neurolearn_cli import __version__
from neurolearn_cli.boilerplate.facts import (
    Analysis,
    AnatFacts,
    BoldFacts,
    BoldSurfaceFacts,
    Software,
    SurfaceFacts,
)
from neurolearn_cli.derivatives import sidecar_of

if TYPE_CHECKING:
    import torch

CONFOUNDS_SUFFIX = "_desc-confounds_timeseries.tsv"
TISSUE_VOLUMES = ("GM", "WM", "CSF", "TIV")


def software(device: torch.device | str) -> Software:
    """neurolearn's version, ``device`` in words and the installed versions of the libraries it computes with."""
    from neurolearn_cli.engine.device import describe_device
    from neurolearn_cli.mvpa.provenance import versions

    return Software(__version__, describe_device(device), {k: v for k, v in versions().items() if k != "neurolearn"})


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def voxel_sizes(sidecar: Path) -> tuple[float, float, float] | None:
    """The voxel sizes (mm) of the NIfTI image beside ``sidecar``; None when it cannot be read."""
    import nibabel as nib

    image_path = sidecar.with_name(sidecar.name.removesuffix(".json") + ".nii.gz")
    try:
        image = nib.load(image_path)
    except (OSError, ValueError, nib.filebasedimages.ImageFileError):
        return None
    if not isinstance(image, nib.spatialimages.SpatialImage) or image.affine is None:
        return None
    sizes = nib.affines.voxel_sizes(image.affine)
    return float(sizes[0]), float(sizes[1]), float(sizes[2])


def anat_facts(participant: str, preproc_sidecar: Path, morph_sidecar: Path | None,
               template: str | None, standard: tuple[str, ...] = ()) -> AnatFacts | None:
    """The smri facts of one participant; None when its preprocessed T1w was not written."""
    preproc = _read_json(preproc_sidecar)
    if preproc is None:
        return None
    morph = _read_json(morph_sidecar) or {}
    qc = morph.get("QC") or {}
    volumes = {t: v for t in TISSUE_VOLUMES if (v := _finite(qc.get(f"volume_{t}_ml"))) is not None}
    # the T1w reference's sources are the T1w runs and, when given, the lesion mask
    t1w_sources = [s for s in preproc.get("Sources") or [] if not str(s).endswith(("_roi.nii.gz", "_roi.nii"))]
    return AnatFacts(
        participant=participant,
        t1w_images=len(t1w_sources),
        template=template,
        atlas=morph.get("Atlas"),
        atlas_space=morph.get("AtlasSpace"),
        atlas_note=morph.get("Note"),
        affine_cost=_finite(qc.get("affine_cost")),
        syn_similarity=_finite(qc.get("syn_similarity")),
        volumes_ml=volumes,
        standard=standard,
        lesion_ml=_finite(qc.get("volume_lesion_ml")),
        voxel_mm=voxel_sizes(preproc_sidecar),
        skull_stripped=preproc.get("SkullStripped") is True,
        noisy_air_ml=_finite(qc.get("volume_noisy_air_ml")),
    )


def _compcor(metadata: Mapping[str, Any]) -> dict[str, int]:
    """Retained CompCor components per mask (``temporal`` for tCompCor) from the confounds JSON."""
    kept: dict[str, int] = {}
    for entry in metadata.values():
        if not isinstance(entry, dict) or not entry.get("Retained"):
            continue
        mask = "temporal" if entry.get("Method") == "tCompCor" else entry.get("Mask")
        if entry.get("Method") in ("aCompCor", "tCompCor") and mask:
            kept[str(mask)] = kept.get(str(mask), 0) + 1
    return kept


def _cutoff(metadata: Mapping[str, Any]) -> float | None:
    for entry in metadata.values():
        if isinstance(entry, dict) and entry.get("Method") == "Cosine basis":
            return _finite(entry.get("Cutoff"))
    return None


def _outliers(table: pd.DataFrame, column: str, skip: int, threshold: float | None) -> tuple[float | None, int | None]:
    """Mean of ``column`` after ``skip`` rows (NaN rows left out), and how many values exceed ``threshold``."""
    if column not in table.columns:
        return None, None
    values = table[column].to_numpy(float)[skip:]
    values = values[~pd.isna(values)]
    if not values.size:
        return None, None
    count = None if threshold is None else int((values > threshold).sum())
    return float(values.mean()), count


def bold_surface_facts(sidecars: Mapping[tuple[str, str], Path]) -> BoldSurfaceFacts | None:
    """What the surface outputs of one run record; None when none was written.

    ``sidecars`` maps (output space in fMRIPrep's spelling, hemisphere) to
    the sidecar of the GIFTI series. The sample counts are per hemisphere
    (every space of a hemisphere comes from the same samples): each is
    counted once.
    """
    written = {key: payload for key, path in sidecars.items() if (payload := _read_json(path)) is not None}
    if not written:
        return None
    per_hemisphere = {hemisphere: payload for (_, hemisphere), payload in written.items()}
    counts = {key: sum(int(payload.get(key) or 0) for payload in per_hemisphere.values())
              for key in ("SamplesKept", "SamplesOutsideBrain", "SamplesUnreliable")}
    total = sum(counts.values())
    depths = next((payload.get("SamplingDepths") for payload in written.values() if payload.get("SamplingDepths")), None)
    missing = [int(p["VerticesMissing"]) for (space, _), p in written.items()
               if space == "fsnative" and isinstance(p.get("VerticesMissing"), int)]
    return BoldSurfaceFacts(
        spaces=tuple(dict.fromkeys(space for space, _ in written)),
        hemispheres=tuple(sorted(per_hemisphere)),
        depths=tuple(float(d) for d in depths) if isinstance(depths, list) else (),
        kept_fraction=counts["SamplesKept"] / total if total else None,
        outside_fraction=counts["SamplesOutsideBrain"] / total if total else None,
        unreliable_fraction=counts["SamplesUnreliable"] / total if total else None,
        missing_vertices=sum(missing) if missing else None,
    )


def bold_facts(participant: str, name: str, bold_sidecars: Mapping[str, Path], confounds: Path,
               connectivity_sidecar: Path | None,
               surface_sidecars: Mapping[tuple[str, str], Path] | None = None) -> BoldFacts | None:
    """The fmri facts of one run; None when its confounds or preprocessed series were not written.

    Parameters
    ----------
    participant, name : str
        The participant label and the run's BIDS name (``sub-01_task-rest_bold``).
    bold_sidecars : mapping
        Output space (fMRIPrep's spelling) -> the sidecar of the preprocessed series in it.
    confounds : Path
        The confounds TSV (its JSON is read next to it).
    connectivity_sidecar : Path or None
        The sidecar of the run's correlation matrix, when connectivity was computed.
    surface_sidecars : mapping, optional
        (output space, hemisphere) -> the sidecar of the series on that surface (:func:`bold_surface_facts`).
    """
    written = {space: payload for space, path in bold_sidecars.items() if (payload := _read_json(path)) is not None}
    if not written or not confounds.is_file():
        return None
    meta = next(iter(written.values()))
    table = pd.read_csv(confounds, sep="\t", na_values="n/a")
    confounds_meta = _read_json(sidecar_of(confounds)) or {}
    nonsteady = meta.get("NonSteadyStateVolumes")
    thresholds = meta.get("MotionOutlierThresholds") or {}
    fd_threshold = _finite(thresholds.get("framewise_displacement"))
    dvars_threshold = _finite(thresholds.get("std_dvars"))
    # the first steady-state FD/DVARS compares with a non-steady-state volume: left out, as the qc IQMs do
    skip = int(nonsteady) + 1 if isinstance(nonsteady, int) else 1
    mean_fd, fd_outliers = _outliers(table, "framewise_displacement", skip, fd_threshold)
    _, dvars_outliers = _outliers(table, "std_dvars", skip, dvars_threshold)
    connectivity = _read_json(connectivity_sidecar) or {}
    slice_timing = meta.get("SliceTimingCorrected")
    return BoldFacts(
        name=name,
        participant=participant,
        repetition_time=_finite(meta.get("RepetitionTime")),
        volumes=len(table),
        nonsteady=nonsteady if isinstance(nonsteady, int) else None,
        nonsteady_from=meta.get("NonSteadyStateVolumesFrom"),
        slice_timing=slice_timing if isinstance(slice_timing, bool) else None,
        slice_time_s=_finite(meta.get("StartTime")),
        sdc_method=meta.get("SusceptibilityDistortionCorrection"),
        coregistration_method=meta.get("CoregistrationMethod"),
        coregistration_cost=_finite(meta.get("CoregistrationCost")),
        spaces=tuple(written),
        notes=tuple(str(note) for note in meta.get("ProcessingNotes") or ()),
        fd_threshold=fd_threshold,
        dvars_threshold=dvars_threshold,
        mean_fd=mean_fd,
        fd_outliers=fd_outliers,
        dvars_outliers=dvars_outliers,
        censored=sum(1 for column in table.columns if column.startswith("motion_outlier")),
        compcor=_compcor(confounds_meta),
        highpass_cutoff_s=_cutoff(confounds_meta),
        connectivity_atlas=connectivity.get("Atlas"),
        denoising=tuple(str(s) for s in connectivity.get("ConfoundStrategy") or ()),
        surfaces=bold_surface_facts(surface_sidecars or {}),
    )


def _space_label(path: Path) -> str:
    """``MNI152NLin2009aSym:res-2``, ``T1w`` or ``fsLR:den-32k`` from a derivative's file name."""
    from bids.layout import parse_file_entities

    entities = parse_file_entities(path.name)
    density = next((part[4:] for part in path.name.split("_") if part.startswith("den-")), None)
    return (str(entities["space"]) + (f":res-{entities['res']}" if "res" in entities else "")
            + (f":den-{density}" if density else ""))


def _hemisphere(path: Path) -> str:
    """The ``hemi-`` label of a derivative's file name."""
    return next(part[5:] for part in path.name.split("_") if part.startswith("hemi-"))


def discover_anat(output_dir: Path) -> list[AnatFacts]:
    """The smri facts of every participant with a preprocessed T1w under ``output_dir`` (group level)."""
    found = []
    for preproc in sorted(output_dir.glob("sub-*/anat/sub-*_desc-preproc_T1w.json")):
        label = preproc.name.split("_", 1)[0][4:]
        if preproc.name != f"sub-{label}_desc-preproc_T1w.json":  # a template-space copy
            continue
        folder = preproc.parent
        morph = next(iter(sorted(folder.glob(f"sub-{label}_seg-*_stat-gmvolume_morph.json"))), None)
        # the normalization template's copy; a TemplateFlow template's sidecar names it under "Template"
        spatial = {path: "Template" in (_read_json(path) or {})
                   for path in sorted(folder.glob(f"sub-{label}_space-*_desc-preproc_T1w.json"))}
        template = next((_space_label(path).split(":")[0] for path, standard in spatial.items() if not standard), None)
        standard = tuple(_space_label(path) for path, standard in spatial.items() if standard)
        facts = anat_facts(label, preproc, morph, template, standard)
        if facts is not None:
            found.append(facts)
    return found


def surface_facts(participant: str, white_sidecars: list[Path], pial_sidecars: list[Path],
                  volume_table: Path) -> SurfaceFacts | None:
    """The surfaces facts of one participant; None when the stage did not write its volume table."""
    if not volume_table.is_file():
        return None
    whites = [_read_json(path) or {} for path in white_sidecars]
    pials = [_read_json(path) or {} for path in pial_sidecars]

    def total(records: list[dict[str, Any]], key: str, convert: Any = int) -> int | None:
        values = [record.get(key) for record in records]
        return None if not values or None in values else sum(convert(v) for v in values)

    eulers = total(whites, "EulerCharacteristicBeforeCorrection")
    crossings = [total(whites, "SelfIntersectingFaces"), total(pials, "SelfIntersectingFaces")]
    row = pd.read_csv(volume_table, sep="\t", na_values="n/a").iloc[0]
    return SurfaceFacts(
        participant=participant,
        handles=None if eulers is None else (2 * len(whites) - eulers) // 2,
        voxels_cut=total(whites, "VoxelsCutByTopologyCorrection"),
        intersections=None if None in crossings else sum(c for c in crossings if c is not None),
        volumes_ml={str(k): float(v) for k, v in row.items() if k != "participant_id" and pd.notna(v)},
    )


def discover_surfaces(output_dir: Path) -> list[SurfaceFacts]:
    """The surfaces facts of every participant with a surface volume table under ``output_dir`` (group level)."""
    found = []
    for table in sorted(output_dir.glob("sub-*/anat/sub-*_stat-volume_morph.tsv")):
        label = table.name.split("_", 1)[0][4:]
        folder = table.parent
        facts = surface_facts(label, sorted(folder.glob(f"sub-{label}_hemi-*_white.json")),
                              sorted(folder.glob(f"sub-{label}_hemi-*_pial.json")), table)
        if facts is not None:
            found.append(facts)
    return found


def discover_bold(output_dir: Path) -> list[BoldFacts]:
    """The fmri facts of every run with a confounds table under ``output_dir`` (group level)."""
    found = []
    for confounds in sorted(output_dir.glob(f"sub-*/**/func/*{CONFOUNDS_SUFFIX}")):
        prefix = confounds.name[: -len(CONFOUNDS_SUFFIX)]
        folder = confounds.parent
        sidecars = {_space_label(p): p for p in sorted(folder.glob(f"{prefix}_space-*_desc-preproc_bold.json"))}
        relmat = next(iter(sorted(folder.glob(f"{prefix}_space-*_stat-pearsoncorrelation_relmat.json"))), None)
        surfaces = {(_space_label(p), _hemisphere(p)): p for p in sorted(folder.glob(f"{prefix}_hemi-*_space-*_bold.json"))}
        facts = bold_facts(prefix.split("_", 1)[0][4:], f"{prefix}_bold", sidecars, confounds, relmat, surfaces)
        if facts is not None:
            found.append(facts)
    return found


def discover_analyses(output_dir: Path) -> list[Analysis]:
    """Every mvpa analysis with a spec and results under ``output_dir/mvpa/`` (group level)."""
    import yaml

    from neurolearn_cli.errors import InputError, SpecError
    from neurolearn_cli.mvpa.spec import spec_from_dict

    found = []
    for results_path in sorted(output_dir.glob("mvpa/*/results.json")):
        results = _read_json(results_path)
        try:
            payload = yaml.safe_load((results_path.parent / "spec.yaml").read_text(encoding="utf-8"))
            spec = spec_from_dict(payload, results_path.parent / "spec.yaml")
        except (OSError, yaml.YAMLError, InputError, SpecError):
            continue
        if results is not None and "n_features" in results:  # between-participant analyses only
            found.append(Analysis(spec, results))
    return found

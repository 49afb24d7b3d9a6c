"""Write a participant's decoding under ``OUTPUT_DIR/mvpa/<name>/sub-<label>/`` through the derivatives writer.

Every file is written atomically and recorded with its hash in the manifest
``logs/manifest/mvpa-<name>_sub-<label>.json`` (so ``neurolearn verify``
checks it). ``results.json`` holds no times and no machine paths; times and
input hashes go to ``provenance.json``. ``results.json`` is written last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from neurolearn_cli.atomic import gzip_bytes
from neurolearn_cli.derivatives import DerivativesWriter, fingerprint
from neurolearn_cli.mvpa.decoding.inputs import RunFiles
from neurolearn_cli.mvpa.decoding.report import render_decoding_report
from neurolearn_cli.mvpa.decoding.samples import SampleSet
from neurolearn_cli.mvpa.decoding.spec import DecodingSpec, decoding_spec_to_yaml
from neurolearn_cli.mvpa.provenance import provenance as make_provenance
from neurolearn_cli.mvpa.provenance import timing as make_timing


def write_spec(spec: DecodingSpec, output_dir: Path) -> Path:
    """The spec as run, at ``mvpa/<name>/spec.yaml`` (recorded in ``logs/manifest/mvpa-<name>.json``)."""
    writer = DerivativesWriter(output_dir, f"mvpa-{spec.name}", fingerprint([], {"spec": spec.model_dump(mode="json")}),
                               resume=False)
    folder = output_dir / "mvpa" / spec.name
    return writer.write_text(folder / "spec.yaml", decoding_spec_to_yaml(spec, folder))


def volume(values: np.ndarray, samples: SampleSet) -> nib.Nifti1Image:
    """Per-voxel ``values`` painted into the mask on the BOLD grid (0 outside), as float32 NIfTI."""
    mask = samples.mask.cpu().numpy()
    data = np.zeros(mask.shape, dtype=np.float32)
    data[mask] = values
    image = nib.Nifti1Image(data, samples.grid.affine.cpu().numpy())
    image.header.set_xyzt_units("mm")
    return image


def _write_image(writer: DerivativesWriter, path: Path, image: nib.Nifti1Image, metadata: dict[str, Any]) -> Path:
    """A gzipped NIfTI (mtime 0) and its JSON sidecar, both recorded in the manifest."""
    writer.write_bytes(path, gzip_bytes(image.to_bytes()))
    writer.write_sidecar(path, metadata)
    return path


def write_decoding(spec: DecodingSpec, label: str, output_dir: Path, results: dict[str, Any],
                   predictions: pd.DataFrame, weights: np.ndarray | None, samples: SampleSet, null: np.ndarray,
                   runs: list[RunFiles], timing: dict[str, float], device: str) -> Path:
    """Write predictions, mask, weight map, provenance, report, then results.json; return the folder."""
    folder = output_dir / "mvpa" / spec.name / f"sub-{label}"
    inputs = [p for run in runs for p in (run.bold, run.confounds, run.events)]
    inputs += [p for p in (spec.mask.image, spec.mask.atlas, spec.mask.atlas_labels) if p is not None]
    provenance = {**make_provenance(spec.seed, inputs, output_dir, device), **make_timing(timing["started"], {
        "estimate_seconds": timing["estimate_s"], "cv_seconds": timing["cv_s"],
        "permutations_seconds": timing["permutations_s"]})}
    settings = {"spec": spec.model_dump(mode="json"), "inputs": provenance["inputs"]}
    writer = DerivativesWriter(output_dir, f"mvpa-{spec.name}_sub-{label}", fingerprint([], settings), resume=False)
    reference = {"SpatialReference": spec.space if spec.res is None else f"{spec.space} res-{spec.res}",
                 "Sources": [writer.relative(r.bold) if r.bold.is_relative_to(output_dir) else str(r.bold.name)
                             for r in runs]}
    writer.write_table(folder / "predictions.tsv", predictions)
    _write_image(writer, folder / "mask.nii.gz", volume(np.ones(int(samples.mask.sum())), samples),
                            {**reference, "Description": "voxels decoded"})
    if weights is not None:
        _write_image(writer, folder / "weights.nii.gz", volume(weights, samples),
                                {**reference, "Description": "decoder coefficients of the standardized LSS "
                                 "estimates, mean over folds"})
    writer.write_json(folder / "provenance.json", provenance)
    writer.write_text(folder / "report.html", render_decoding_report(
        results, predictions, None if weights is None else volume(weights, samples), null,
        decoding_spec_to_yaml(spec, folder.parent), provenance))
    writer.write_json(folder / "results.json", results)
    return folder

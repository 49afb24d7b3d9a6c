"""Write an analysis' outputs under ``OUTPUT_DIR/mvpa/<name>/`` through the derivatives writer.

Every file is written atomically and recorded with its hash in the manifest
``logs/manifest/mvpa-<name>.json``, so ``neurolearn verify`` checks it.
No output holds a timestamp or a path of the machine, so the same spec and
data give the same bytes (``neurolearn verify OUT_A --against OUT_B``): input
hashes go to ``provenance.json``, times to ``logs/mvpa/<name>_timing.json``
(outside what ``verify`` compares).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli import atomic
from neurolearn_cli.atomic import gzip_bytes
from neurolearn_cli.derivatives import DerivativesWriter, fingerprint
from neurolearn_cli.mvpa.brainmap import weight_map
from neurolearn_cli.mvpa.provenance import provenance as make_provenance
from neurolearn_cli.mvpa.provenance import timing as make_timing
from neurolearn_cli.mvpa.report import render_report
from neurolearn_cli.mvpa.spec import AnalysisSpec, spec_to_yaml


def timing_path(output_dir: Path, name: str) -> Path:
    """Where analysis ``name`` records when it ran and how long its steps took."""
    return output_dir / "logs" / "mvpa" / f"{name}_timing.json"


def write_outputs(spec: AnalysisSpec, output_dir: Path, results: dict[str, Any], predictions: pd.DataFrame,
                  weights: pd.DataFrame, null: np.ndarray, feature_files: list[Path], participants: Path,
                  timing: dict[str, float], device: str) -> Path:
    """Write spec, predictions, weights (and weight map), provenance, report, then results.json last."""
    folder = output_dir / "mvpa" / spec.name
    spec_yaml = spec_to_yaml(spec)
    provenance = make_provenance(spec.seed, [*feature_files, participants], output_dir, device)
    atomic.write_json(timing_path(output_dir, spec.name), make_timing(timing["started"], {
        "nested_cv_seconds": timing["cv_s"], "permutations_seconds": timing["permutations_s"]}))
    settings = {"spec": spec.model_dump(mode="json"), "inputs": provenance["inputs"]}
    writer = DerivativesWriter(output_dir, f"mvpa-{spec.name}", fingerprint([], settings), resume=False)
    writer.write_text(folder / "spec.yaml", spec_yaml)
    writer.write_table(folder / "predictions.tsv", predictions)
    writer.write_table(folder / "weights.tsv", weights)
    if spec.features.atlas_image is not None and len(weights):
        image = weight_map(weights.set_index("feature")["weight"], spec.features.atlas_image, spec.features.atlas_labels)
        if image is not None:
            writer.write_bytes(folder / "weights.nii.gz", gzip_bytes(image.to_bytes()))
    writer.write_json(folder / "provenance.json", provenance)
    writer.write_text(folder / "report.html", render_report(results, predictions, weights, null, spec_yaml,
                                                            provenance, spec.target.column))
    writer.write_json(folder / "results.json", results)
    return folder

"""Write an analysis' outputs under ``OUTPUT_DIR/mvpa/<name>/``, each file atomically.

``results.json`` holds no timestamps and no paths of the machine, so the same
spec and data give the same bytes; timings and input hashes go to
``provenance.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurolearn_cli.atomic import write_json, write_nifti, write_text, write_tsv
from neurolearn_cli.mvpa.brainmap import weight_map
from neurolearn_cli.mvpa.provenance import provenance as make_provenance
from neurolearn_cli.mvpa.report import render_report
from neurolearn_cli.mvpa.spec import AnalysisSpec, spec_to_yaml


def write_outputs(spec: AnalysisSpec, output_dir: Path, results: dict[str, Any], predictions: pd.DataFrame,
                  weights: pd.DataFrame, null: np.ndarray, feature_files: list[Path], participants: Path,
                  timing: dict[str, float], device: str) -> Path:
    """Write spec, predictions, weights (and weight map), report, provenance, then results.json last."""
    folder = output_dir / "mvpa" / spec.name
    spec_yaml = spec_to_yaml(spec)
    write_text(folder / "spec.yaml", spec_yaml)
    write_tsv(folder / "predictions.tsv", predictions)
    write_tsv(folder / "weights.tsv", weights)
    if spec.features.atlas_image is not None and len(weights):
        image = weight_map(weights.set_index("feature")["weight"], spec.features.atlas_image, spec.features.atlas_labels)
        if image is not None:
            write_nifti(folder / "weights.nii.gz", image)
    provenance = make_provenance(spec.seed, [*feature_files, participants], timing["started"], device, {
        "nested_cv_seconds": timing["cv_s"], "permutations_seconds": timing["permutations_s"]})
    write_json(folder / "provenance.json", provenance)
    write_text(folder / "report.html", render_report(results, predictions, weights, null, spec_yaml,
                                                     provenance, spec.target.column))
    write_json(folder / "results.json", results)
    return folder

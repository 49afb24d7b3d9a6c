"""MVPA benchmarks: nested-CV speed, and SOOP NIHSS against the published protocol.

Usage::

    python benchmarks/mvpa.py [--part speed soop] [--n-jobs 2] [--permutations 10]

``speed``: nested CV, 5 outer x 5 inner folds, ridge with a 20-point alpha
grid, 1000 participants x 2000 features (synthetic, seeded), through
:func:`run_analysis`; permutations are timed separately (each repeats the
whole nested CV). ``soop``: the published protocol (features non-zero in more
than 10% of rows, scaler fitted on all rows, leave-one-out RBF SVR with
default parameters) beside our leakage-free nested estimates.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from neurolearn_cli.mvpa.analysis import run_analysis
from neurolearn_cli.mvpa.metrics import pearson_r
from neurolearn_cli.mvpa.spec import spec_from_dict

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
SOOP = DATA / "soop" / "merged_artery_participants.tsv"


def _bids(root: Path, participants: pd.DataFrame) -> Path:
    bids = root / "bids"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "benchmark", "BIDSVersion": "1.9.0"}))
    participants.to_csv(bids / "participants.tsv", sep="\t", index=False)
    return bids


def speed(root: Path, n_jobs: int, permutations: int) -> list[dict]:
    """Time the nested CV (and, separately, its permutations) on 1000 x 2000 synthetic features."""
    rng = np.random.default_rng(0)
    n, p = 1000, 2000
    features = rng.normal(size=(n, p))
    target = features[:, :20] @ rng.normal(size=20) + 3.0 * rng.normal(size=n)
    ids = [f"sub-{i:04d}" for i in range(n)]
    bids = _bids(root, pd.DataFrame({"participant_id": ids, "y": target}))
    table = root / "features.tsv"
    frame = pd.DataFrame(features, columns=[f"f{j}" for j in range(p)])
    frame.insert(0, "participant_id", ids)
    frame.to_csv(table, sep="\t", index=False)
    rows = []
    for count in (0, permutations):
        spec = spec_from_dict({
            "name": f"speed_{count}", "target": {"column": "y"},
            "features": {"kind": "table", "sources": [str(table)]},
            "model": {"name": "ridge", "grid": {"alpha": [float(a) for a in np.logspace(-2, 5, 20)]}},
            "validation": {"outer": 5, "inner": 5, "permutations": count, "bootstrap": 1000},
        })
        start = time.perf_counter()
        result = run_analysis(spec, bids, root / "out", device="cpu", n_jobs=n_jobs)
        wall = time.perf_counter() - start
        provenance = json.loads((result.folder / "provenance.json").read_text())
        rows.append({"run": f"ridge 5x5, 20 alphas, {count} permutations", "n_jobs": n_jobs,
                     "nested_cv_s": provenance["nested_cv_seconds"],
                     "permutations_s": provenance["permutations_seconds"],
                     "per_permutation_s": provenance["permutations_seconds"] / count if count else None,
                     "total_wall_s": wall, "pearson_r": result.results["mean"]})
    return rows


def soop(root: Path, n_jobs: int) -> list[dict]:
    """The published leave-one-out protocol beside our nested, leakage-free estimates."""
    table = pd.read_csv(SOOP, sep="\t").dropna(subset=["nihss"])
    y = table["nihss"].to_numpy(float)
    X = table.drop(columns=["participant_id", "nihss"]).fillna(0.0)
    X = X.loc[:, (X != 0).mean() > 0.1]
    start = time.perf_counter()
    predicted = cross_val_predict(SVR(), StandardScaler().fit_transform(X), y, cv=LeaveOneOut(), n_jobs=n_jobs)
    rows = [{"protocol": "published: filter+scaler on all rows, LOO, SVR defaults", "r": pearson_r(y, predicted),
             "mae": float(np.abs(predicted - y).mean()), "ci95": None, "seconds": time.perf_counter() - start,
             "n": len(y), "features": X.shape[1]}]
    bids = _bids(root / "soop", pd.read_csv(SOOP, sep="\t"))
    for label, outer, grid in (("ours: filter+scaler in folds, 5-fold, SVR defaults", 5, {}),
                               ("ours: filter+scaler in folds, 10-fold outer, 5-fold inner grid C/gamma/epsilon", 10, None)):
        spec = spec_from_dict({
            "name": f"soop_{outer}", "target": {"column": "nihss"},
            "features": {"kind": "table", "sources": [str(bids / "participants.tsv")], "missing": "zero"},
            "model": {"name": "svr", "grid": grid}, "preprocessing": {"nonzero_fraction": 0.1},
            "validation": {"outer": outer, "inner": 5, "permutations": 0, "bootstrap": 1000},
        })
        start = time.perf_counter()
        result = run_analysis(spec, bids, root / "soop_out", device="cpu", n_jobs=n_jobs).results
        rows.append({"protocol": label, "r": result["mean"], "r_pooled": result["pooled"], "mae": result["summary"]["mae"],
                     "ci95": result["ci95"], "seconds": time.perf_counter() - start, "n": result["n_samples"],
                     "features": result["n_features"]})
    return rows


def _markdown(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, list):
            return " to ".join(f"{v:.3f}" for v in value)
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=["speed", "soop"], default=["speed", "soop"])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--permutations", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if "speed" in args.part:
            print("## speed: nested CV on 1000 participants x 2000 features\n")
            print(_markdown(speed(root / "speed", args.n_jobs, args.permutations)), "\n")
        if "soop" in args.part:
            if not SOOP.exists():
                print(f"SOOP table not found at {SOOP}: skipped")
            else:
                print("## SOOP: NIHSS from lesion territories (Pearson r, MAE)\n")
                print(_markdown(soop(root, args.n_jobs)), "\n")


if __name__ == "__main__":
    main()

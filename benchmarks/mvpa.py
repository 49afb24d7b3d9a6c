"""MVPA benchmarks: nested-CV speed, and SOOP NIHSS against the published protocol.

Usage::

    python benchmarks/mvpa.py [--part speed soop decoding] [--n-jobs 2] [--permutations 10]
                              [--derivatives DIR]   # decoding: studyforrest fmri outputs (see below)

``speed``: nested CV, 5 outer x 5 inner folds, ridge with a 20-point alpha
grid, 1000 participants x 2000 features (synthetic, seeded), through
:func:`run_analysis`; permutations are timed separately (each repeats the
whole nested CV). ``soop``: the published protocol (features non-zero in more
than 10% of rows, scaler fitted on all rows, leave-one-out RBF SVR with
default parameters) beside our leakage-free nested estimates.
``decoding``: within-participant LSS estimates on studyforrest's fmri
outputs (``neurolearn smri`` then ``neurolearn fmri`` into ``--derivatives``),
ours (one batched pseudo-inverse, torch) against nilearn's FirstLevelModel
fitted once per sample on the same design (the established LSS loop), in the
same run: wall and CPU time, their ratio, agreement of the estimates; then
faces against the other categories decoded in a ventral occipito-temporal mask by
our pipeline and by nilearn's Decoder on the same estimates and folds.
``pooled``: the collaborative path on 10 simulated sites x 100 participants x
500 regional volumes (a planted group difference and a per-site shift of every
region): the sites' exports, then ``project pool`` (bundle checks, pooling,
site-effect AUC before and after ComBat, a 5x3 nested-CV logistic regression
with ComBat inside the folds, the report), each timed.
Prints markdown tables, with the load average at start and end; ``--results``
appends them to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _tables import append_results, markdown_table
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from neurolearn_cli.mvpa.analysis import run_analysis
from neurolearn_cli.mvpa.metrics import pearson_r
from neurolearn_cli.mvpa.outputs import timing_path
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
        timing = json.loads(timing_path(root / "out", spec.name).read_text())
        rows.append({"run": f"ridge 5x5, 20 alphas, {count} permutations", "n_jobs": n_jobs,
                     "nested_cv_s": timing["nested_cv_seconds"],
                     "permutations_s": timing["permutations_seconds"],
                     "per_permutation_s": timing["permutations_seconds"] / count if count else None,
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


STUDYFORREST = DATA / "studyforrest" / "bids"
#: Ventral occipito-temporal parcels of the bundled atlas (fusiform, inferior temporal, parahippocampal, lateral occipital).
VOT_PARCELS = ["L_gm_09", "R_gm_09", "L_gm_12", "R_gm_12", "L_gm_16", "R_gm_16", "L_gm_21", "R_gm_21"]


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), _cpu()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - wall, _cpu() - cpu


def _nilearn_lss(bold, mask, regressors: np.ndarray, nuisance: np.ndarray, t_r: float, count: int) -> np.ndarray:
    """nilearn's FirstLevelModel (OLS, percent signal change) fitted once per sample on our LSS design."""
    from nilearn.glm.first_level import FirstLevelModel

    total = regressors.sum(axis=1)
    rows = []
    for i in range(count):
        design = pd.DataFrame(np.column_stack([regressors[:, i], total - regressors[:, i], nuisance]))
        design.columns = ["own", "others"] + [f"n{j}" for j in range(nuisance.shape[1])]
        model = FirstLevelModel(t_r=t_r, mask_img=mask, noise_model="ols", signal_scaling=0, minimize_memory=True)
        model.fit(bold, design_matrices=[design])
        rows.append(model.compute_contrast("own", output_type="effect_size").get_fdata()[mask.get_fdata() > 0])
    return np.array(rows)


def decoding(root: Path, derivatives: Path, n_jobs: int, permutations: int) -> tuple[list[dict], list[dict]]:
    """LSS speed/agreement against nilearn, and faces-vs-rest decoding by ours and by nilearn's Decoder."""
    import nibabel as nib
    import torch
    from nilearn.decoding import Decoder
    from sklearn.model_selection import PredefinedSplit

    from neurolearn_cli.mvpa.decoding.confounds import confound_columns, nuisance_matrix
    from neurolearn_cli.mvpa.decoding.events import samples_from_events
    from neurolearn_cli.mvpa.decoding.inputs import find_runs, load_bold, load_mask, read_table
    from neurolearn_cli.mvpa.decoding.lss import design_columns, lss_estimates
    from neurolearn_cli.mvpa.decoding.run import run_decoding
    from neurolearn_cli.mvpa.decoding.spec import decoding_spec_from_dict

    torch.set_num_threads(1)
    speed_rows, decode_rows = [], []
    for unit, nilearn_count in (("block", 12), ("trial", 24)):
        spec = decoding_spec_from_dict({
            "name": f"faces_{unit}", "mode": "within", "task": "oneback", "samples": {"unit": unit},
            "target": {"positive": ["face"]}, "mask": {"labels": VOT_PARCELS},
            "selection": {"method": "anova", "percentile": 5},
            "validation": {"permutations": permutations}, "derivatives": str(derivatives)})
        run = find_runs(derivatives, STUDYFORREST, "02", spec)[0]
        bold = load_bold(run.bold, torch.device("cpu"))
        mask = load_mask(spec.mask, bold.grid)
        data = bold.data[mask].T.contiguous()
        samples = samples_from_events(read_table(run.events), "trial_type", spec.samples, run.events)
        table = read_table(run.confounds)
        nuisance = nuisance_matrix(table, confound_columns(list(table.columns), spec.glm.confounds, run.confounds),
                                   data.shape[0], run.confounds)
        frame_times = (np.arange(data.shape[0]) + spec.glm.slice_time_ref) * run.repetition_time
        regressors, design_nuisance = design_columns(samples, frame_times, nuisance, hrf="glover", high_pass=0.008)
        ours, wall, cpu = _timed(lss_estimates, data, regressors, design_nuisance)
        image = nib.load(run.bold)
        mask_image = nib.Nifti1Image(mask.numpy().astype(np.uint8), image.affine)
        theirs, n_wall, n_cpu = _timed(_nilearn_lss, image, mask_image, regressors, design_nuisance,
                                       run.repetition_time, nilearn_count)
        ours_psc = ours.numpy()[:nilearn_count]
        agreement = float(np.corrcoef(ours_psc.ravel(), theirs.ravel())[0, 1])
        speed_rows.append({"samples": f"{len(samples)} {unit}s x {data.shape[1]} voxels", "ours_wall_s": wall,
                           "ours_cpu_s": cpu, "nilearn_samples_fitted": nilearn_count, "nilearn_wall_s": n_wall,
                           "nilearn_cpu_s": n_cpu,
                           "per_sample_cpu_ratio": (n_cpu / nilearn_count) / (cpu / len(samples)),
                           "estimates_r": agreement, "max_abs_diff": float(np.abs(ours_psc - theirs).max())})
        result, d_wall, d_cpu = _timed(run_decoding, spec, STUDYFORREST, root / f"out_{unit}", device="cpu",
                                       n_jobs=n_jobs)
        r = result[0]
        decode_rows.append({"decoder": f"ours, {unit}s, {r.results['cv']}", "roc_auc": r.results["mean"],
                            "permutation_p": r.results["permutation_p"],
                            "null_n": r.results["null"]["n"] if r.results["null"] else 0,
                            "wall_s": d_wall, "cpu_s": d_cpu})
        folds = r.predictions["fold"].to_numpy()
        inside = mask.numpy()
        corner, stop = np.argwhere(inside).min(axis=0), np.argwhere(inside).max(axis=0) + 1
        box = tuple(slice(a, b) for a, b in zip(corner, stop, strict=True))
        affine = image.affine.copy()
        affine[:3, 3] = nib.affines.apply_affine(image.affine, corner)
        X = np.zeros((*inside[box].shape, len(samples)), dtype=np.float32)
        X[inside[box]] = ours.numpy().T
        labels = np.where(samples["condition"] == "face", "face", "other")
        decoder = Decoder(estimator="svc", mask=nib.Nifti1Image(inside[box].astype(np.uint8), affine),
                          cv=PredefinedSplit(folds), screening_percentile=5, scoring="roc_auc",
                          standardize="zscore_sample")
        images = nib.Nifti1Image(X, affine)
        _, n_wall, n_cpu = _timed(decoder.fit, images, labels)
        decode_rows.append({"decoder": f"nilearn Decoder (svc, C grid), {unit}s, same folds without buffer",
                            "roc_auc": float(np.mean(decoder.cv_scores_["face"])), "permutation_p": None,
                            "null_n": None, "wall_s": n_wall, "cpu_s": n_cpu})
    return speed_rows, decode_rows


def _pooled_sites(root: Path, sites: int, per_site: int, regions: int, permutations: int) -> tuple[Path, list]:
    """A project and ``sites`` site folders (participants.tsv, morphometry tables, statuses, run record)."""
    import yaml

    from neurolearn_cli.config import RunConfig
    from neurolearn_cli.project.init import init_project
    from neurolearn_cli.project.model import load_project
    from neurolearn_cli.project.pin import pin_config, record_run

    project_path = init_project(root / "project", "bench")
    payload = yaml.safe_load(project_path.read_text())
    payload["workflow"]["stages"] = ["smri"]
    payload["feature_sets"] = {"morph": {"kind": "morph", "normalize": "tiv"}}
    payload["analyses"] = [{"name": "dx", "features": "morph", "target": {"column": "group"},
                            "model": {"name": "logistic"}, "preprocessing": {"harmonize": "combat"},
                            "validation": {"outer": 5, "inner": 3, "permutations": permutations, "bootstrap": 200}}]
    project_path.write_text(yaml.safe_dump(payload, sort_keys=False))
    project = load_project(project_path)
    names = [f"R_gm_{k:03d}" for k in range(regions)]
    folders = []
    for site in range(sites):
        rng = np.random.default_rng(site)
        shift = rng.normal(0.0, 0.3, regions)
        bids, out = root / f"site{site}" / "bids", root / f"site{site}" / "out"
        ids = [f"sub-s{site}p{i:03d}" for i in range(per_site)]
        groups = np.array(["control", "patient"])[np.arange(per_site) % 2]
        _bids(bids.parent, pd.DataFrame({"participant_id": ids, "age": rng.uniform(50, 80, per_site).round(1),
                                         "sex": rng.choice(["F", "M"], per_site), "group": groups}))
        for subject, group in zip(ids, groups, strict=True):
            volumes = rng.normal(6.0, 0.5, regions) + shift - 0.3 * (group == "patient") * (np.arange(regions) < 20)
            tiv = rng.normal(1500, 80)
            anat = out / subject / "anat"
            anat.mkdir(parents=True)
            frame = pd.DataFrame([[subject, tiv, *(volumes * tiv / 1500)]], columns=["participant_id", "TIV", *names])
            frame.to_csv(anat / f"{subject}_seg-bench_stat-gmvolume_morph.tsv", sep="\t", index=False)
            (out / "logs" / "status").mkdir(parents=True, exist_ok=True)
            (out / "logs" / "status" / f"{subject}.json").write_text(json.dumps({"participant_id": subject,
                                                                                  "status": "done"}))
        record_run(pin_config(RunConfig(bids_dir=bids, output_dir=out), project, project_path, set()), project,
                   project_path)
        folders.append((f"site{site}", bids, out))
    return project_path, folders


def pooled(root: Path, n_jobs: int, permutations: int, sites: int = 10, per_site: int = 100,
           regions: int = 500) -> list[dict]:
    """Export every site, then pool: wall and CPU seconds of each, the site AUCs and the analysis' score."""
    from neurolearn_cli.project.export import export_bundle
    from neurolearn_cli.project.model import load_project
    from neurolearn_cli.project.pool import pool_project

    project_path, folders = _pooled_sites(root, sites, per_site, regions, permutations)
    project = load_project(project_path)
    bundles, wall, cpu = [], 0.0, 0.0
    for name, bids, out in folders:
        bundle = root / "bundles" / f"{name}.tar.gz"
        _, w, c = _timed(export_bundle, project, project_path, bids, out, name, bundle)
        bundles.append(bundle)
        wall, cpu = wall + w, cpu + c
    pool, p_wall, p_cpu = _timed(pool_project, project_path, bundles, root / "pool", device="cpu", n_jobs=n_jobs)
    effects = pd.read_csv(pool / "site_effects.tsv", sep="\t").iloc[0]
    results = json.loads((pool / "mvpa" / "dx" / "results.json").read_text())
    timing = json.loads((pool / "logs" / "mvpa" / "dx_timing.json").read_text())
    size = f"{sites} sites x {per_site} participants x {regions} features"
    return [{"step": f"export, {sites} bundles", "data": size, "wall_s": wall, "cpu_s": cpu},
            {"step": "pool: checks, tables, site AUC, analysis, report", "data": size, "wall_s": p_wall, "cpu_s": p_cpu,
             "nested_cv_s": timing["nested_cv_seconds"], "permutations": permutations,
             "permutations_s": timing["permutations_seconds"], "site_auc_raw": float(effects["site_auc_raw"]),
             "site_auc_combat": float(effects["site_auc_combat"]), "roc_auc": results["mean"]}]


def _markdown(rows: list[dict]) -> str:
    return markdown_table(rows, list(dict.fromkeys(k for row in rows for k in row)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", choices=["speed", "soop", "decoding", "pooled"], default=["speed", "soop"])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--permutations", type=int, default=10)
    parser.add_argument("--derivatives", type=Path, help="studyforrest fmri outputs (for --part decoding)")
    parser.add_argument("--results", action="store_true", help="append the pooled table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}\n")
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
        if "decoding" in args.part:
            if args.derivatives is None or not (args.derivatives / "sub-02" / "func").is_dir():
                print("decoding needs --derivatives DIR holding `neurolearn fmri` outputs of studyforrest: skipped")
            else:
                speed_rows, decode_rows = decoding(root, args.derivatives, args.n_jobs, args.permutations)
                print("## LSS estimates, studyforrest sub-02, ventral occipito-temporal mask: ours vs nilearn\n")
                print(_markdown(speed_rows), "\n")
                print("## faces vs other categories, ventral occipito-temporal mask\n")
                print(_markdown(decode_rows), "\n")
        if "pooled" in args.part:
            load = os.getloadavg()[0]
            table = _markdown(pooled(root / "pooled", args.n_jobs, args.permutations))
            print("## pooled: a collaborative project, 10 sites x 100 participants x 500 features\n")
            print(table, "\n")
            if args.results:
                stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                append_results(f"\n## mvpa pooled path (issue 18), {stamp}\n\n`{' '.join(sys.argv)}`; load average "
                               f"{load:.1f} at start, {os.cpu_count()} CPUs.\n\n{table}")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

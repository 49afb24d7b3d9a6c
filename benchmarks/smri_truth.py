"""smri against known truth: the MNI template moved by a known warp, bias field and noise (issue 4).

Run ``python benchmarks/smri_truth.py [--seeds 0 1] [--res 2] [--no-write]``.

Each case is nilearn's MNI152 2009a T1w (skull-stripped, 1 mm) pulled through
a known warp (``engine.KnownWarp``: affine <= 10 deg, <= 10 mm, scales
0.9-1.1, plus a smooth warp <= 4 mm), multiplied by a known smooth bias field
(log amplitude up to 0.2, so about +-20 %), block-averaged to ``--res`` mm
and given Gaussian noise (2 % of the white-matter intensity). The truth is
the warp's inverse (template -> subject map), the bias field, and tissue
labels: the template's GM/WM/CSF maps pulled through the same warp (the
largest of the three inside the pulled brain mask).

Both methods get the same arrays in the template's world frame:

* **neurolearn**: :func:`neurolearn_cli.smri.pipeline.preprocess_t1w`;
* **ANTs chain**: ``ants.n4_bias_field_correction`` -> ``ants.registration``
  ('SyN') to the template at the same resolution -> priors and brain mask
  pulled back -> ``ants.atropos`` (as in ``benchmarks/smri.py``).

Scores: normalization error (distance between estimated and true template ->
subject maps inside the template brain, mean and 95th percentile), bias
residual (RMS of the log ratio of estimated to true field inside the brain,
after removing its mean, in %; its floor is not 0, as each method also reads
the template's own slow intensity changes as bias) and the correlation of
the estimated and true log fields there, Dice of the brain mask and of GM/WM/CSF
against the truth labels; wall and CPU seconds. The table is printed and
appended to the smri section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import tempfile

import numpy as np
import torch
from engine import Clock, KnownWarp, ants_image, downsample, grid_points, mni_volume, sample_at
from scipy import ndimage as ndi
from smri import RESULTS, add_to_section

from neurolearn_cli.engine.allocator import configure_allocation
from neurolearn_cli.smri.template import MASK_THRESHOLD

#: World position (mm) of voxel 0 of nilearn's 1 mm MNI152 2009a template (its affine is a translation).
ORIGIN = np.array([-98.0, -134.0, -72.0])
BIAS_LOG_AMPLITUDE = 0.2
NOISE_FRACTION = 0.02
COLUMNS = ("case", "method", "time_s", "cpu_s", "err_mean_mm", "err_p95_mm", "bias_residual_pct", "bias_r",
           "mask", "GM", "WM", "CSF")


def _bias_field(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A smooth positive field with log amplitude ``BIAS_LOG_AMPLITUDE`` (a random 5x5x5 grid, cubic-upsampled)."""
    rng = np.random.default_rng(1000 + seed)
    coarse = rng.standard_normal((5, 5, 5))
    log_field = ndi.zoom(coarse, [n / 5 for n in shape], order=3)[: shape[0], : shape[1], : shape[2]]
    log_field *= BIAS_LOG_AMPLITUDE / np.abs(log_field).max()
    return np.exp(log_field).astype(np.float32)


def make_case(seed: int, res: int) -> dict:
    """The moved, biased, noisy template at ``res`` mm and its truth (labels, bias, template -> subject map)."""
    t1 = mni_volume("t1")
    t1 = t1 / t1.max()
    mask1 = (t1 > MASK_THRESHOLD).astype(np.float32)
    gm, wm = mni_volume("gm") / 255.0, mni_volume("wm") / 255.0
    tissues1 = {"GM": gm, "WM": wm, "CSF": np.clip(mask1 - gm - wm, 0.0, 1.0), "mask": mask1}
    pts1 = grid_points(t1.shape, 1.0)
    warp = KnownWarp.random(seed, np.array(t1.shape, dtype=np.float64), pts1[mask1.reshape(-1) > 0])
    source = warp.phi(pts1)
    moved = sample_at(t1, 1.0, source).reshape(t1.shape)
    pulled = {name: downsample(sample_at(v, 1.0, source).reshape(t1.shape), res) for name, v in tissues1.items()}
    bias1 = _bias_field(seed, t1.shape)
    image = downsample(moved * bias1, res)
    wm_level = float(np.median(image[pulled["WM"] > 0.9]))
    image += np.random.default_rng(2000 + seed).normal(0.0, NOISE_FRACTION * wm_level, image.shape).astype(np.float32)
    brain = pulled["mask"] > 0.5
    labels = np.argmax(np.stack([pulled["GM"], pulled["WM"], pulled["CSF"]]), axis=0) + 1
    fixed_mask = downsample(mask1, res) > 0.5
    fixed_pts = grid_points(fixed_mask.shape, res)
    return {
        "seed": seed, "res": res, "image": np.clip(image, 0.0, None), "bias": downsample(bias1, res),
        "labels": np.where(brain, labels, 0), "fixed": downsample(t1, res), "fixed_mask": fixed_mask,
        "fixed_pts": fixed_pts[fixed_mask.reshape(-1)], "truth": warp.phi_inv(fixed_pts[fixed_mask.reshape(-1)]),
    }


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


def score(case: dict, psi: np.ndarray, bias: np.ndarray, mask: np.ndarray, dseg: np.ndarray) -> dict:
    """Map error (mm), bias residual (%) and Dice against the truth; ``psi`` maps the brain's template points."""
    err = np.linalg.norm(psi - case["truth"], axis=1)
    brain = case["labels"] > 0
    estimated, true = np.log(np.clip(bias[brain], 1e-6, None)), np.log(case["bias"][brain])
    log_ratio = estimated - true
    scores = {
        "err_mean_mm": float(err.mean()), "err_p95_mm": float(np.percentile(err, 95)),
        "bias_residual_pct": 100 * float(np.sqrt(np.mean((log_ratio - log_ratio.mean()) ** 2))),
        "bias_r": float(np.corrcoef(estimated, true)[0, 1]),
        "mask": _dice(mask, brain),
    }
    for label, name in enumerate(("GM", "WM", "CSF"), start=1):
        scores[name] = _dice((dseg == label) & mask, case["labels"] == label)
    return scores


def reference_row(case: dict) -> dict:
    """No processing: identity map and no bias correction (the starting errors)."""
    brain = case["labels"] > 0
    log_bias = np.log(case["bias"][brain])
    err = np.linalg.norm(case["fixed_pts"] - case["truth"], axis=1)
    return {"method": "no correction (identity map, bias left)", "err_mean_mm": float(err.mean()),
            "err_p95_mm": float(np.percentile(err, 95)),
            "bias_residual_pct": 100 * float(np.sqrt(np.mean((log_bias - log_bias.mean()) ** 2)))}


def run_ours(case: dict) -> dict:
    """neurolearn's smri steps on the case (template world frame), timed in-process."""
    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.pipeline import preprocess_t1w
    from neurolearn_cli.smri.template import load_template

    cpu = torch.device("cpu")
    res = case["res"]
    affine = torch.eye(4, dtype=torch.float64)
    affine[:3, :3] *= res
    affine[:3, 3] = torch.from_numpy(ORIGIN)
    template, atlas = load_template(cpu, 2), load_atlas(cpu)
    clock = Clock()
    result = preprocess_t1w([Image(torch.from_numpy(case["image"]), affine)], ["synthetic"], template, atlas, cpu)
    elapsed = clock.read()
    world = torch.from_numpy(case["fixed_pts"] + ORIGIN)
    psi = result.normalization.t1w_to_template.map_points(world).numpy() - ORIGIN
    return {"method": "neurolearn smri", **elapsed,
            **score(case, psi, result.bias_field.data.numpy(), result.mask.data.numpy() > 0.5, result.dseg.data.numpy())}


def run_ants(case: dict) -> dict:
    """N4 -> SyN -> priors pulled back -> Atropos, on the same arrays (origin 0, isotropic spacing)."""
    import ants

    res = case["res"]
    image, fixed = ants_image(case["image"], res), ants_image(case["fixed"], res)
    gm, wm = (ants_image(downsample(mni_volume(name) / 255.0, res), res) for name in ("gm", "wm"))
    mask_mni = (case["fixed"] > MASK_THRESHOLD).astype(np.float32)
    csf = ants_image(np.clip(mask_mni - gm.numpy() - wm.numpy(), 0.0, 1.0), res)
    with tempfile.TemporaryDirectory(prefix="smri_truth_") as tmp:
        clock = Clock()
        bias = ants.n4_bias_field_correction(image, return_bias_field=True)
        corrected = image / bias
        reg = ants.registration(fixed=fixed, moving=corrected, type_of_transform="SyN",
                                outprefix=os.path.join(tmp, "r_"), random_seed=42)
        back = reg["invtransforms"]
        priors = [ants.apply_transforms(corrected, prior, back, interpolator="linear") for prior in (gm, wm, csf)]
        brain = ants.apply_transforms(corrected, ants_image(mask_mni, res), back,
                                      interpolator="linear")
        mask = ants.threshold_image(brain, 0.5, 1e9)
        seg = ants.atropos(a=corrected, x=mask, i=priors, m="[0.2,1x1x1]", c="[5,0]", priorweight=0.25)
        elapsed = clock.read()
        coords = grid_points(case["fixed"].shape, res).reshape(*case["fixed"].shape, 3)
        psi = np.stack([
            ants.apply_transforms(fixed, ants_image(coords[..., axis], res), reg["fwdtransforms"],
                                  interpolator="linear").numpy()[case["fixed_mask"]]
            for axis in range(3)
        ], axis=1)
    return {"method": "ANTs chain (N4 + SyN + Atropos)", **elapsed,
            **score(case, psi, bias.numpy(), mask.numpy() > 0.5, seg["segmentation"].numpy())}


def markdown(rows: list[dict]) -> str:
    from _tables import markdown_table

    return markdown_table(rows, COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--res", type=int, default=2, help="voxel size of the synthetic subject (mm)")
    parser.add_argument("--skip-ants", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table without appending to RESULTS.md")
    args = parser.parse_args()
    configure_allocation()  # as the neurolearn command does
    torch.set_num_threads(2)
    load_start = os.getloadavg()[0]
    rows = []
    for seed in args.seeds:
        case = make_case(seed, args.res)
        label = f"seed {seed}, {args.res} mm"
        methods = [run_ours] + ([] if args.skip_ants else [run_ants])
        rows += [{"case": label, **reference_row(case)}] + [{"case": label, **run(case)} for run in methods]
        print(markdown(rows), flush=True)
    table = markdown(rows)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"### Known truth: `python benchmarks/smri_truth.py --seeds {' '.join(map(str, args.seeds))} "
              f"--res {args.res}` ({stamp}; load average {load_start:.1f} at start, "
              f"{os.getloadavg()[0]:.1f} at end; torch {torch.__version__}, 2 threads)")
    print(header)
    print(table)
    if not args.no_write:
        add_to_section(RESULTS, f"{header}\n\n{table}\n")


if __name__ == "__main__":
    main()

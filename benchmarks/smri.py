"""Benchmark of the smri stage against an ANTs chain (antspyx) on aomic sub-0001, with fMRIPrep as reference.

Run ``python benchmarks/smri.py [--step N] [--skip-ants]``. Both methods see
the same T1w (aomic sub-0001, 1 mm, LIA, uint8, skull on; ``--step 2`` takes
every second voxel for a quicker run) in the same sitting, each in its own
child process so peak memory is its own:

* **neurolearn**: :func:`neurolearn_cli.smri.pipeline.preprocess_t1w` (robust
  affine, unified segmentation with bias field, brain mask, SyN to the 2 mm
  template, atlas, MNI resampling);
* **ANTs chain**: ``ants.n4_bias_field_correction`` -> ``ants.registration``
  (``SyN``, affine + diffeomorphic) to nilearn's 1 mm MNI152 2009a T1w
  (resampled to ``step`` mm when ``--step`` > 1) ->
  template brain mask and GM/WM/CSF priors pulled back to the T1w -> brain
  mask = warped template mask > 0.5 -> ``ants.atropos`` with the three priors
  (weight 0.25, MRF 0.2) inside that mask.

Accuracy is measured in world coordinates against fMRIPrep's brain mask and
dseg (``aomic/reference/fmriprep``) and FreeSurfer's eTIV. Time: wall and
process CPU time (the child's user+system, threads included) and peak
resident memory; the load average at start and end says how shared the
machine was. The table is printed and a dated section appended to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _tables import RESULTS

from neurolearn_cli.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", ROOT.parent / "shared" / "data"))
AOMIC = DATA / "aomic"
T1W = AOMIC / "bids/sub-0001/anat/sub-0001_T1w.nii.gz"
REFERENCE = AOMIC / "reference/fmriprep/sub-0001/anat"
ASEG_STATS = AOMIC / "reference/freesurfer/sub-0001/stats/aseg.stats"
LABELS = {1: "GM", 2: "WM", 3: "CSF"}
SECTION = "## smri (issue 4)"


def _input_image(step: int, path: Path) -> Path:
    """The aomic T1w, every ``step``-th voxel (stored order and dtype kept), written to ``path``."""
    import nibabel as nib

    image = nib.load(T1W)
    affine = image.affine.copy()
    affine[:3, :3] *= step
    data = np.asanyarray(image.dataobj)[::step, ::step, ::step]
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def _run_ours(t1w: Path, out: Path, step: int) -> None:
    """neurolearn's smri pipeline on ``t1w``; writes mask and dseg (T1w grid) to ``out`` (``step`` unused: same settings)."""
    from neurolearn_cli.engine.allocator import configure_allocation

    configure_allocation()  # as the neurolearn command does, before torch allocates
    import nibabel as nib
    import torch

    from neurolearn_cli.engine.io import load_image, to_nifti
    from neurolearn_cli.smri.parcellation import load_atlas
    from neurolearn_cli.smri.pipeline import preprocess_t1w
    from neurolearn_cli.smri.template import load_template

    cpu = torch.device("cpu")
    result = preprocess_t1w([load_image(t1w, cpu)], [str(t1w)], load_template(cpu, 2), load_atlas(cpu), cpu)
    nib.save(to_nifti(result.mask), out / "mask.nii.gz")
    nib.save(to_nifti(result.dseg), out / "dseg.nii.gz")
    (out / "tiv.json").write_text(json.dumps({"tiv_ml": float(result.morphometry["TIV"].iloc[0])}), encoding="utf-8")


def _mni_file(name: str) -> str:
    import nilearn

    return str(Path(nilearn.__file__).parent / "datasets" / "data" / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz")


def _run_ants(t1w: Path, out: Path, step: int) -> None:
    """The ANTs chain on ``t1w``: N4, SyN to the MNI template, priors pulled back, Atropos; writes mask, dseg and
    Atropos's GM/WM/CSF posteriors (``label-<tissue>_probseg.nii.gz``).

    The template's brain mask and CSF prior are made as neurolearn makes them
    (T1w above 0.2 of its maximum; CSF = mask - GM - WM).
    """
    import ants

    from neurolearn_cli.smri.template import MASK_THRESHOLD

    image = ants.image_read(str(t1w), pixeltype="float")
    corrected = ants.n4_bias_field_correction(image)
    template = ants.image_read(_mni_file("t1"))
    fixed = template if step == 1 else ants.resample_image(template, (float(step),) * 3, use_voxels=False, interp_type=0)
    registration = ants.registration(fixed=fixed, moving=corrected, type_of_transform="SyN", random_seed=42)
    back = registration["invtransforms"]
    t1 = template.numpy()
    mask_mni = (t1 > MASK_THRESHOLD * t1.max()).astype(np.float32)
    gm, wm = (ants.image_read(_mni_file(name)).numpy() / 255.0 for name in ("gm", "wm"))
    maps = [gm, wm, np.clip(mask_mni - gm - wm, 0.0, 1.0), mask_mni]
    gm, wm, csf, mask_mni = (template.new_image_like(m.astype(np.float32)) for m in maps)
    priors = [ants.apply_transforms(corrected, prior, back, interpolator="linear") for prior in (gm, wm, csf)]
    pulled_mask = ants.apply_transforms(corrected, mask_mni, back, interpolator="linear")
    mask = ants.threshold_image(pulled_mask, 0.5, 1e9)
    tiv_ml = float(pulled_mask.numpy().sum()) * float(np.prod(pulled_mask.spacing)) / 1000
    (out / "tiv.json").write_text(json.dumps({"tiv_ml": tiv_ml}), encoding="utf-8")
    seg = ants.atropos(a=corrected, x=mask, i=priors, m="[0.2,1x1x1]", c="[5,0]", priorweight=0.25)
    ants.image_write(mask, str(out / "mask.nii.gz"))
    ants.image_write(seg["segmentation"], str(out / "dseg.nii.gz"))
    for name, posterior in zip(LABELS.values(), seg["probabilityimages"], strict=True):
        ants.image_write(posterior, str(out / f"label-{name}_probseg.nii.gz"))


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads) and its finished children."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _child(method: str, t1w: Path, out: Path, step: int) -> None:
    """Run one method and write its wall time, CPU time and peak memory next to its outputs."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    {"ours": _run_ours, "ants": _run_ants}[method](t1w, out, step)
    stats = {
        "wall_s": time.perf_counter() - wall,
        "cpu_s": _cpu_seconds() - cpu,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    (out / "stats.json").write_text(json.dumps(stats), encoding="utf-8")


def _etiv_ml() -> float:
    text = ASEG_STATS.read_text(encoding="utf-8")
    return float(re.search(r"EstimatedTotalIntraCranialVol, eTIV, [^,]*, ([0-9.]+)", text).group(1)) / 1000


def _scores(out: Path) -> dict[str, float]:
    """Dice of mask and tissues against fMRIPrep's (reference resampled onto the method's grid by world coordinates)."""
    import torch

    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.resample import resample, resample_labels

    cpu = torch.device("cpu")
    mask = load_image(out / "mask.nii.gz", cpu)
    dseg = load_image(out / "dseg.nii.gz", cpu).data.round()
    reference_mask = resample(load_image(REFERENCE / "sub-0001_desc-brain_mask.nii.gz", cpu), mask.grid, order="nearest")
    reference_dseg = resample_labels(load_image(REFERENCE / "sub-0001_dseg.nii.gz", cpu), mask.grid).data

    def dice(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(2 * (a & b).sum() / (a.sum() + b.sum()))

    ml = float(np.prod(mask.spacing)) / 1000
    inside = mask.data > 0.5
    scores = {"mask": dice(inside, reference_mask.data > 0.5), "mask_ml": float(inside.sum()) * ml}
    for label, name in LABELS.items():
        scores[name] = dice((dseg == label) & inside, reference_dseg == label)
    tiv_ml = json.loads((out / "tiv.json").read_text(encoding="utf-8"))["tiv_ml"]
    scores["TIV_vs_eTIV_pct"] = 100 * (tiv_ml / _etiv_ml() - 1)
    return scores


def _measure(method: str, t1w: Path, work: Path, step: int) -> dict[str, float]:
    out = work / method
    out.mkdir()
    subprocess.run([sys.executable, __file__, "--child", method, str(t1w), str(out), str(step)], check=True)
    return {**json.loads((out / "stats.json").read_text(encoding="utf-8")), **_scores(out)}


COLUMNS = ("wall_s", "cpu_s", "peak_gb", "mask", "GM", "WM", "CSF", "mask_ml", "TIV_vs_eTIV_pct")


def _table(rows: dict[str, dict[str, float]]) -> str:
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.3f}" if abs(row[c]) < 10 else f"{row[c]:.1f}" for c in COLUMNS) + " |")
    if {"neurolearn", "ANTs chain"} <= rows.keys():
        ours, theirs = rows["neurolearn"], rows["ANTs chain"]
        lines.append(
            f"| ratio ANTs / neurolearn | {theirs['wall_s'] / ours['wall_s']:.2f} | {theirs['cpu_s'] / ours['cpu_s']:.2f} | "
            f"{theirs['peak_gb'] / ours['peak_gb']:.2f} |" + " |" * (len(COLUMNS) - 3)
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=1, help="take every STEP-th voxel of the 1 mm T1w")
    parser.add_argument("--skip-ants", action="store_true", help="measure neurolearn only")
    parser.add_argument("--no-write", action="store_true", help="print the table without appending to RESULTS.md")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "T1W", "OUT", "STEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]), Path(args.child[2]), int(args.child[3]))
        return
    import torch

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t1w = _input_image(args.step, work / "t1w.nii.gz")
        rows = {} if args.skip_ants else {"ANTs chain": _measure("ants", t1w, work, args.step)}
        rows["neurolearn"] = _measure("ours", t1w, work, args.step)
    load_end = os.getloadavg()[0]
    import ants

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"aomic sub-0001 T1w at {args.step} mm ({'every voxel' if args.step == 1 else f'one voxel in {args.step} along each axis'}), "
        f"{stamp}; torch {torch.__version__} ({os.environ['OMP_NUM_THREADS']} threads), antspyx {ants.__version__}, "
        f"{os.cpu_count()} CPU cores; load average {load_start:.1f} at start, {load_end:.1f} at end. "
        "Dice against fMRIPrep (world coordinates); TIV = the template brain mask pulled back by each method's "
        "normalization (reverse brain mask) vs FreeSurfer eTIV; "
        "times: wall and CPU seconds (user+system) and peak RSS of each method's own process."
    )
    table = _table(rows)
    print(header)
    print(table)
    if not args.no_write:
        command = "python benchmarks/smri.py" + (f" --step {args.step}" if args.step != 1 else "") + (" --skip-ants" if args.skip_ants else "")
        add_to_section(RESULTS, f"### Run: `{command}`\n\n{header}\n\n{table}\n")


def add_to_section(results: Path, text: str) -> None:
    """Insert ``text`` at the end of the ``SECTION`` part of ``results`` (created at the end of the file if absent)."""
    content = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    start = content.find(SECTION)
    if start < 0:
        content, start = content.rstrip("\n") + f"\n\n{SECTION}\n", len(content.rstrip("\n")) + 2
    following = content.find("\n## ", start + len(SECTION))
    end = len(content) if following < 0 else following + 1
    before = content[:end].rstrip("\n")
    write_text(results, f"{before}\n\n{text}\n{content[end:]}")


if __name__ == "__main__":
    main()

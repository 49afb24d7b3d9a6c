"""Benchmark of neurolearn's registration engine against ANTs, on known ground truth.

Run ``python benchmarks/engine.py [--quick] [--full]``. Cases:

* template registration: nilearn's MNI152 2009 T1 (1 mm) moved by a known
  random affine (<= 10 deg, <= 10 mm, scales 0.9-1.1) and a smooth nonlinear
  warp (<= 4 mm in the brain), several seeds at 2 mm and one at 1 mm; error is
  the distance between the estimated and true fixed -> moving maps inside the
  brain (mean, p95), plus GM Dice after pulling the moving GM map back;
* real scans (studyforrest, aomic T1w) to the template: time and similarity;
* head motion: a 3 mm series with known rigid motion (<= 2 mm, <= 2 deg).

Ours and ANTs get the same arrays with the same geometry (origin 0, identity
direction, isotropic spacing), so their maps compare point for point. The
rich table is printed and a dated section appended to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import os

from neurolearn_cli.engine.threads import MKL_CBWR

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_CBWR", MKL_CBWR)  # MKL reads it at its first call: as the command sets it, before torch
# On a shared, oversubscribed machine run with OMP_WAIT_POLICY=PASSIVE (spinning OpenMP threads
# cost 20x more CPU per small torch op at load 18); on an idle one the default is faster.

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _tables import append_results, cell, markdown_table
from scipy import ndimage as ndi

from neurolearn_cli.engine.allocator import configure_allocation

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NEUROLEARN_TEST_DATA", ROOT.parent / "shared" / "data"))


class Clock:
    """Wall and process CPU seconds (all threads, plus waited-for children) since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def read(self) -> dict:
        return {"time_s": time.perf_counter() - self.wall, "cpu_s": self._cpu() - self.cpu}


def mni_volume(name: str) -> np.ndarray:
    """nilearn's bundled 1 mm MNI152 2009a volume ``name`` (t1, gm, wm, ...) as float32, stored voxel order."""
    import nibabel as nib
    import nilearn

    path = Path(nilearn.__file__).parent / "datasets" / "data" / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"
    return np.asarray(nib.load(path).dataobj, dtype=np.float32)


def downsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """Gaussian anti-aliasing then subsampling ``[::f]`` (voxel j lands at j f mm)."""
    if factor == 1:
        return volume.astype(np.float32)
    sigma = np.sqrt(factor**2 - 1) / 2.355
    return ndi.gaussian_filter(volume.astype(np.float32), sigma)[::factor, ::factor, ::factor].copy()


def euler(angles: np.ndarray) -> np.ndarray:
    """Rotation ``Rz Ry Rx`` from radians."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class KnownWarp:
    """phi: moving space -> fixed space, ``phi(y) = A (y - c) + c + t + u(y)``; moving(y) = fixed(phi(y)).

    ``u`` is trilinear on a Gaussian-smoothed random 8 mm control grid,
    scaled to ``disp_mm`` at most in the brain. The registration's true
    fixed -> moving map is phi's inverse.
    """

    A: np.ndarray
    t: np.ndarray
    c: np.ndarray
    coef: torch.Tensor  # (1, 3, gx, gy, gz) displacement mm on the control grid
    extent: np.ndarray  # mm covered by the control grid along each axis, from 0

    @classmethod
    def random(cls, seed: int, shape_mm: np.ndarray, mask_pts: np.ndarray, disp_mm: float = 4.0) -> KnownWarp:
        rng = np.random.default_rng(seed)
        rot = np.deg2rad(rng.uniform(-10, 10, 3))
        A = euler(rot) @ np.diag(rng.uniform(0.9, 1.1, 3))
        t = rng.uniform(-10, 10, 3)
        cps = [int(np.ceil(s / 8.0)) + 1 for s in shape_mm]
        coef = np.stack([ndi.gaussian_filter(rng.standard_normal(cps), 1.0) for _ in range(3)])
        extent = (np.array(cps) - 1) * 8.0
        warp = cls(A, t, shape_mm / 2.0, torch.from_numpy(coef[None].astype(np.float32)), extent)
        mag = np.linalg.norm(warp.u(mask_pts[::5]), axis=1).max()
        warp.coef *= float(disp_mm / mag)
        return warp

    def u(self, pts: np.ndarray) -> np.ndarray:
        norm = torch.from_numpy((2.0 * pts / self.extent - 1.0)[:, ::-1].astype(np.float32).copy())
        out = F.grid_sample(self.coef, norm.view(1, 1, 1, -1, 3), align_corners=True, padding_mode="border")
        return out[0, :, 0, 0].T.double().numpy()

    def phi(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.c) @ self.A.T + self.c + self.t + self.u(pts)

    def phi_inv(self, pts: np.ndarray, iterations: int = 30) -> np.ndarray:
        """Fixed -> moving truth by fixed-point iteration (u is small and smooth)."""
        a_inv = np.linalg.inv(self.A)
        y = (pts - self.c - self.t) @ a_inv.T + self.c
        for _ in range(iterations):
            y = (pts - self.c - self.t - self.u(y)) @ a_inv.T + self.c
        return y


def grid_points(shape: tuple[int, ...], res: float) -> np.ndarray:
    """World points (N, 3) of every voxel of a grid with origin 0 and spacing ``res``."""
    return np.indices(shape, dtype=np.float64).reshape(3, -1).T * res


def sample_at(volume: np.ndarray, res: float, pts: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``volume`` (voxel j at j res mm) at world points (N, 3), 0 outside."""
    vol = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]
    shape = np.array(volume.shape, dtype=np.float64)
    norm = (2.0 * (pts / res) / (shape - 1) - 1.0)[:, ::-1].astype(np.float32).copy()
    out = F.grid_sample(vol, torch.from_numpy(norm).view(1, 1, 1, -1, 3), align_corners=True)
    return out.view(-1).numpy()


def make_case(seed: int, res: int) -> dict:
    """Fixed = template at ``res`` mm, moving = template pulled through a known warp (made at 1 mm)."""
    t1, gm = mni_volume("t1"), mni_volume("gm") / 255.0
    mask1 = t1 > 0
    pts1 = grid_points(t1.shape, 1.0)
    warp = KnownWarp.random(seed, np.array(t1.shape, dtype=np.float64), pts1[mask1.reshape(-1)])
    src = warp.phi(pts1)
    moving1 = sample_at(t1, 1.0, src).reshape(t1.shape)
    moving_gm1 = sample_at(gm, 1.0, src).reshape(t1.shape)
    fixed = downsample(t1, res)
    case = {
        "res": res,
        "fixed": fixed,
        "fixed_gm": downsample(gm, res),
        "mask": downsample(mask1.astype(np.float32), res) > 0.5,
        "moving": downsample(moving1, res),
        "moving_gm": downsample(moving_gm1, res),
        "warp": warp,
    }
    case["pts"] = grid_points(fixed.shape, res)
    case["truth"] = warp.phi_inv(case["pts"][case["mask"].reshape(-1)])
    return case


def score(case: dict, psi: np.ndarray) -> dict:
    """Error of an estimated fixed -> moving map ``psi`` (all fixed voxels, (N, 3) mm) and GM Dice."""
    inside = case["mask"].reshape(-1)
    err = np.linalg.norm(psi[inside] - case["truth"], axis=1)
    gm_back = sample_at(case["moving_gm"], case["res"], psi).reshape(case["fixed"].shape) > 0.5
    gm_fixed = case["fixed_gm"] > 0.5
    dice = 2.0 * np.logical_and(gm_back, gm_fixed).sum() / (gm_back.sum() + gm_fixed.sum())
    return {"err_mean": float(np.nanmean(err)), "err_p95": float(np.nanpercentile(err, 95)), "dice_gm": float(dice)}


def reference_rows(case: dict) -> list[dict]:
    """Identity (no registration) and the least-squares affine fit of the truth (floor of any affine)."""
    pts, inside = case["pts"], case["mask"].reshape(-1)
    design = np.c_[pts[inside], np.ones(int(inside.sum()))]
    coef, *_ = np.linalg.lstsq(design, case["truth"], rcond=None)
    return [
        {"method": "no registration (identity)", **score(case, pts)},
        {"method": "best affine fit of truth (affine floor)", **score(case, np.c_[pts, np.ones(len(pts))] @ coef)},
    ]


def run_ours(case: dict, transform: str) -> dict:
    """Our ``register`` (template brain mask as fixed mask); time excludes nothing but file IO (none)."""
    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.registration import register

    res = case["res"]
    affine = torch.diag(torch.tensor([res, res, res, 1.0], dtype=torch.float64))
    fixed = Image(torch.from_numpy(case["fixed"]), affine)
    moving = Image(torch.from_numpy(case["moving"]), affine)
    mask = Image(torch.from_numpy(case["mask"].astype(np.float32)), affine)
    clock = Clock()
    result = register(fixed, moving, transform=transform, fixed_mask=mask, device=torch.device("cpu"))
    elapsed = clock.read()
    psi = result.forward.map_points(torch.from_numpy(case["pts"])).numpy()
    return {"method": f"neurolearn {transform}", **elapsed, **score(case, psi)}


def ants_image(array: np.ndarray, res: float):
    """An ANTs image of ``array`` with origin 0 and isotropic ``res`` mm spacing (the benchmarks' shared frame)."""
    import ants

    return ants.from_numpy(np.ascontiguousarray(array, dtype=np.float32), origin=(0.0, 0.0, 0.0), spacing=(float(res),) * 3)


def run_ants(case: dict, kind: str) -> dict:
    """``ants.registration(type_of_transform=kind)``; its map read off by warping coordinate images."""
    import ants

    res = case["res"]
    fixed, moving = ants_image(case["fixed"], res), ants_image(case["moving"], res)
    with tempfile.TemporaryDirectory(prefix="antsreg_") as tmp:
        clock = Clock()
        reg = ants.registration(fixed=fixed, moving=moving, type_of_transform=kind,
                                outprefix=os.path.join(tmp, "r_"), random_seed=42)
        elapsed = clock.read()
        coords = case["pts"].reshape(*case["fixed"].shape, 3)
        psi = np.stack([
            ants.apply_transforms(fixed, ants_image(coords[..., axis], res), reg["fwdtransforms"],
                                  interpolator="linear").numpy().reshape(-1)
            for axis in range(3)
        ], axis=1)
    return {"method": f"ants.registration '{kind}'", **elapsed, **score(case, psi)}


def make_motion(n_vols: int, seed: int = 3, res: int = 3) -> dict:
    """A 3 mm series of the template under known smooth rigid motion (<= 2 mm, <= 2 deg), 2 % noise."""
    from neurolearn_cli.engine.transforms import AffineTransform

    rng = np.random.default_rng(seed)
    t1 = mni_volume("t1")
    smooth = torch.from_numpy(ndi.gaussian_filter(t1, np.sqrt(res**2 - 1) / 2.355))[None, None]
    shape = tuple(int(np.ceil(s / res)) for s in t1.shape)
    walk = ndi.gaussian_filter1d(np.cumsum(rng.standard_normal((n_vols, 6)), axis=0), 2.0, axis=0)
    walk -= walk[0]
    walk /= np.abs(walk).max(axis=0, keepdims=True)
    params = walk * np.r_[[2.0] * 3, [np.deg2rad(2.0)] * 3] * rng.uniform(0.5, 1.0, 6)
    centre = np.array(t1.shape, dtype=np.float64) / 2.0
    truth = AffineTransform.rigid(torch.from_numpy(params[:, 3:]), torch.from_numpy(params[:, :3]), centre)
    pts = torch.from_numpy(grid_points(shape, res))
    inverse = truth.inverse().matrix
    vols = []
    for t in range(n_vols):
        src = pts @ inverse[t, :3, :3].T + inverse[t, :3, 3]
        norm = (2.0 * src / (torch.tensor(t1.shape, dtype=torch.float64) - 1) - 1.0).flip(-1).float()
        vol = F.grid_sample(smooth, norm.view(1, 1, 1, -1, 3), align_corners=True).view(shape)
        vols.append(vol + torch.from_numpy(rng.normal(0, 0.02 * float(t1[t1 > 0].mean()), shape).astype(np.float32)))
    mask = downsample((t1 > 0).astype(np.float32), res)[: shape[0], : shape[1], : shape[2]] > 0.5
    return {"data": torch.stack(vols, -1).numpy(), "truth": truth.matrix.numpy(), "mask": mask, "res": res}


def motion_error(case: dict, maps: np.ndarray) -> dict:
    """Mean brain displacement error (mm) of estimated reference -> volume maps, mean and max over volumes."""
    pts = grid_points(case["mask"].shape, case["res"])[case["mask"].reshape(-1)]
    err = [np.linalg.norm(pts @ (m[:3, :3] - t[:3, :3]).T + (m[:3, 3] - t[:3, 3]), axis=1).mean()
           for m, t in zip(maps, case["truth"], strict=True)]
    return {"err_mean": float(np.mean(err)), "err_p95": float(np.max(err))}


def run_motion_ours(case: dict) -> dict:
    from neurolearn_cli.engine.registration import register_rigid_batched

    res = case["res"]
    affine = torch.diag(torch.tensor([res, res, res, 1.0], dtype=torch.float64))
    series = torch.from_numpy(case["data"])
    mask = torch.from_numpy(case["mask"].astype(np.float32))
    clock = Clock()
    maps = register_rigid_batched(series[..., 0].contiguous(), affine, series, affine, mask=mask)
    elapsed = clock.read()
    return {"method": "neurolearn batched rigid", **elapsed, **motion_error(case, maps.numpy())}


def run_motion_ants(case: dict) -> dict:
    """``ants.motion_correction`` (BOLDRigid) to volume 0; maps from its per-volume transform files."""
    import ants

    res = case["res"]
    image = ants.from_numpy(case["data"], origin=(0.0,) * 4, spacing=(float(res),) * 3 + (1.0,))
    reference = ants_image(case["data"][..., 0], res)
    clock = Clock()
    out = ants.motion_correction(image, fixed=reference, type_of_motion="BOLDRigid")
    elapsed = clock.read()
    maps = []
    for files in out["motion_parameters"]:
        tx = ants.read_transform(files[0])
        p, c = np.asarray(tx.parameters), np.asarray(tx.fixed_parameters)
        m = np.eye(4)
        m[:3, :3] = p[:9].reshape(3, 3)
        m[:3, 3] = p[9:] + c - m[:3, :3] @ c
        maps.append(m)
    return {"method": "ants.motion_correction 'BOLDRigid'", **elapsed, **motion_error(case, np.stack(maps))}


def real_scan_rows(name: str, path: Path, res: int) -> list[dict]:
    """Skull-on T1w to the template (brain mask given to ours): time and correlation in the template brain."""
    import ants
    import nibabel as nib
    from nibabel.processing import resample_to_output

    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.io import load_image
    from neurolearn_cli.engine.registration import register

    t1 = downsample(mni_volume("t1"), res)
    brain = downsample((mni_volume("t1") > 0).astype(np.float32), res) > 0.5
    with tempfile.TemporaryDirectory(prefix="realreg_") as tmp:
        scan = resample_to_output(nib.load(path), voxel_sizes=(res,) * 3, order=1)
        nib.save(scan, os.path.join(tmp, "moving.nii.gz"))
        moving = load_image(os.path.join(tmp, "moving.nii.gz"), torch.device("cpu"))
        affine = torch.diag(torch.tensor([res, res, res, 1.0], dtype=torch.float64))
        fixed = Image(torch.from_numpy(t1), affine)
        clock = Clock()
        ours = register(fixed, moving, transform="syn", fixed_mask=fixed.with_data(torch.from_numpy(brain).float()),
                        device=torch.device("cpu"))
        t_ours = clock.read()
        nib.save(nib.Nifti1Image(t1, affine.numpy()), os.path.join(tmp, "fixed.nii.gz"))
        fixed_ants = ants.image_read(os.path.join(tmp, "fixed.nii.gz"))
        moving_ants = ants.image_read(os.path.join(tmp, "moving.nii.gz"))
        clock = Clock()
        reg = ants.registration(fixed_ants, moving_ants, type_of_transform="SyN", random_seed=42,
                                outprefix=os.path.join(tmp, "a_"))
        t_ants = clock.read()
        warped_ants = reg["warpedmovout"].numpy()
    rows = []
    for method, warped, elapsed in (("neurolearn syn", ours.warped.data.numpy(), t_ours),
                                    ("ants.registration 'SyN'", warped_ants, t_ants)):
        r = float(np.corrcoef(warped[brain], t1[brain])[0, 1])
        rows.append({"case": f"{name} T1w -> MNI {res} mm", "method": method, **elapsed, "corr_brain": r})
    return rows


COLUMNS = ("case", "method", "time_s", "cpu_s", "err_mean", "err_p95", "dice_gm", "corr_brain")
HEADERS = ("case", "method", "wall s", "CPU s", "err mean mm", "err p95 mm (motion: max vol)", "Dice GM", "r in brain")


def registration_rows(
    seeds: list[int], res: int, ants_kinds: list[str], ours: list[str], peak_memory: tuple[str, ...] = ()
) -> list[dict]:
    """Reference, our and ANTs rows per seed, and our peak RSS for each transform in ``peak_memory``."""
    rows = []
    for seed in seeds:
        case = make_case(seed, res)
        label = f"template {res} mm, seed {seed}"
        found = reference_rows(case) + [run_ours(case, k) for k in ours] + [run_ants(case, k) for k in ants_kinds]
        found += [peak_memory_row(case, k) for k in peak_memory]
        for row in found:
            rows.append({"case": label, **row})
            print(label, row, flush=True)
    return rows


def peak_memory_row(case: dict, transform: str) -> dict:
    """Peak resident memory (VmHWM) of our ``register`` in a fresh process (torch import and inputs included)."""
    with tempfile.TemporaryDirectory(prefix="peakmem_") as tmp:
        for name in ("fixed", "moving", "mask"):
            np.save(os.path.join(tmp, f"{name}.npy"), case[name].astype(np.float32))
        out = subprocess.run([sys.executable, __file__, "--peak-memory-child", tmp, transform, str(case["res"])],
                             check=True, capture_output=True, text=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    return {"method": f"neurolearn {transform}: peak RSS {found['peak_gb']:.2f} GB "
                      f"(before registering {found['before_gb']:.2f} GB)", "time_s": found["time_s"],
            "cpu_s": found["cpu_s"]}


def _peak_rss_gb() -> float:
    """This process's peak resident set (``VmHWM``, GB).

    Not ``ru_maxrss``: Linux carries the parent's high-water mark into a
    child across fork and exec, so a child's ``ru_maxrss`` is at least the
    benchmark parent's size.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(row for row in status if row.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024 / 1e9


def peak_memory_child(folder: str, transform: str, res: int) -> None:
    """Run one registration of saved inputs and print peak RSS (GB) and times as JSON."""
    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.registration import register

    torch.set_num_threads(2)
    configure_allocation()
    affine = torch.diag(torch.tensor([res, res, res, 1.0], dtype=torch.float64))
    images = [Image(torch.from_numpy(np.load(os.path.join(folder, f"{n}.npy"))), affine)
              for n in ("fixed", "moving", "mask")]
    before = _peak_rss_gb()
    clock = Clock()
    register(images[0], images[1], transform=transform, fixed_mask=images[2], device=torch.device("cpu"))
    print(json.dumps({"peak_gb": _peak_rss_gb(), "before_gb": before, **clock.read()}))


def warm_up() -> float:
    """Run ours and ANTs once on a small case so one-time start-up costs stay out of the timings.

    The first torch optimizer of a process imports ``torch._dynamo`` (about
    1.5 s here), and ITK registers its factories on first use; a process
    pays these once, whatever it registers afterwards. Returns the seconds spent.
    """
    import ants

    from neurolearn_cli.engine.image import Image
    from neurolearn_cli.engine.registration import register

    clock = Clock()
    small = downsample(mni_volume("t1"), 8)
    affine = torch.diag(torch.tensor([8.0, 8.0, 8.0, 1.0], dtype=torch.float64))
    image = Image(torch.from_numpy(small), affine)
    for transform in ("affine", "syn"):  # the affine's NMI and SyN's NCC + LNCC paths
        register(image, image, transform=transform, device=torch.device("cpu"))
    with tempfile.TemporaryDirectory(prefix="antswarm_") as tmp:
        ants.registration(ants_image(small, 8.0), ants_image(small, 8.0), type_of_transform="SyN",
                          outprefix=os.path.join(tmp, "w_"), random_seed=42)
    return clock.read()["time_s"]


def ratio_lines(rows: list[dict]) -> list[str]:
    """ANTs time / our time for every case with both (wall and CPU; > 1 means we are faster)."""
    pairs = [("neurolearn affine", "ants.registration 'Affine'"), ("neurolearn syn", "ants.registration 'SyN'"),
             ("neurolearn batched rigid", "ants.motion_correction 'BOLDRigid'")]
    lines = []
    for case in dict.fromkeys(r["case"] for r in rows):
        by_method = {r["method"]: r for r in rows if r["case"] == case}
        for ours, theirs in pairs:
            if ours in by_method and theirs in by_method:
                a, b = by_method[theirs], by_method[ours]
                lines.append(f"- {case}: {theirs} / {ours} = {a['time_s'] / b['time_s']:.1f}x wall, "
                             f"{a['cpu_s'] / b['cpu_s']:.1f}x CPU")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one 2 mm seed, 1 mm affine only, 40 motion volumes, one real scan")
    parser.add_argument("--full", action="store_true", help="also antsRegistrationSyN[s] (slow) on one 2 mm seed")
    parser.add_argument("--peak-memory-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_memory_child:
        folder, transform, res = args.peak_memory_child
        peak_memory_child(folder, transform, int(res))
        return
    torch.set_num_threads(2)
    configure_allocation()  # as the neurolearn command does
    load_before = os.getloadavg()[0]
    warm_s = warm_up()
    print(f"warm-up (one-time start-up of ours and ANTs, not timed below): {warm_s:.1f} s", flush=True)
    rows: list[dict] = []
    seeds = [1] if args.quick else [1, 2, 3]
    rows += registration_rows(seeds, 2, ["Affine", "SyN"], ["affine", "syn"])
    if args.full:
        rows += [r for r in registration_rows([1], 2, ["antsRegistrationSyN[s]"], []) if "ants" in r["method"]]
    if args.quick:
        rows += registration_rows([1], 1, ["Affine"], ["affine"], peak_memory=("affine", "syn"))
    else:
        rows += registration_rows([1], 1, ["Affine", "SyN"], ["affine", "syn"], peak_memory=("affine", "syn"))
    motion = make_motion(40 if args.quick else 200)
    label = f"head motion, {motion['data'].shape[-1]} vols 3 mm"
    for row in (run_motion_ours(motion), run_motion_ants(motion)):
        rows.append({"case": label, **row})
        print(label, row, flush=True)
    real = [("aomic", DATA / "aomic" / "bids" / "sub-0001" / "anat" / "sub-0001_T1w.nii.gz")]
    if not args.quick:
        real.append(("studyforrest", DATA / "studyforrest" / "bids" / "sub-02" / "anat" / "sub-02_T1w.nii.gz"))
    for name, path in real:
        if path.is_file():
            rows += real_scan_rows(name, path, 2)
    print_and_record(rows, args, load_before, warm_s)


def print_and_record(rows: list[dict], args: argparse.Namespace, load_before: float, warm_s: float) -> None:
    """Print a rich table and append a dated markdown section to ``benchmarks/RESULTS.md``."""
    import ants
    from rich.console import Console
    from rich.table import Table

    table = Table(title="neurolearn registration engine vs ANTs (CPU)")
    for header in HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*(cell(row.get(c)) for c in COLUMNS))
    Console().print(table)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    mode = "quick" if args.quick else "default" + (" + full" if args.full else "")
    lines = [
        f"\n## Registration engine ({mode} run, {stamp})\n",
        f"`python benchmarks/engine.py{' --quick' if args.quick else ''}{' --full' if args.full else ''}`; "
        f"torch {torch.__version__} (2 threads), antspyx {ants.__version__}, {os.cpu_count()} CPU cores. "
        f"Load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end (this run counts about 2; "
        "more means other jobs shared the cores). Both methods ran once on a small case "
        f"first ({warm_s:.1f} s, one-time start-up), and ours with glibc's malloc keeping freed memory "
        "(`engine.allocator`, as the neurolearn command runs). Ours gets the template brain mask as "
        "fixed mask; ANTs runs with its defaults. Motion: error = mean brain displacement, p95 column = worst volume. "
        "CPU s = process user + system time of all threads (ANTs runs in-process through antspyx); "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (libgomp default)')}. Peak-memory rows run "
        "ours alone in a fresh "
        "process (VmHWM, torch and the inputs included).\n",
        markdown_table(rows, COLUMNS, HEADERS),
    ]
    lines += ["", "Speed ratios (ANTs / ours, measured minutes apart in this run):", *ratio_lines(rows)]
    append_results("\n".join(lines))


if __name__ == "__main__":
    main()

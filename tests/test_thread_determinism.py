"""The same bytes whatever ``--omp-nthreads``: smri, fmri and qc on a real scan with 1 and 2 threads, ``neurolearn
register`` on 1 and 2 torch threads; the fixed-order sum under them on 1 to 4 (3: a split that is not a power of two)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from nilearn import datasets
from scipy import ndimage

from neurolearn_cli.engine.reduce import CHUNK, fixed_mean, fixed_sum, serial
from neurolearn_cli.verify import verify

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("shape", "start_dim"), [((3 * CHUNK + 5,), 0), ((1, 133574), 1), ((4, 40000), 1),
                                                  ((96, 64, 64), 0), ((7,), 0), ((), 0)])
def test_fixed_sum_is_the_sum_on_any_thread_count(shape: tuple[int, ...], start_dim: int,
                                                  threads: Callable[[int], None]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 100
    sums = []
    for count in (1, 2, 3, 4):
        threads(count)
        sums.append(fixed_sum(x, start_dim))
    assert all(torch.equal(sums[0], other) for other in sums[1:])
    expected = x.double().sum(dim=tuple(range(start_dim, x.dim()))) if x.dim() else x.double()
    torch.testing.assert_close(sums[0].double(), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(fixed_mean(x, start_dim), sums[0] / (x.numel() // max(1, sums[0].numel())))


def test_fixed_sum_is_differentiable_and_takes_a_dtype() -> None:
    x = torch.rand(2, 20000, requires_grad=True)
    fixed_sum(x * x, 1).sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, 2 * x.detach())
    assert fixed_sum(x.detach(), dtype=torch.float64).dtype == torch.float64


def test_serial_restores_the_thread_count(threads: Callable[[int], None]) -> None:
    threads(2)
    with serial():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


@pytest.mark.slow
def test_smri_fmri_qc_write_the_same_bytes_on_1_and_2_threads(
    shared_data: Path, real_scan_copy: Callable[..., Path], tmp_path: Path
) -> None:
    source = shared_data / "xa30" / "bids"
    bids = real_scan_copy(source, "sub-01/anat/sub-01_acq-tfl_T1w.nii.gz")
    real_scan_copy(source, "sub-01/func/sub-01_task-fa_run-1_bold.nii.gz", root=bids)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    outputs = []
    for count in (1, 2):
        out = tmp_path / f"out{count}"
        subprocess.run([sys.executable, "-m", "neurolearn_cli", str(bids), str(out), "participant",
                        "--omp-nthreads", str(count), "-q"], check=True, cwd=REPO, env=env, timeout=1800)
        outputs.append(out)
    report = verify(outputs[0], against=outputs[1])
    assert report.checked > 0
    assert (report.changed, report.missing, report.extra) == ([], [], [])


def test_register_writes_the_same_bytes_on_1_and_2_threads(
    shared_data: Path, cli: Callable[..., tuple[int, str, str]], threads: Callable[[int], None], tmp_path: Path
) -> None:
    """A real T1w to the bundled template at 2 mm (rigid), all outputs; run in-process on 1 and 2 torch threads.

    The template is anti-aliased as ``benchmarks/engine.py`` does: its smooth tails make intensities over many
    orders of magnitude, whose float64 sums (the centres of mass of the start) are not exact, so a thread split
    shows in the affine's last bits (integer scans sum exactly).
    """
    template = nib.load(datasets.MNI152_FILE_PATH)
    smoothed = ndimage.gaussian_filter(np.asarray(template.dataobj, dtype=np.float32), math.sqrt(3) / 2.355)
    fixed = tmp_path / "template.nii.gz"
    nib.save(nib.Nifti1Image(smoothed[::2, ::2, ::2], np.diag([2.0, 2.0, 2.0, 1.0])), fixed)
    moving = shared_data / "xa30" / "bids" / "sub-01" / "anat" / "sub-01_acq-tfl_T1w.nii.gz"
    outputs = []
    for count in (1, 2):
        threads(count)
        out = tmp_path / f"out{count}"
        out.mkdir()
        code, _, err = cli("register", str(fixed), str(moving), "-o", str(out / "reg_"), "--transform", "rigid")
        assert code == 0, err
        outputs.append(out)
    names = sorted(path.name for path in outputs[0].iterdir())
    assert names == sorted(path.name for path in outputs[1].iterdir()) and len(names) == 3
    assert [name for name in names if (outputs[0] / name).read_bytes() != (outputs[1] / name).read_bytes()] == []

"""Resolve the compute device once and make runs deterministic.

Every heavy step receives the :class:`torch.device` chosen here; no step asks
torch what hardware is present (FastSurfer's ``find_device`` idea).
"""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

from neurolearn_cli.errors import UsageError


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``--device`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) into a torch device.

    ``auto`` picks CUDA when it is available, else the CPU. Asking for CUDA
    where there is none raises :class:`UsageError` naming ``--device``.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {spec}: CUDA is not available on this machine (use --device cpu or auto)")
        index = 0 if spec == "cuda" else spec.split(":", 1)[1]
        if not str(index).isdigit() or int(index) >= torch.cuda.device_count():
            raise UsageError(
                f"--device {spec}: no such CUDA device ({torch.cuda.device_count()} available)"
            )
        return torch.device(f"cuda:{int(index)}")
    raise UsageError(f"--device {spec}: expected auto, cpu, cuda or cuda:N")


def describe_device(device: torch.device | str) -> str:
    """The device in words, for the methods text: ``CPU``, or ``GPU (its name, CUDA version)``."""
    device = torch.device(device)
    if device.type != "cuda":
        return "CPU"
    return f"GPU ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"


def configure_determinism(seed: int, threads: int | None = None) -> None:
    """Seed torch, numpy and random; turn on deterministic algorithms.

    ``warn_only`` keeps CUDA kernels without a deterministic version (e.g.
    ``grid_sample``'s backward) usable, and torch's warning about each such
    kernel is kept off the console: which kernels those are is a property of
    the build, stated once in the README, not news about the data.
    ``CUBLAS_WORKSPACE_CONFIG`` is set so cuBLAS is deterministic too, and
    cuDNN's convolutions compute in full float32 rather than TF32 (whose
    10-bit mantissa would make CUDA's smoothing differ from the CPU's in the
    third digit). ``threads`` sets torch's intra-op threads
    (``--omp-nthreads``). The flag is set on torch's core directly:
    ``torch.use_deterministic_algorithms`` also sets ``torch.compile``'s
    (inductor's) flag, which nothing here compiles for, and importing
    inductor for it imports ``torch._dynamo``, seconds of start-up.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if threads:
        torch.set_num_threads(int(threads))
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    warnings.filterwarnings("ignore", message=".*does not have a deterministic implementation", category=UserWarning)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.allow_tf32 = False

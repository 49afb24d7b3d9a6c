"""Device resolution and determinism."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from neurolearn_cli.engine.device import configure_determinism, describe_device, resolve_device
from neurolearn_cli.errors import UsageError


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_cuda_without_cuda_names_the_option(spec):
    with pytest.raises(UsageError, match=f"--device {spec}: CUDA is not available"):
        resolve_device(spec)


def test_unknown_device():
    with pytest.raises(UsageError, match="expected auto, cpu"):
        resolve_device("tpu")


def test_seeding_repeats_random_streams():
    configure_determinism(5, threads=1)
    first = (torch.rand(3), np.random.rand(3))
    configure_determinism(5, threads=1)
    second = (torch.rand(3), np.random.rand(3))
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == 1


def test_warnings_about_nondeterministic_cuda_kernels_stay_off_the_console():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configure_determinism(0)
        warnings.warn("grid_sampler_3d_backward_cuda does not have a deterministic implementation, but you set "
                      "'torch.use_deterministic_algorithms(True, warn_only=True)'.", UserWarning, stacklevel=1)
        warnings.warn("a warning about the data", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning about the data"]


def test_the_methods_text_names_the_cpu_in_words():
    assert describe_device(torch.device("cpu")) == describe_device("cpu") == "CPU"

"""Our Adam and L-BFGS against torch.optim's: the same numbers, without importing torch's compiler."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from neurolearn_cli.engine.optimizers import LBFGS, Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_takes_torchs_steps(dtype: torch.dtype) -> None:
    generator = torch.Generator().manual_seed(0)
    target = torch.randn(40, 3, generator=generator, dtype=dtype)
    start = torch.randn(40, 3, generator=generator, dtype=dtype)
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    mine, reference = Adam(ours, lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    for _ in range(60):
        for param, optimizer in ((ours, mine), (theirs, reference)):
            optimizer.zero_grad()
            ((param - target) ** 4).sum().backward()
            optimizer.step()
        assert torch.equal(ours, theirs)


def test_adam_needs_a_gradient() -> None:
    with pytest.raises(RuntimeError, match="no gradient"):
        Adam(torch.zeros(3, requires_grad=True), lr=0.1).step()


def test_adam_leaves_the_compiler_unimported() -> None:
    """torch.optim's classes import torch._dynamo (seconds) on first use; ours does not."""
    code = ("import sys, torch\nfrom neurolearn_cli.engine.optimizers import Adam\n"
            "x = torch.ones(3, requires_grad=True)\nopt = Adam(x, lr=0.1)\n"
            "(x ** 2).sum().backward()\nopt.step()\nprint('torch._dynamo' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_lbfgs_steps_as_torch_optim() -> None:
    """The start-up-free L-BFGS takes torch.optim.LBFGS's steps exactly (guards against torch changing its state)."""
    target = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)

    def run(make) -> torch.Tensor:
        params = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        optimizer = make(params)

        def closure() -> torch.Tensor:
            params.grad = None
            loss = ((params - target) ** 4).sum() + (params[0] * params[1] - 1.0) ** 2
            loss.backward()
            return loss

        for _ in range(2):
            optimizer.step(closure)
        return params.detach()

    options = {"max_iter": 7, "history_size": 3, "tolerance_grad": 1e-9, "tolerance_change": 1e-12}
    ours = run(lambda p: LBFGS(p, **options))
    theirs = run(lambda p: torch.optim.LBFGS([p], lr=1.0, line_search_fn="strong_wolfe", **options))
    assert torch.equal(ours, theirs)

"""Sums and linear solves whose result does not depend on the number of CPU threads.

Torch splits a reduction to a single value (``x.sum()``, ``x.mean()``, one sum
per batch item of a small batch) into one range per thread and adds the
partial sums, so the last bits depend on ``torch.get_num_threads()`` (and so
did every smri output downstream of them). :func:`fixed_sum` cuts the values
into chunks of ``CHUNK`` elements instead: torch sums each chunk within one
thread (a reduction to many values is split over the values) and the chunk
sums are then too few to be split. Autograd sums the gradient of a broadcast
value the torch way; :func:`fixed_expand` broadcasts with a :func:`fixed_sum`
backward. LAPACK's solvers split their work over threads as well;
:func:`serial` runs a block on one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

#: Elements per chunk (below torch's parallel grain of 32768, so a chunk is never split).
CHUNK = 8192


def fixed_sum(x: torch.Tensor, start_dim: int = 0, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Sum of ``x`` over its dimensions from ``start_dim`` on, shape ``x.shape[:start_dim]``, same on any thread count.

    ``dtype`` is the accumulation (and result) type, as in ``torch.sum``.
    Differentiable.
    """
    flat = (x if dtype is None else x.to(dtype)).flatten(start_dim) if start_dim < x.dim() else x[..., None]
    size = flat.shape[-1]
    whole = size - size % CHUNK
    chunks = flat[..., :whole].unflatten(-1, (whole // CHUNK, CHUNK)).sum(-1)
    tail = flat[..., whole:].sum(-1, keepdim=True)
    return torch.cat([chunks, tail], dim=-1).sum(-1)


class _FixedExpand(torch.autograd.Function):
    """``x.expand(..., size)`` of a (..., 1) tensor; the backward sums with :func:`fixed_sum`."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: int) -> torch.Tensor:
        return x.expand(*x.shape[:-1], size)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return fixed_sum(grad, grad.dim() - 1)[..., None], None


def fixed_expand(x: torch.Tensor, size: int) -> torch.Tensor:
    """Broadcast the last dimension (of size 1) of ``x`` to ``size``, with a gradient that does not depend on threads."""
    result: torch.Tensor = _FixedExpand.apply(x, size)
    return result


def fixed_mean(x: torch.Tensor, start_dim: int = 0) -> torch.Tensor:
    """Mean of ``x`` over its dimensions from ``start_dim`` on, same on any thread count (see :func:`fixed_sum`)."""
    count = x[(0,) * start_dim].numel() if start_dim else x.numel()
    return fixed_sum(x, start_dim) / count


@contextmanager
def serial() -> Iterator[None]:
    """Run the block on one intra-op thread (LAPACK factorizations split their work by thread count)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

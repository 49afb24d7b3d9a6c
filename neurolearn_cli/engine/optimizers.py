"""Gradient-based optimizers on one parameter tensor, with torch's arithmetic but not its ``Optimizer`` machinery.

The optimizer classes of ``torch.optim`` import ``torch._dynamo`` the first
time one is built or cleared (``add_param_group`` and ``zero_grad`` are
wrapped to keep the compiler out): about two seconds of start-up in every
process that fits a registration, a coregistration, a fieldmap or a sphere
registration, for a compiler nothing here uses. :class:`Adam` takes torch's
single-tensor Adam steps (its defaults: no weight decay, no AMSGrad) and
:class:`LBFGS` runs torch's own L-BFGS iterations, so a fit gives the same
numbers as with ``torch.optim``. Clear a gradient with ``param.grad = None``.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict

import torch


class Adam:
    """Adam's update of the leaf tensor ``param`` (``requires_grad``) with step size ``lr``."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.steps = 0

    def zero_grad(self) -> None:
        """Forget the last gradient (torch's ``set_to_none``)."""
        self.param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Move ``param`` by one step along its current gradient's running moments."""
        grad = self.param.grad
        if grad is None:
            raise RuntimeError("Adam.step: the parameter has no gradient (call backward first)")
        beta1, beta2 = self.betas
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.steps)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-(self.lr / (1 - beta1**step)))


class LBFGS(torch.optim.LBFGS):
    """torch's L-BFGS (strong-Wolfe line search) on one parameter tensor, without ``Optimizer.__init__``.

    ``Optimizer.__init__`` imports ``torch._dynamo`` (its ``add_param_group``
    is wrapped for ``torch.compile``), seconds of a process's start-up that
    nothing here uses. The state is set up as ``torch.optim.LBFGS`` sets it,
    so ``step`` runs torch's own iterations unchanged, with the step hooks it
    reads once any torch optimizer has wrapped ``step`` for the profiler.
    """

    def __init__(self, params: torch.Tensor, *, max_iter: int, history_size: int,
                 tolerance_grad: float, tolerance_change: float) -> None:
        self.defaults = {"lr": 1.0, "max_iter": max_iter, "max_eval": max_iter * 5 // 4,
                         "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                         "history_size": history_size, "line_search_fn": "strong_wolfe"}
        self.state = defaultdict(dict)
        self.param_groups = [{"params": [params], **self.defaults}]
        self._params = [params]
        self._numel_cache = None
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()

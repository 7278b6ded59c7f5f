"""Perturbing the architecture for the weight step: the seam SDARTS-RS/ADV and MS-DARTS share.

All of them take the DARTS arch step on the clean alphas, then train the network weights at a point
near softmax(alpha) and keep the alphas. Here the perturbed point is only ever handed to the weight
step as mixing weights (`weight_step_weights`), so the alphas are never overwritten and "restore the
alphas afterwards" holds by construction, with no copy to get wrong.

This module is not a plug-in (it registers nothing); it holds the pieces the variants share: the
simplex clip, the exact projection onto (epsilon-box ∩ simplex), the epsilon ramp, an eval-mode
context and the `PerturbedWeightStep` base class whose subclasses override only `epsilon()` and
`perturb()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optimizers.base import Batch, OneShotOptimizer

LossFn = Callable[[Sequence[Tensor]], Tensor]


def simplex_clip(t: Tensor) -> Tensor:
    """Per row (last dim): clamp to [0, 1], then renormalize to sum 1 (SDARTS' and MS-DARTS' `clip`).

    A row that clamps to all zeros becomes one-hot at its largest entry, as in the reference code.
    Works on any leading dims (e.g. N stacked samples), without a host sync.
    """
    c = t.clamp(0.0, 1.0)
    s = c.sum(-1, keepdim=True)
    alive = s > 0
    onehot = F.one_hot(t.argmax(-1), t.shape[-1]).to(t.dtype)
    return torch.where(alive, c, onehot) / torch.where(alive, s, torch.ones_like(s))


def project_box_simplex(y: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Euclidean projection of each row of `y` onto {x : lo <= x <= hi, sum(x) = 1}.

    The solution is clamp(y - tau, lo, hi) for the scalar tau (per row) that makes the row sum 1.
    The row sum is piecewise linear and non-increasing in tau with breakpoints y - hi and y - lo, so
    tau is found exactly by evaluating the sum at the sorted breakpoints and interpolating on the
    segment that crosses 1. Needs sum(lo) <= 1 <= sum(hi) per row (true for a box around a simplex
    point intersected with [0, 1]).
    """
    n = y.shape[-1]
    bp = torch.cat([y - hi, y - lo], dim=-1).sort(dim=-1).values  # (..., 2n)
    sums = (y.unsqueeze(-2) - bp.unsqueeze(-1)).clamp(lo.unsqueeze(-2), hi.unsqueeze(-2)).sum(-1)
    # sums is non-increasing along the breakpoints: the first index with sum <= 1 ends the segment.
    j = (sums > 1).sum(-1, keepdim=True).clamp(1, 2 * n - 1)
    b0, b1 = bp.gather(-1, j - 1), bp.gather(-1, j)
    s0, s1 = sums.gather(-1, j - 1), sums.gather(-1, j)
    frac = torch.where(s0 > s1, (s0 - 1) / (s0 - s1).clamp_min(torch.finfo(y.dtype).tiny), 0.0)
    tau = b0 + frac.clamp(0, 1) * (b1 - b0)
    return (y - tau).clamp(lo, hi)


def linear_ramp(start: float, end: float, epoch: int, epochs: int) -> float:
    """start + (end - start) * epoch / epochs: the SDARTS / MS-DARTS radius schedule (reference code).

    Note the reference divides by `epochs`, not `epochs - 1`, so the last epoch stays just below `end`.
    """
    return start + (end - start) * epoch / max(epochs, 1)


def uniform_like(t: Tensor, radius: float, generator: torch.Generator | None = None) -> Tensor:
    """i.i.d. U(-radius, radius) noise of t's shape, dtype and device."""
    return torch.empty_like(t).uniform_(-radius, radius, generator=generator)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """BatchNorm on running statistics (and no statistic updates) inside; the old mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class PerturbedWeightStep(OneShotOptimizer):
    """DARTS arch step, then a weight step at `perturb(softmax(alpha))`; the alphas stay untouched.

    Subclasses implement `epsilon()` (the current radius) and `perturb(clean, batch_train, epsilon)`.
    """

    def epsilon(self) -> float:
        raise NotImplementedError

    def perturb(self, clean: list[Tensor], batch_train: Batch, epsilon: float) -> list[Tensor]:
        raise NotImplementedError

    def weight_step_weights(self, batch_train: Batch) -> list[Tensor]:
        with torch.no_grad():
            clean = self.arch_weights(self.ctx.alphas)  # computed once per step, after the arch step
        return self.perturb(clean, batch_train, self.epsilon())

    def batch_loss(self, batch: Batch) -> LossFn:
        """Mixing weights -> mean cross-entropy on `batch` (the caller picks train/eval and grad mode)."""
        x, y = batch
        return lambda weights: F.cross_entropy(self.forward(x, weights), y)

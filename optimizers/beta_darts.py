"""beta-DARTS (Ye et al., CVPR 2022, "beta-DARTS: Beta-Decay Regularization for Differentiable
Architecture Search"): first-order DARTS plus the beta-decay loss on the architecture parameters.

Released code: github.com/Sunshine-Ye/Beta-DARTS, `optimizers/darts/architect.py` (`mlc_loss` and
`_backward_step`), used by its `nasbench201/train_search.py`. The arch step minimizes

    L_val(w, alpha) + lambda(epoch) * mean over rows of logsumexp(alpha_row),

with `weights = 0 + 50*epoch/100` in the release: a linear ramp from 0 at epoch 0 to 50 after its
100 epochs. Here lambda(epoch) = lambda_max * epoch / epochs, scaled to the run's epoch budget, so the
paper preset's 100 epochs give the release's schedule exactly and shorter runs still reach the full
ramp. At epoch 0 the weight is 0 and the term is not even computed: the first epoch is `darts`,
bit for bit.

Adaptation to NAS-Bench-1Shot1: the release regularizes one (edges x ops) tensor (NAS-Bench-201),
the mean of logsumexp over its rows. Here every softmax row counts as one of those rows: the op rows
of the choice blocks, each node's input-edge row and the output row, pooled into one mean (the
release's NAS-Bench-1Shot1 port passes its list of alpha tensors to `mlc_loss` unchanged, which
cannot run). The weight step, the arch optimizer (Adam, lr 3e-4, betas (0.5, 0.999), wd 1e-3) and
the discretization are DARTS'. Second order (`--set unrolled=true`) adds the term to the validation
loss only; the release's unrolled path leaves it out. The Hessian eigenvalue is measured on the
validation cross-entropy like every other optimizer's, without the regularizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import Batch
from optimizers.darts import Darts, DartsHyperparameters
from optimizers.registry import register


@dataclass
class BetaDartsHyperparameters(DartsHyperparameters):
    lambda_max: float = 50.0  # beta-decay weight after the last epoch; epoch e uses lambda_max * e / epochs

    def __post_init__(self) -> None:
        if not self.lambda_max >= 0:
            raise ConfigError(f"--set lambda_max={self.lambda_max}: the regularization weight must be >= 0")


def beta_decay(alphas: Sequence[Tensor]) -> Tensor:
    """The release's `mlc_loss`: mean over all alpha rows of logsumexp(row)."""
    return torch.cat([torch.logsumexp(a, dim=-1).flatten() for a in alphas]).mean()


def beta_weight(lambda_max: float, epoch: int, epochs: int) -> float:
    """Linear ramp 0 -> lambda_max over the run (the release: 50 * epoch / 100)."""
    return lambda_max * epoch / epochs


@register("beta-darts")
class BetaDarts(Darts):
    label = "Beta-DARTS"
    reference_epochs = 100  # the release's train_search.py default
    Hyperparameters = BetaDartsHyperparameters
    tunable = {"lambda_max": Range(5.0, 200.0, log=True)}

    def regularization_weight(self) -> float:
        return beta_weight(self.hp.lambda_max, self.epoch, self.ctx.epochs)

    def arch_loss(self, batch: Batch, alphas: Sequence[Tensor]) -> Tensor:
        loss = super().arch_loss(batch, alphas)
        weight = self.regularization_weight()
        return loss + weight * beta_decay(alphas) if weight else loss

    def _train_loss(self, batch: Batch, alphas: list[Tensor]) -> Tensor:
        return super().arch_loss(batch, alphas)  # second order: the training loss has no regularizer

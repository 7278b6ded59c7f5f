"""DrNAS (Chen et al., ICLR 2021, "DrNAS: Dirichlet Neural Architecture Search"): mixing weights are
samples of Dirichlet distributions whose concentrations the arch step learns.

Released code: github.com/xiangning-chen/DrNAS, `201-space/search_model.py` (`_loss`, `_get_kl_reg`,
`forward`), `utils.py` (`process_step_vector` / `process_step_matrix`: one
`Dirichlet(elu(alpha) + 1).rsample()` per row) and `architect.py` (with `--reg_type kl` the arch Adam
has no weight decay). Per forward pass each row of alphas draws one sample w ~ Dir(beta),
beta = elu(alpha) + 1, shared by all cells; gradients reach the alphas through the pathwise (implicit
reparameterization) derivative of `rsample`. The arch loss is CE + reg_scale * sum over rows of
KL(Dir(beta) || Dir(1)), the KL anchor of `--reg_type kl` (`reg_scale` 1e-3, the release's default).
The weight step trains on a fresh sample, as the release's `model(input)` does.
`--set reg_type=l2` drops the KL term; the release's l2 is then the arch Adam's weight decay
(`--set a_weight_decay=0.001`), which the presets set to 0 for the default kl.

Adaptation to NAS-Bench-1Shot1: every alpha row is a Dirichlet, the op rows of the choice blocks and
the input-edge and output rows alike (each is a simplex of mixing weights in this supernet), sampled row
by row in alpha order as the release's loop does. Discretization is the trainer's argmax / top-k of
the alphas, which equals that of the Dirichlet mean beta / sum(beta) (elu + 1 is monotone) and of the
release's `genotype()` (softmax). Deterministic weights (one-shot accuracy, the Hessian, both
`hessian_weights` modes) are the Dirichlet mean: the second derivative of `rsample` with respect to the
concentration is not implemented in PyTorch (it comes out as zero), so a sampled Hessian would be wrong.
Budget: 100 epochs and arch lr 3e-4, the release's NAS-Bench-201 script.

Progressive learning (the release's DARTS-space scheme: partial channels K = 6 -> 3, pruning the ops to
the best half between two 25-epoch stages, widening the network with net2wider) is left out: it exists
to fit the 8-op DARTS space in GPU memory, whereas NAS-Bench-1Shot1 blocks have three ops (pruning to
half leaves one or two) and the release ran NAS-Bench-201 without it. PC-DARTS' partial channels are
available as their own plug-in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Dirichlet, kl_divergence

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import Batch, OneShotOptimizer
from optimizers.registry import register

REG_TYPES = ("kl", "l2")


@dataclass
class DrnasHyperparameters:
    reg_type: str = "kl"  # kl: the KL anchor below; l2: no extra term (use a_weight_decay)
    reg_scale: float = 1e-3  # weight of sum KL(Dir(beta) || Dir(1))

    def __post_init__(self) -> None:
        if self.reg_type not in REG_TYPES:
            raise ConfigError(f"--set reg_type={self.reg_type}: choose {' or '.join(REG_TYPES)}")
        if not self.reg_scale >= 0:
            raise ConfigError(f"--set reg_scale={self.reg_scale}: the regularization weight must be >= 0")


def concentration(alpha: Tensor) -> Tensor:
    return F.elu(alpha) + 1


def dirichlet_sample(alphas: Sequence[Tensor]) -> list[Tensor]:
    """One reparameterized sample per row (the release's `process_step_matrix(x, 'dirichlet', None)`)."""
    return [torch.stack([Dirichlet(concentration(row)).rsample() for row in a]) for a in alphas]


def dirichlet_mean(alphas: Sequence[Tensor]) -> list[Tensor]:
    out = []
    for a in alphas:
        beta = concentration(a)
        out.append(beta / beta.sum(-1, keepdim=True))
    return out


def kl_to_uniform(alphas: Sequence[Tensor]) -> Tensor:
    """sum over rows of KL(Dir(elu(alpha) + 1) || Dir(1)) (the release's `_get_kl_reg` before scaling)."""
    return sum(
        kl_divergence(Dirichlet(concentration(a)), Dirichlet(torch.ones_like(a))).sum() for a in alphas
    )  # type: ignore[return-value]


@register("drnas")
class Drnas(OneShotOptimizer):
    label = "DrNAS"
    reference_epochs = 100
    Hyperparameters = DrnasHyperparameters
    tunable = {"reg_scale": Range(1e-4, 1e-1, log=True)}

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"a_weight_decay": 0.0}  # reg_type kl: the release's arch Adam has no weight decay

    def arch_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return dirichlet_sample(alphas)

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return dirichlet_mean(alphas)

    def hessian_mixing(self) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        return dirichlet_mean  # see the module doc: no second derivative through rsample

    def arch_loss(self, batch: Batch, alphas: Sequence[Tensor]) -> Tensor:
        loss = super().arch_loss(batch, alphas)
        if self.hp.reg_type == "kl":
            loss = loss + self.hp.reg_scale * kl_to_uniform(alphas)
        return loss

"""FairDARTS (Chu et al., ECCV 2020, "Fair DARTS: Eliminating Unfair Advantages in Differentiable
Architecture Search"): independent sigmoid mixing weights instead of a softmax, plus the zero-one loss.

Released code: github.com/xiaomi-automl/FairDARTS, `fairdarts/model_search.py` (`F.sigmoid` of the
alphas as mixing weights), `fairdarts/separate_loss.py` (`ConvSeparateLoss`: CE - w01 * MSE(sigmoid(alpha),
0.5), the default `--sep_loss l2`; `TriSeparateLoss` with L1 is `--set zero_one=l1`) and
`fairdarts/architect.py` (the arch step on that loss, Adam lr 3e-3, betas (0.9, 0.999), wd 1e-3),
with `--aux_loss_weight 10` and 50 epochs in `fairdarts/train_search.py`. The zero-one term has no
weight gradient, so the weight step is DARTS' (at sigmoid weights).

Adaptation to NAS-Bench-1Shot1: every mixing weight is an independent sigmoid, the op weights of each
choice block and also the input-edge and output weights (the release's DARTS cell has no separate edge
parameters: its per-edge op sigmoids play both roles). The zero-one loss takes the mean over all
alphas of all tensors together, as the release concatenates its normal and reduce alphas.
Discretization: the release keeps ops whose sigmoid exceeds a threshold (0.85); a NAS-Bench-1Shot1 cell
needs exactly one op per block and a fixed number of parents per node, which the trainer takes as the
argmax / top-k of the alphas. Sigmoid is monotone, so that is the argmax / top-k of the sigmoid values
the method ranks by. The paper preset uses the release's arch optimizer (lr 3e-3, beta1 0.9) and its 50
epochs; the supernet's weight training keeps the benchmark's shared protocol. The Hessian and one-shot
accuracy use the sigmoid weights (the network the method trains and reads off).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import Batch, OneShotOptimizer
from optimizers.registry import register

ZERO_ONE_LOSSES = ("l2", "l1")


@dataclass
class FairDartsHyperparameters:
    w01: float = 10.0  # weight of the zero-one loss (--aux_loss_weight)
    zero_one: str = "l2"  # l2: -MSE(sigmoid, 0.5) (ConvSeparateLoss); l1: -L1 (TriSeparateLoss)

    def __post_init__(self) -> None:
        if not self.w01 >= 0:
            raise ConfigError(f"--set w01={self.w01}: the zero-one loss weight must be >= 0")
        if self.zero_one not in ZERO_ONE_LOSSES:
            raise ConfigError(f"--set zero_one={self.zero_one}: choose {' or '.join(ZERO_ONE_LOSSES)}")


def sigmoid_weights(alphas: Sequence[Tensor]) -> list[Tensor]:
    return [torch.sigmoid(a) for a in alphas]


def zero_one_loss(alphas: Sequence[Tensor], kind: str = "l2") -> Tensor:
    """-distance of every sigmoid(alpha) from 0.5: minimizing it pushes each weight towards 0 or 1."""
    s = torch.cat([torch.sigmoid(a).flatten() for a in alphas])
    half = torch.full_like(s, 0.5)
    return -(F.mse_loss(s, half) if kind == "l2" else F.l1_loss(s, half))


@register("fair-darts")
class FairDarts(OneShotOptimizer):
    label = "FairDARTS"
    reference_epochs = 50
    Hyperparameters = FairDartsHyperparameters
    tunable = {"w01": Range(1.0, 50.0, log=True)}

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"a_lr": 3e-3, "a_beta1": 0.9}

    def arch_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return sigmoid_weights(alphas)

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return sigmoid_weights(alphas)

    def arch_loss(self, batch: Batch, alphas: Sequence[Tensor]) -> Tensor:
        return super().arch_loss(batch, alphas) + self.hp.w01 * zero_one_loss(alphas, self.hp.zero_one)

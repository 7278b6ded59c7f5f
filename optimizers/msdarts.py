"""MS-DARTS (Hsieh et al., 2021): train the weights at a mean-shift estimate around the architecture.

Algorithm 2 of the paper: the unchanged DARTS arch step on the clean alphas; then A = softmax(alpha)
moves by T mean-shift iterations (Algorithm 1, `mean_shift`) over N uniform samples in the epsilon-box,
weighted by softmax(sample losses) times a Gaussian kernel of bandwidth h on each arch tensor; the
weight step uses the shifted A directly as mixing weights (no softmax); the alphas are never modified.
The radius ramps per epoch from epsilon/10 to epsilon.

Faithful to the released code: samples are clipped to the simplex (per row clamp to [0, 1],
renormalize) for their loss and kernel distance, but the mean is taken over the UNclipped samples and
the result is not clipped, so the mixing weights may leave the simplex. `--set clip_result=true`
clips the final A.

Cost: N * T extra forward passes per step, run in eval mode under `torch.inference_mode` (no autograd
graph, no network copy); softmax(alpha) is computed once per step and each sample is clipped once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import Batch
from optimizers.perturb import LossFn, PerturbedWeightStep, eval_mode, linear_ramp, simplex_clip
from optimizers.registry import register


@dataclass
class MsDartsHyperparameters:
    epsilon: float = 0.25  # final sampling radius; epoch 0 uses epsilon / 10
    bandwidth: float = 1.0  # Gaussian kernel bandwidth h
    samples: int = 3  # N samples per iteration
    iterations: int = 2  # T mean-shift iterations
    clip_result: bool = False  # clip the shifted A to the simplex (the released code does not)

    def __post_init__(self) -> None:
        if self.epsilon < 0:
            raise ConfigError(f"--set epsilon={self.epsilon}: the radius must be >= 0")
        if not self.bandwidth > 0:
            raise ConfigError(f"--set bandwidth={self.bandwidth}: the bandwidth must be > 0")
        if self.samples < 1 or self.iterations < 1:
            raise ConfigError(
                f"--set samples={self.samples} iterations={self.iterations}: both must be at least 1"
            )


@register("msdarts")
class MsDarts(PerturbedWeightStep):
    label = "MS-DARTS"
    reference_epochs = 80
    Hyperparameters = MsDartsHyperparameters
    tunable = {"epsilon": Range(0.05, 0.5), "bandwidth": Range(0.1, 10.0, log=True)}

    def epsilon(self) -> float:
        return linear_ramp(self.hp.epsilon / 10, self.hp.epsilon, self.epoch, self.ctx.epochs)

    def perturb(self, clean: list[Tensor], batch_train: Batch, epsilon: float) -> list[Tensor]:
        hp = self.hp
        loss = self.batch_loss(batch_train)
        with eval_mode(self.ctx.model), torch.no_grad():
            shifted = mean_shift(clean, loss, epsilon, hp.bandwidth, hp.iterations, hp.samples)
            return [simplex_clip(a) for a in shifted] if hp.clip_result else shifted


def mean_shift(
    centre: Sequence[Tensor],
    loss_fn: LossFn,
    epsilon: float,
    bandwidth: float,
    iterations: int,
    samples: int,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Algorithm 1: `iterations` mean-shift steps from `centre` (one tensor per arch tensor).

    Each iteration draws `samples` points C + U(-eps, eps) around the current centre C, evaluates
    `loss_fn` at their simplex clips (under inference mode: no graph) and moves C to
    `mean_shift_update`. With the same random draws, T iterations equal T single-iteration calls.
    """
    current = [c.detach() for c in centre]
    for _ in range(iterations):
        perturbed = [
            c.unsqueeze(0)
            + torch.empty((samples, *c.shape), dtype=c.dtype, device=c.device).uniform_(
                -epsilon, epsilon, generator=generator
            )
            for c in current
        ]
        clipped = [simplex_clip(p) for p in perturbed]
        with torch.inference_mode():
            losses = torch.stack([loss_fn([c[p] for c in clipped]).detach() for p in range(samples)])
        current = mean_shift_update(current, perturbed, clipped, losses.clone(), bandwidth)
    return current


def mean_shift_update(
    centre: Sequence[Tensor],
    perturbed: Sequence[Tensor],
    clipped: Sequence[Tensor],
    losses: Tensor,
    bandwidth: float,
) -> list[Tensor]:
    """One mean-shift step: A_i = sum_p w_pi * perturbed_pi with w_pi ∝ softmax(losses)_p * g_pi.

    `perturbed[i]` / `clipped[i]` stack the N samples of arch tensor i (shape (N, *shape_i));
    `losses` has shape (N,). The kernel g_pi = exp(-||C_i - clipped_pi||_F^2 / (2 h^2)) / (h sqrt(2 pi))
    is per arch tensor; its constant factor cancels. The product softmax(losses) * g is normalized
    in log space, so a tiny bandwidth picks the nearest sample instead of dividing 0 by 0.
    """
    out = []
    for c, pert, clip in zip(centre, perturbed, clipped, strict=True):
        sq_dist = (clip - c.unsqueeze(0)).pow(2).flatten(1).sum(1)  # (N,)
        weights = torch.softmax(losses.to(c.dtype) - 0.5 * sq_dist / bandwidth**2, dim=0)
        out.append(torch.tensordot(weights, pert, dims=1))
    return out

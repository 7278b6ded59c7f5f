"""SDARTS (Chen & Hsieh, ICML 2020): train the weights at a perturbed architecture.

Both variants take the unchanged DARTS arch step, then move the mixing weights A = softmax(alpha)
within an L-infinity ball of radius epsilon (ramped per epoch from 0.03 to 0.3), keep them on the
simplex, and take the weight step there (A used as is, no softmax). The alphas are never modified.

- `sdarts-rs`: A + U(-eps, eps), then the simplex clip (per row clamp to [0, 1], renormalize).
- `sdarts-adv`: 7-step L-infinity PGD that maximizes the training-batch loss: random start in the
  box, steps of 2 eps / 7 along the sign of the gradient, projection after each step; in eval mode
  (BatchNorm on running statistics); if the attacked loss ends below the clean loss, the clean A is
  used.

Projection (ADV): the released code (SDARTS `attacker/perturb.py`) clamps to the box and then applies
the simplex clip, which can leave the box again (the renormalization rescales the row). The paper preset
does the same (`projection=clip`, the default); the corrected preset projects exactly onto the
intersection of the box and the simplex (`projection=exact`), so the perturbation provably stays within
epsilon.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import Batch
from optimizers.perturb import (
    LossFn,
    PerturbedWeightStep,
    eval_mode,
    linear_ramp,
    project_box_simplex,
    simplex_clip,
    uniform_like,
)
from optimizers.registry import register

PROJECTIONS = ("exact", "clip")


@dataclass
class SdartsRSHyperparameters:
    epsilon_min: float = 0.03  # radius at epoch 0
    epsilon_max: float = 0.3  # radius the linear ramp heads for (reached after the last epoch)

    def __post_init__(self) -> None:
        if not 0 <= self.epsilon_min <= self.epsilon_max:
            raise ConfigError(
                f"--set epsilon_min={self.epsilon_min} epsilon_max={self.epsilon_max}: "
                "need 0 <= epsilon_min <= epsilon_max"
            )


@dataclass
class SdartsADVHyperparameters(SdartsRSHyperparameters):
    steps: int = 7  # PGD iterations; the step size is 2 * epsilon / steps
    projection: str = "clip"  # clip: the released code's box clamp + simplex clip; exact: onto box ∩ simplex

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps < 1:
            raise ConfigError(f"--set steps={self.steps}: need at least 1 PGD step")
        if self.projection not in PROJECTIONS:
            raise ConfigError(f"--set projection={self.projection}: choose exact or clip")


@register("sdarts-rs")
class SdartsRS(PerturbedWeightStep):
    """Random smoothing: a uniform perturbation of the mixing weights for each weight step."""

    label = "SDARTS-RS"
    reference_epochs = 100
    Hyperparameters = SdartsRSHyperparameters
    tunable = {"epsilon_max": Range(0.05, 0.6)}  # SDARTS-ADV inherits it

    def epsilon(self) -> float:
        return linear_ramp(self.hp.epsilon_min, self.hp.epsilon_max, self.epoch, self.ctx.epochs)

    def perturb(self, clean: list[Tensor], batch_train: Batch, epsilon: float) -> list[Tensor]:
        with torch.no_grad():
            return [simplex_clip(c + uniform_like(c, epsilon)) for c in clean]


@register("sdarts-adv")
class SdartsADV(SdartsRS):
    """Adversarial smoothing: the mixing weights the PGD attack on the training loss finds."""

    label = "SDARTS-ADV"
    Hyperparameters = SdartsADVHyperparameters

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"projection": "exact"} if preset == "corrected" else {}

    def perturb(self, clean: list[Tensor], batch_train: Batch, epsilon: float) -> list[Tensor]:
        with eval_mode(self.ctx.model):
            weights, _, _ = pgd_attack(
                clean, self.batch_loss(batch_train), epsilon, self.hp.steps, self.hp.projection
            )
        return weights


def pgd_attack(
    clean: Sequence[Tensor], loss_fn: LossFn, epsilon: float, steps: int, projection: str = "exact"
) -> tuple[list[Tensor], Tensor, Tensor]:
    """L-infinity PGD ascent on `loss_fn` around the simplex point `clean` (one tensor per arch tensor).

    Returns (weights, attacked loss, clean loss); `weights` is `clean` itself when the attack ended
    below the clean loss. Gradients are taken w.r.t. the mixing weights only, so no weight gradients
    are computed; the caller chooses the model mode (SDARTS-ADV: eval).
    """
    clean = [c.detach() for c in clean]
    lo = [(c - epsilon).clamp_min(0.0) for c in clean]
    hi = [(c + epsilon).clamp_max(1.0) for c in clean]

    def project(points: Sequence[Tensor]) -> list[Tensor]:
        if projection == "exact":
            return [project_box_simplex(p, lo_i, hi_i) for p, lo_i, hi_i in zip(points, lo, hi, strict=True)]
        return [simplex_clip(torch.minimum(torch.maximum(p, lo_i), hi_i)) for p, lo_i, hi_i in
                zip(points, lo, hi, strict=True)]  # fmt: skip

    step = 2.0 * epsilon / steps
    with torch.no_grad():
        clean_loss = loss_fn(clean)
        current = project([c + uniform_like(c, epsilon) for c in clean])
    for _ in range(steps):
        current = [p.requires_grad_(True) for p in current]
        grads = torch.autograd.grad(loss_fn(current), current, allow_unused=True)
        with torch.no_grad():
            moved = [p if g is None else p + step * g.sign() for p, g in zip(current, grads, strict=True)]
            current = project(moved)
    with torch.no_grad():
        attacked_loss = loss_fn(current)
    if attacked_loss < clean_loss:
        return clean, attacked_loss, clean_loss
    return current, attacked_loss, clean_loss

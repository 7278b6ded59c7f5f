"""SNAS (Xie et al., ICLR 2019, "SNAS: Stochastic Neural Architecture Search"): every step samples the
architecture from a relaxed concrete (Gumbel-softmax) distribution, softly, at an annealed temperature.

There is no official release of the paper's full code. Followed here: the paper's Section 2 (the
relaxed one-hot Z = softmax((log alpha + G) / lambda), G ~ Gumbel(0, 1), forward and gradient both
through the soft Z) and the public implementation by the SNAS authors' group, SNAS-Series/SNAS-Series,
`SNAS/model_search.py` (`_get_categ_mask`: softmax((log_alpha - log(-log U)) / temp), one sample per
forward shared by every cell of a type), `SNAS/train_search.py` (arch gradient clipped to norm 10,
Adam 3e-4, 150 epochs) and `SNAS/utils.py` (`Temp_Scheduler`).

Temperature (decision): the release anneals linearly from `--temp 1` to `--temp_min 0.03`, stepping
once before each epoch, so epoch e trains at temp_min + (temp - temp_min) * (1 - (e + 1) / 150) (the
150 is hard-coded in `decay_whole_process`, equal to its default `--epochs 150`); the last epoch trains
at 0.03. Here the 150 is the run's epochs, so every run ends at tau_min whatever its length.

Adaptation to NAS-Bench-1Shot1 (decisions): the op choice of each choice block and the input/output
edge weights of each node are all sampled softly (the release samples its edge-op alphas; here the
edges carry their own alphas, relaxed the same way), and every op runs (the soft sample mixes them all).
One sample is shared by all cells (the release's default `_resample_layer=False`); `per_cell=true`
draws one per cell. The resource (FLOPs/params) term is off (`--resource_efficient` is an option of
the release). The release trains weights and alphas on the same training batch with one backward; the
harness keeps its shared protocol (alphas on the validation half, then weights on the training half,
each with a fresh sample), so SNAS is compared with the other plug-ins under the same split.

The sampler and the GDAS plug-in share `optimizers.gdas.gumbel_mixing`; SNAS is GDAS with soft op
weights, every op running, its own temperature schedule, and the softmax (not the argmax cell) for the
one-shot evaluation and the deterministic weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bench.settings import Range
from optimizers.base import OneShotOptimizer
from optimizers.gdas import Gdas, check_temperature, gumbel_mixing, gumbel_noise
from optimizers.registry import register


@dataclass
class SnasHyperparameters:
    tau_max: float = 1.0  # initial temperature (release: --temp 1)
    tau_min: float = 0.03  # temperature of the last epoch (release: --temp_min 0.03)
    arch_grad_clip: float = 10.0  # max norm of the arch gradient (release: clip_grad_norm_(arch, 10.))
    per_cell: bool = False  # one sample shared by all cells, as the release

    def __post_init__(self) -> None:
        check_temperature(self)


def snas_tau(tau_max: float, tau_min: float, epoch: int, epochs: int) -> float:
    """The release's `Temp_Scheduler` with its 150 epochs replaced by the run's `epochs`."""
    return max(tau_min + (tau_max - tau_min) * (1 - (epoch + 1) / max(epochs, 1)), tau_min)


def relaxed_sample(
    alphas: Sequence[Tensor],
    tau: float,
    num_cells: int | None = None,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """SNAS' relaxed one-hot sample softmax((alpha + G) / tau) of every alpha row (differentiable)."""
    return gumbel_mixing(gumbel_noise(alphas, num_cells, generator), tau, hard_ops=False)(alphas)


@register("snas")
class Snas(Gdas):
    label = "SNAS"
    reference_epochs = 150  # SNAS/README.md: --epochs 150
    Hyperparameters = SnasHyperparameters
    tunable = {"tau_max": Range(0.3, 3.0, log=True), "tau_min": Range(0.01, 0.3, log=True)}
    hard_ops = False
    # Every op runs with its soft weight, and the method infers at softmax(alpha), as DARTS.
    forward = OneShotOptimizer.forward
    oneshot_weights = OneShotOptimizer.oneshot_weights

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        OneShotOptimizer.on_epoch_start(self, epoch)
        self.tau = snas_tau(self.hp.tau_max, self.hp.tau_min, epoch, self.ctx.epochs)

    def arch_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return relaxed_sample(alphas, self.tau, self.num_cells)

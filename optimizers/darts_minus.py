"""DARTS- (Chu et al., ICLR 2021, "DARTS-: Robustly Stepping out of Performance Collapse Without
Indicators"): first-order DARTS plus an auxiliary skip connection, scaled by a coefficient beta that
decays to 0 over the search, around every mixed op.

Released code: Meituan-AutoML/DARTS-, `src/search/model_search.py` (`MixedOp.forward`:
`res += self.auxiliary_op(x) * beta_decay_scheduler.decay_rate`, an `Identity()` at stride 1) with the
schedule `src/utils.py` (`DecayScheduler`, `decay_type='linear'`) stepped at the start of every epoch in
`src/search/train_search.py`; `scripts/run_darts_minus.sh` runs it with `--skip_beta 1 --decay linear
--auxiliary_skip` and the defaults `--epochs 50 --decay_max_epoch 50 --decay_start_epoch 0`, so epoch e
trains with beta = beta_0 * (50 - e) / 50 (1 at epoch 0, 0.02 at the last epoch, 49).

Schedule (decision): scaled to the run's epochs, beta = beta_0 * (E - e) / E, so a run of any length
decays as the release's 50 epochs do; `beta_schedule=constant` keeps beta_0 throughout (with
`beta=0` the auxiliary path is switched off and the run is `darts`, bit for bit).

Adaptation to NAS-Bench-1Shot1 (decision): its cells have no skip operation and no op on the input
edges, only a mixed op (max-pool, 3x3 and 1x1 conv) per choice block on C -> C channels, at stride 1.
The auxiliary path is therefore an identity around each choice block's mixed op: the block outputs
sum_o w_o op_o(x) + beta * x, where x is the block's (weighted) input. This is the release's placement
(inside `MixedOp`, an identity because every NAS-Bench-1Shot1 op keeps the stride and the width),
rather than around the cell, whose input and output widths differ (C_in vs C*B). It is added by a
forward hook on the supernet's `MixedOp`s, so the supernet stays unchanged and the path is there in
every forward the run makes (search steps, Hessian, one-shot evaluation), as in the release, where the
auxiliary op is part of `MixedOp.forward`. The alphas never see the path's coefficient: it is not
learned, only annealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from bench.errors import ConfigError
from bench.search.supernet import MixedOp
from optimizers.base import SearchContext
from optimizers.darts import Darts, DartsHyperparameters
from optimizers.registry import register

BETA_SCHEDULES = ("linear", "constant")


@dataclass
class DartsMinusHyperparameters(DartsHyperparameters):
    beta: float = 1.0  # beta_0, the auxiliary skip's coefficient at epoch 0 (release: --skip_beta 1)
    beta_schedule: str = "linear"  # linear: beta_0 * (E - e) / E (release); constant: beta_0 throughout

    def __post_init__(self) -> None:
        if not self.beta >= 0:
            raise ConfigError(f"--set beta={self.beta}: the auxiliary skip's coefficient must be >= 0")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ConfigError(
                f"--set beta_schedule={self.beta_schedule}: choose {' or '.join(BETA_SCHEDULES)}"
            )


def skip_beta(beta0: float, epoch: int, epochs: int, schedule: str = "linear") -> float:
    """The release's linear `DecayScheduler` with T_start = 0 and T_max = the run's epochs."""
    if schedule == "constant":
        return beta0
    return beta0 * (epochs - epoch) / max(epochs, 1)


@register("darts-minus")
class DartsMinus(Darts):
    label = "DARTS-"
    reference_epochs = 50  # scripts/run_darts_minus.sh: args.py's --epochs 50
    Hyperparameters = DartsMinusHyperparameters

    def __init__(self, ctx: SearchContext, hp: DartsMinusHyperparameters) -> None:
        super().__init__(ctx, hp)
        self.beta = skip_beta(hp.beta, 0, ctx.epochs, hp.beta_schedule)
        for module in ctx.model.modules():
            if isinstance(module, MixedOp):
                module.register_forward_hook(self._auxiliary_skip)

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {}  # the release's 50 epochs under every preset (Darts' corrected budget is also 50)

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.beta = skip_beta(self.hp.beta, epoch, self.ctx.epochs, self.hp.beta_schedule)

    def _auxiliary_skip(self, module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> Tensor | None:
        if self.beta == 0:
            return None  # no path at all: the output is darts' own, bit for bit
        x = inputs[0]
        return output + self.beta * x

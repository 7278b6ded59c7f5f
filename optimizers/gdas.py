"""GDAS (Dong & Yang, CVPR 2019): sample one op per choice block with hard Gumbel-softmax.

As in the NAS-Bench-1Shot1 port: the op alphas go through `gumbel_softmax(hard=True)`, a
straight-through one-hot, and only the selected op runs (the supernet's `op_choice`); the input and
output alphas use the soft `gumbel_softmax(hard=False)` (the port found hard ones gave exploding
gradients). The temperature falls linearly per epoch from tau_max = 10: with `tau_schedule=scripts`
(paper) as NAS-Bench-1Shot1's `optimizers/gdas/train_search.py`, tau_max - (tau_max - tau_min) * epoch /
epochs (the decrement (max - min) / epochs runs after each epoch's training, so the last epoch trains
at 1.09); with `endpoints` (corrected) tau_max - (tau_max - tau_min) * epoch / (epochs - 1), reaching
tau_min = 1 at the last epoch. (The original GDAS paper anneals 10 -> 0.1.) Arch gradients are clipped
to norm 5 before the Adam step.

Hessian (`hessian_mixing`, used with the paper's `hessian_weights=search`): as SDARTS/MS-DARTS' GDAS
script measured it, through GDAS' own forward: one Gumbel sample at the current tau (per cell), hard
straight-through ops and soft edges, the sampled ops only. Stochastic, and ~1/tau^2 in scale
(d/d alpha = (1/tau) d/d logits). The noise is drawn once per measurement, so every Hessian-vector
product differentiates the same function.

Training speed: on the embedded benchmark GDAS's supernet learns far more slowly than DARTS' (0.19
training accuracy after 100 weight steps against 1.00). Its forward and step equal an independent
re-implementation of the reference's (tests/optimizers/test_gdas.py); the cause is single-path training
itself, which the uniform single-path baseline shares (docs/digits-benchmark.md, GDAS section).

Sampling granularity (decision): like the reference port, which calls `gumbel_softmax` inside its
per-cell loop, every cell draws its own Gumbel noise (`per_cell=true`, via the supernet's leading
num_cells dimension); `--set per_cell=false` shares one sample among all cells.

The weight step trains on a fresh sample (GDAS trains the weights on sampled architectures). The
Hessian is measured through GDAS's own Gumbel forward at the current tau (`hessian_weights=search`,
paper) or at plain softmax(alpha), which is deterministic (`hessian_weights=eval`, corrected).

One-shot evaluation (`oneshot_weights`): the most likely (argmax) cell with one-hot weights, run through
`forward`, so each block passes on its chosen op's output unscaled and each node sums its chosen parents:
the discrete network GDAS would return, and the kind of input its supernet trained on (a sampled op times
its straight-through weight of 1). Softmax(alpha) mixing weights with only the argmax op running would
scale every block's output by its softmax probability, an input the supernet never saw; the
reference's `infer` instead evaluates a fresh Gumbel sample at the current tau, which is stochastic.
Caveat, measured: in eval mode this cell sees BatchNorm running statistics collected on sampled networks
with soft edges, and reads near chance; with statistics re-estimated for it, it reads what the supernet
can do (0.80 against 0.20 after 100 paper epochs; docs/digits-benchmark.md, GDAS section).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import OneShotOptimizer, SearchContext
from optimizers.registry import register


def check_temperature(hp: Any) -> None:
    """The settings every Gumbel-sampling plug-in shares (GDAS, SNAS): a temperature range and a clip."""
    if not 0 < hp.tau_min <= hp.tau_max:
        raise ConfigError(f"--set tau_min={hp.tau_min} tau_max={hp.tau_max}: need 0 < tau_min <= tau_max")
    if not hp.arch_grad_clip > 0:
        raise ConfigError(f"--set arch_grad_clip={hp.arch_grad_clip}: must be > 0")


@dataclass
class GdasHyperparameters:
    tau_max: float = 10.0  # temperature at epoch 0
    tau_min: float = 1.0  # temperature at the last epoch
    arch_grad_clip: float = 5.0  # max norm of the arch gradient (all alphas together)
    per_cell: bool = True  # independent Gumbel samples per cell, as the reference port
    tau_schedule: str = "scripts"  # scripts: tau_max - (max - min) * e / E; endpoints: ... * e / (E - 1)

    def __post_init__(self) -> None:
        check_temperature(self)
        if self.tau_schedule not in TAU_SCHEDULES:
            raise ConfigError(f"--set tau_schedule={self.tau_schedule}: choose {' or '.join(TAU_SCHEDULES)}")


TAU_SCHEDULES = ("scripts", "endpoints")


def gumbel_noise(
    alphas: Sequence[Tensor], num_cells: int | None, generator: torch.Generator | None = None
) -> list[Tensor]:
    """Gumbel(0, 1) noise per alpha tensor (per cell: a leading `num_cells` dim), drawn as
    F.gumbel_softmax draws it (-log Exp(1)); the global RNG unless `generator` is given."""
    noise = []
    for a in alphas:
        shape = (num_cells, *a.shape) if num_cells is not None else a.shape
        e = torch.empty(shape, dtype=a.dtype, device=a.device).exponential_(generator=generator)
        noise.append(-e.log())
    return noise


def gumbel_mixing(
    noise: Sequence[Tensor], tau: float, hard_ops: bool = True
) -> Callable[[Sequence[Tensor]], list[Tensor]]:
    """alpha -> softmax((alpha + noise) / tau) per row, F.gumbel_softmax's computation with the noise
    given; with `hard_ops` the op weights (the first tensor) are a straight-through one-hot (GDAS),
    without they stay the soft relaxed sample (SNAS). Edges are always soft."""

    def mix(alphas: Sequence[Tensor]) -> list[Tensor]:
        out = []
        for k, (a, g) in enumerate(zip(alphas, noise, strict=True)):
            soft = F.softmax((a.expand(g.shape) + g) / tau, dim=-1)
            if k == 0 and hard_ops:  # hard one-hot forward, soft gradient (straight-through)
                hard = F.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft.dtype)
                soft = hard - soft.detach() + soft
            out.append(soft)
        return out

    return mix


def gdas_tau(tau_max: float, tau_min: float, epoch: int, epochs: int, schedule: str = "endpoints") -> float:
    """Linear per-epoch schedule from tau_max at epoch 0. `endpoints`: tau_min at epoch `epochs - 1`;
    `scripts`: steps of (tau_max - tau_min) / epochs, so tau_min would come after the last epoch."""
    steps = epochs if schedule == "scripts" else max(epochs - 1, 1)
    return tau_max - (tau_max - tau_min) * epoch / steps


@register("gdas")
class Gdas(OneShotOptimizer):
    label = "GDAS"
    reference_epochs = 100
    Hyperparameters = GdasHyperparameters
    tunable = {"tau_max": Range(2.0, 20.0, log=True), "tau_min": Range(0.1, 2.0, log=True)}
    hard_ops: ClassVar[bool] = True  # straight-through one-hot op weights (SNAS, a subclass: soft)

    def __init__(self, ctx: SearchContext, hp: GdasHyperparameters) -> None:
        super().__init__(ctx, hp)
        self.tau = hp.tau_max
        # Models without cells (test doubles) get one sample shared by everything.
        self.num_cells: int | None = getattr(ctx.model, "num_cells", None) if hp.per_cell else None

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        return {"tau_schedule": "endpoints"} if preset == "corrected" else {}

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self.tau = gdas_tau(self.hp.tau_max, self.hp.tau_min, epoch, self.ctx.epochs, self.hp.tau_schedule)

    def hessian_mixing(self) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        """GDAS' own sample at the current tau, with Gumbel noise drawn now, once (see the module doc)."""
        return self.gumbel_mixing(gumbel_noise(self.ctx.alphas, self.num_cells), self.tau)

    def gumbel_mixing(
        self, noise: Sequence[Tensor], tau: float
    ) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        """alpha -> this method's mixing weights for fixed Gumbel `noise` (see `gumbel_mixing`)."""
        return gumbel_mixing(noise, tau, hard_ops=self.hard_ops)

    def arch_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        """Hard (straight-through) Gumbel one-hots for the ops, soft Gumbel weights for the rest."""
        out = []
        for k, a in enumerate(alphas):
            logits = a.expand(self.num_cells, *a.shape) if self.num_cells is not None else a
            out.append(F.gumbel_softmax(logits, tau=self.tau, hard=k == 0, dim=-1))
        return out

    def oneshot_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        """The argmax cell as 0/1 mixing weights (one op per block, top-k parents), shared by all cells."""
        space, ref = self.ctx.space, alphas[0]
        return space.one_hot(space.argmax_architecture(alphas), dtype=ref.dtype, device=ref.device)

    def forward(self, x: Tensor, weights: Sequence[Tensor]) -> Tensor:
        """Runs only the op each (cell and) block sampled: the argmax of its one-hot op weights."""
        return self.ctx.model(x, weights, op_choice=weights[0].detach().argmax(-1))

    def apply_arch_grads(self, grads: Sequence[Tensor]) -> None:
        for a, g in zip(self.ctx.alphas, grads, strict=True):
            a.grad = g
        nn.utils.clip_grad_norm_(self.ctx.alphas, self.hp.arch_grad_clip)
        self.ctx.a_optim.step()

"""The plug-in interface every one-shot optimizer implements.

The trainer owns the data, the epoch loop, the torch optimizers and every measurement; a plug-in
only decides how alphas become mixing weights and what one search step does. The default step is
first-order DARTS (arch step on a validation batch, then a weight step on a training batch), and
each hook below is a seam a variant can override without copying the rest:

- `arch_weights(alphas)`: alphas -> mixing weights for the arch step (softmax, Gumbel, ...).
- `arch_step(batch_val)`: update the alphas.
- `weight_step_weights(batch_train)`: the mixing weights the weight step trains with; the seam
  where SDARTS and MS-DARTS perturb the architecture.
- `eval_weights(alphas)` / `oneshot_weights(alphas)`: the deterministic mixing weights the Hessian
  (`--set hessian_weights=eval`) / the one-shot accuracy (and the correlation analysis) measure at.
- `hessian_mixing()`: the function alpha -> mixing weights the Hessian differentiates with the paper's
  `hessian_weights=search`: by default the arch step's `arch_weights`, run through `forward`
  (GDAS: its Gumbel sample at the current tau, noise frozen for the measurement).
- `preset_settings(preset)`: the method's own protocol under a preset (epoch budget, RSWS's batch
  size and clip, ...), applied by bench.runs.config after the preset's run settings.
- `forward(x, weights)`: how the supernet is called (GDAS passes the sampled op per block).
- `on_epoch_start(epoch)`: schedules (temperature, perturbation radius, ...).
- `on_epoch_end(epoch)`: after the epoch's steps, before discretization (RSWS picks its incumbent).
- `extra_state()` / `load_extra_state()`: anything beyond the alphas and torch optimizers.

How to add an optimizer (one file plus its tests): docs/adding_an_optimizer.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.settings import Range

Batch = tuple[Tensor, Tensor]


@dataclass
class NoHyperparameters:
    """A plug-in without hyperparameters of its own."""


@dataclass
class SearchContext:
    """What a plug-in may touch: the supernet, the alphas and the two torch optimizers."""

    model: nn.Module
    space: Any  # bench.search.spaces.SearchSpace
    alphas: list[Tensor]
    w_optim: torch.optim.Optimizer
    a_optim: torch.optim.Optimizer
    grad_clip: float
    epochs: int
    weight_params: list[Tensor] = field(default_factory=list)
    # False: zero the weight gradients in place, as PyTorch 1.3 did, so weights a step did not use still
    # move by weight decay and momentum (the scripts); True: set them to None, those weights stand still.
    zero_grad_set_to_none: bool = True
    # epoch -> an endless stream of validation batches (successive shuffled passes over the architecture
    # half, each ending with its smaller last batch, augmented like the search data), for plug-ins that
    # score candidates on data of their own (RSWS); None where no data were built (unit tests).
    validation_stream: Callable[[int], Iterator[Batch]] | None = None
    validation_pass: int | None = None  # batches in one such pass


@dataclass
class StepStats:
    """Training-batch statistics of one weight step."""

    loss: float
    correct: int
    n: int


def row_softmax(alphas: Sequence[Tensor]) -> list[Tensor]:
    return [F.softmax(a, dim=-1) for a in alphas]


class OneShotOptimizer:
    """First-order DARTS behaviour; subclasses override only what differs."""

    name: ClassVar[str] = ""
    # How figures and tables spell the method (the paper's spelling); `register` defaults it to `name`.
    label: ClassVar[str] = ""
    reference_epochs: ClassVar[int] = 50
    Hyperparameters: ClassVar[type] = NoHyperparameters
    # Search ranges of the plug-in's own settings (fields of Hyperparameters) for `python -m bench.hpo`;
    # the trainer's (learning rates, weight decay, momentum, batch size) are in bench/runs/hpo.py.
    tunable: ClassVar[dict[str, Range]] = {}

    def __init__(self, ctx: SearchContext, hp: Any) -> None:
        self.ctx = ctx
        self.hp = hp
        self.epoch = 0

    @classmethod
    def supernet_kwargs(cls, hp: Any) -> dict[str, Any]:
        """Extra `Supernet(...)` arguments this optimizer needs (PC-DARTS: partial channels)."""
        return {}

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        """Run settings or hyperparameters of this plug-in that its protocol sets under the preset layer
        `preset` ("paper", "corrected", "quick"), on top of that layer's run settings; e.g.
        {"epochs": 50}. Explicit `--set` values still win. Default: nothing beyond the preset."""
        return {}

    @classmethod
    def check_run(cls, cfg: Any, hp: Any) -> None:
        """Raise bench.errors.ConfigError if this plug-in cannot run with the run's settings `cfg`
        (a bench.runs.config.RunConfig); called when the config validates itself."""
        return None

    # ---- hooks ---------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int) -> None:
        """After the epoch's search steps, before the trainer discretizes and measures the alphas."""
        return None

    def arch_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return row_softmax(alphas)

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        """Mixing weights at which the Hessian is measured (deterministic, differentiable in alphas)."""
        return row_softmax(alphas)

    def hessian_mixing(self) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        """alpha -> mixing weights for the Hessian as the method searches (`hessian_weights=search`),
        run through `forward`. Called once per measurement, and every call of the function it returns
        must give the same weights for the same alphas (Lanczos may evaluate it once per Hessian-vector
        product): a stochastic method draws its noise here, once. Default: `arch_weights`."""
        return self.arch_weights

    def oneshot_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        """Mixing weights at which the one-shot accuracy measures the supernet: the way this method
        infers. Softmax methods evaluate the continuous relaxation; a sampling method (GDAS, ENAS, RSWS)
        overrides this with the one-hot weights of the architecture it would pick, since its supernet
        never trained on softmax-scaled single ops. `forward(x, weights)` runs them."""
        return self.eval_weights(alphas)

    def forward(self, x: Tensor, weights: Sequence[Tensor]) -> Tensor:
        return self.ctx.model(x, weights)

    def arch_loss(self, batch: Batch, alphas: Sequence[Tensor]) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.forward(x, self.arch_weights(alphas)), y)

    def arch_step(self, batch_val: Batch, batch_train: Batch | None = None) -> None:
        """First-order DARTS: one Adam step on the validation loss, gradients for alphas only.

        `batch_train` is there for second-order variants, which need the training loss too.
        """
        alphas = self.ctx.alphas
        self.ctx.a_optim.zero_grad(set_to_none=True)
        loss = self.arch_loss(batch_val, alphas)
        grads = torch.autograd.grad(loss, alphas)
        self.apply_arch_grads(grads)

    def apply_arch_grads(self, grads: Sequence[Tensor]) -> None:
        for a, g in zip(self.ctx.alphas, grads, strict=True):
            a.grad = g
        self.ctx.a_optim.step()

    def weight_step_weights(self, batch_train: Batch) -> list[Tensor]:
        """Mixing weights for the weight step; constants, so no gradient reaches the alphas."""
        with torch.no_grad():
            return self.arch_weights(self.ctx.alphas)

    def weight_step(self, batch_train: Batch, weights: Sequence[Tensor]) -> StepStats:
        x, y = batch_train
        self.ctx.model.train()
        self.ctx.w_optim.zero_grad(set_to_none=self.ctx.zero_grad_set_to_none)
        logits = self.forward(x, weights)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.ctx.weight_params, self.ctx.grad_clip)
        self.ctx.w_optim.step()
        return StepStats(float(loss.detach()), int((logits.argmax(1) == y).sum()), int(y.numel()))

    def step(self, batch_train: Batch, batch_val: Batch) -> StepStats:
        """One search step: arch step on validation data, then a weight step on training data."""
        self.ctx.model.train()
        self.arch_step(batch_val, batch_train)
        weights = self.weight_step_weights(batch_train)
        return self.weight_step(batch_train, weights)

    # ---- checkpoints ---------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

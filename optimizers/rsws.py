"""Random search with weight sharing (Li & Talwalkar, 2019), as in NAS-Bench-1Shot1.

Not a gradient method: it shows that another family fits the same plug-in interface in one file.

- Weight step: every step samples a uniformly random architecture (one op per choice block, a random
  parent subset of the right size for every node that chooses its parents, and for the output) and
  trains the shared weights on it: the 0/1 architecture is the mixing weights (the reference's
  `discrete=True`) and only the chosen op of each block runs (`op_choice`), so ops that are not part
  of the sample get no gradient at all.
- Arch step: none. The alphas are not learned; `arch_step` only keeps the latest validation
  batches for scoring.
- Incumbent (decision): at the end of every epoch (`on_epoch_end`), `eval_archs` random architectures
  are scored with the one-shot weights, in eval mode, on the same last `eval_batches` validation
  batches (error rate, then loss as tie-break), and the alphas are set to the best one as a 0/1
  encoding, so the trainer's discretization, one-shot evaluation and alpha history all see the
  incumbent. The reference scores 1000 random architectures per epoch, each on 10 different
  validation batches; the defaults here (100 on one shared batch) keep an epoch's scoring cheap
  next to its training and compare all candidates on the same data.
- `eval_weights` is the 0/1 incumbent itself, so the one-shot accuracy is the incumbent's; the
  Hessian column is then w.r.t. these mixing weights at the incumbent, not comparable to softmax
  methods.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from bench.errors import ConfigError
from bench.search.spaces import Architecture
from bench.settings import Range
from optimizers.base import Batch, OneShotOptimizer, SearchContext
from optimizers.perturb import eval_mode
from optimizers.registry import register


@dataclass
class RswsHyperparameters:
    eval_archs: int = 100  # random architectures scored per epoch to pick the incumbent (reference: 1000)
    eval_batches: int = 1  # last validation batches each candidate is scored on (reference: 10)

    def __post_init__(self) -> None:
        if self.eval_archs < 1 or self.eval_batches < 1:
            raise ConfigError(
                f"--set eval_archs={self.eval_archs} eval_batches={self.eval_batches}: both must be >= 1"
            )


@dataclass(frozen=True, order=True)
class Score:
    """Ordered as the incumbent is chosen: error rate first, loss breaks ties."""

    error: float
    loss: float


@register("rsws")
class RandomSearchWS(OneShotOptimizer):
    reference_epochs = 50
    Hyperparameters = RswsHyperparameters
    tunable = {"eval_archs": Range(10, 300, log=True, integer=True)}

    def __init__(self, ctx: SearchContext, hp: RswsHyperparameters) -> None:
        super().__init__(ctx, hp)
        self._val_batches: deque[Batch] = deque(maxlen=hp.eval_batches)
        self.incumbent: Architecture | None = None
        self.last_scores: list[tuple[Architecture, Score]] = []

    # ---- architectures -------------------------------------------------------------------------
    def sample_architecture(self, generator: torch.Generator | None = None) -> Architecture:
        return self.ctx.space.sample(generator)

    def architecture_weights(self, arch: Architecture) -> list[Tensor]:
        """The 0/1 mixing weights of `arch`, in alpha_shapes order (also its alpha encoding)."""
        ref = self.ctx.alphas[0]
        return self.ctx.space.one_hot(arch, dtype=ref.dtype, device=ref.device)

    def spec(self, arch: Architecture) -> tuple[np.ndarray, list[str]]:
        """`arch` as an (unpruned) NAS-Bench-101 (matrix, ops)."""
        return self.ctx.space.spec(arch)

    # ---- hooks ---------------------------------------------------------------------------------
    def forward(self, x: Tensor, weights: Sequence[Tensor]) -> Tensor:
        return self.ctx.model(x, weights, op_choice=weights[0].argmax(-1))

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return list(alphas)

    def arch_step(self, batch_val: Batch, batch_train: Batch | None = None) -> None:
        self._val_batches.append(batch_val)

    def weight_step_weights(self, batch_train: Batch) -> list[Tensor]:
        return self.architecture_weights(self.sample_architecture())

    def on_epoch_end(self, epoch: int) -> None:
        if not self._val_batches:
            return  # no step ran this epoch: keep the incumbent
        candidates = [self.sample_architecture() for _ in range(self.hp.eval_archs)]
        self.last_scores = [(arch, self.score(arch)) for arch in candidates]
        best, _ = min(self.last_scores, key=lambda item: item[1])
        self.incumbent = best
        with torch.no_grad():
            for a, w in zip(self.ctx.alphas, self.architecture_weights(best), strict=True):
                a.copy_(w)

    def score(self, arch: Architecture) -> Score:
        """Error rate and mean loss of `arch` with the one-shot weights on the kept validation batches."""
        weights = self.architecture_weights(arch)
        wrong, loss, n = 0, 0.0, 0
        with eval_mode(self.ctx.model), torch.inference_mode():
            for x, y in self._val_batches:
                logits = self.forward(x, weights)
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                wrong += int((logits.argmax(1) != y).sum())
                n += len(y)
        return Score(wrong / n, loss / n)

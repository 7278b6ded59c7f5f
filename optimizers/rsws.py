"""Random search with weight sharing (Li & Talwalkar, 2019), as in NAS-Bench-1Shot1.

Not a gradient method: it shows that another family fits the same plug-in interface in one file.

The paper preset follows NAS-Bench-1Shot1's `optimizers/random_search_with_weight_sharing/`
(`random_weight_share.py`, `darts_wrapper_discrete.py`, cluster scripts: `--epochs=100`):

- Weight step: every step samples a uniformly random architecture (one op per choice block, a random
  parent subset of the right size for every node that chooses its parents, and for the output) and
  trains the shared weights on it, with the 0/1 architecture as the mixing weights (`discrete=True`).
  `unsampled_ops=zero` (paper): every op runs and the unsampled ones are multiplied by 0, as the
  reference's mixed op does, so their BatchNorm statistics follow every batch and (with in-place
  zero_grad) weight decay and momentum keep moving their weights; `skip` (corrected): only the sampled
  op of each block runs (`op_choice`). Batch 64, gradient clip 0.25 (run settings of the paper preset).
- Arch step: none. The alphas are not learned.
- Incumbent, at the end of every epoch (`on_epoch_end`): `eval_archs` random architectures are scored
  in eval mode with the one-shot weights by their error rate. `candidate_batches=successive` (paper):
  each on the next `eval_batches` batches of a running stream over the validation half (shuffled
  passes incl. the smaller last batch, augmented like the search data; the reference's persistent
  `valid_iter`), so every candidate sees different batches; `shared` (corrected): all on the epoch's
  last `eval_batches` search batches. The `rerank_top` best are then re-scored on as many further
  stream batches as one pass over the validation half has (the reference's `split='valid'`), and the
  best of those is the incumbent (`rerank_top=0`: the best of the first round). Ties keep the sampling
  order, as the reference's stable sort (`tie_break_by_loss=true`: the lower loss wins).
  The alphas are set to the incumbent's 0/1 encoding, so the trainer's discretization, one-shot
  evaluation and alpha history all see it.
- Scale of the reference's per-epoch selection: 1,000 x 10 batches of 64, plus 5 x 391 batches, i.e.
  ~10,000 eval forwards per epoch next to 391 training steps.
- Reference details not reproduced: its budget B = int(epochs * 25,000 / 64) steps stops 38 steps
  before the end of epoch 100 (the harness runs whole epochs), and after the search it draws three
  more rounds and reports the first round's pick; the harness's last epoch's incumbent is its pick.
- `eval_weights` is the 0/1 incumbent itself, so the one-shot accuracy is the incumbent's; the Hessian
  column is then w.r.t. these mixing weights at the incumbent, not comparable to softmax methods.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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

UNSAMPLED_OPS = ("zero", "skip")
CANDIDATE_BATCHES = ("successive", "shared")


@dataclass
class RswsHyperparameters:
    eval_archs: int = 1000  # random architectures scored per epoch to pick the incumbent
    eval_batches: int = 10  # validation batches each candidate is scored on
    rerank_top: int = 5  # best candidates re-scored on a whole pass over the validation half (0: none)
    unsampled_ops: str = "zero"  # zero: all ops run, unsampled ones x 0; skip: only the sampled op runs
    candidate_batches: str = "successive"  # successive: the next batches of a stream; shared: the same
    tie_break_by_loss: bool = False  # False: equal errors keep the sampling order (the reference's sort)

    def __post_init__(self) -> None:
        if self.eval_archs < 1 or self.eval_batches < 1:
            raise ConfigError(
                f"--set eval_archs={self.eval_archs} eval_batches={self.eval_batches}: both must be >= 1"
            )
        if self.rerank_top < 0:
            raise ConfigError(f"--set rerank_top={self.rerank_top}: must be >= 0 (0: no re-scoring)")
        if self.unsampled_ops not in UNSAMPLED_OPS:
            raise ConfigError(
                f"--set unsampled_ops={self.unsampled_ops}: choose {' or '.join(UNSAMPLED_OPS)}"
            )
        if self.candidate_batches not in CANDIDATE_BATCHES:
            raise ConfigError(
                f"--set candidate_batches={self.candidate_batches}: choose {' or '.join(CANDIDATE_BATCHES)}"
            )


@dataclass(frozen=True)
class Score:
    """Error rate and mean loss of one architecture on the batches it was scored on."""

    error: float
    loss: float


@register("rsws")
class RandomSearchWS(OneShotOptimizer):
    label = "RSWS"
    reference_epochs = 100  # NAS-Bench-1Shot1's RSWS cluster scripts pass --epochs=100
    Hyperparameters = RswsHyperparameters
    tunable = {"eval_archs": Range(10, 300, log=True, integer=True)}

    def __init__(self, ctx: SearchContext, hp: RswsHyperparameters) -> None:
        super().__init__(ctx, hp)
        self._val_batches: deque[Batch] = deque(maxlen=hp.eval_batches)
        self.incumbent: Architecture | None = None
        self.last_scores: list[tuple[Architecture, Score]] = []  # the first round, in sampling order
        self.last_rerank: list[tuple[Architecture, Score]] = []  # the re-scored top candidates

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        if preset == "paper":
            # darts_wrapper_discrete.py's defaults; the incumbent after epoch e is the reference's
            # "epoch e + 1" file, so an epoch's row looks up the alphas at its end.
            return {"batch_size": 64, "grad_clip": 0.25, "lookup_alphas": "end"}
        if preset == "corrected":
            # The harness's cheaper selection before the paper preset existed.
            return {
                "epochs": 50,
                "eval_archs": 100,
                "eval_batches": 1,
                "rerank_top": 0,
                "unsampled_ops": "skip",
                "candidate_batches": "shared",
                "tie_break_by_loss": True,
            }
        if preset == "quick":
            return {"eval_archs": 100}
        return {}

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
        if self.hp.unsampled_ops == "zero":
            return self.ctx.model(x, weights)
        return self.ctx.model(x, weights, op_choice=weights[0].argmax(-1))

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return list(alphas)

    def hessian_mixing(self) -> Callable[[Sequence[Tensor]], list[Tensor]]:
        return self.eval_weights  # the incumbent's 0/1 weights: RSWS has no arch step to mirror

    def arch_step(self, batch_val: Batch, batch_train: Batch | None = None) -> None:
        self._val_batches.append(batch_val)

    def weight_step_weights(self, batch_train: Batch) -> list[Tensor]:
        return self.architecture_weights(self.sample_architecture())

    def on_epoch_end(self, epoch: int) -> None:
        if self.hp.candidate_batches == "shared":
            if not self._val_batches:
                return  # no step ran this epoch: keep the incumbent
            batches: Iterable[Batch] | None = None
        else:
            if self.ctx.validation_stream is None:
                raise ConfigError("rsws: candidate_batches=successive needs the validation stream")
            batches = self.ctx.validation_stream(epoch)
        best = self.select(batches)
        self.incumbent = best
        with torch.no_grad():
            for a, w in zip(self.ctx.alphas, self.architecture_weights(best), strict=True):
                a.copy_(w)

    def select(self, stream: Iterable[Batch] | None) -> Architecture:
        """Sample `eval_archs` candidates, score them, re-score the `rerank_top` best on a whole pass;
        `stream` None: every candidate on the kept search batches (candidate_batches=shared)."""
        hp = self.hp
        it = iter(stream) if stream is not None else None

        def next_batches(n: int) -> list[Batch]:
            if it is None:
                return list(self._val_batches)
            return list(itertools.islice(it, n))

        candidates = [self.sample_architecture() for _ in range(hp.eval_archs)]
        self.last_scores = [(arch, self.score(arch, next_batches(hp.eval_batches))) for arch in candidates]
        ranked = self.rank(self.last_scores)
        self.last_rerank = []
        if hp.rerank_top == 0:
            return ranked[0][0]
        n_full = self.ctx.validation_pass or hp.eval_batches
        top = [arch for arch, _ in ranked[: hp.rerank_top]]
        self.last_rerank = [(arch, self.score(arch, next_batches(n_full))) for arch in top]
        return self.rank(self.last_rerank)[0][0]

    def rank(self, scored: Sequence[tuple[Architecture, Score]]) -> list[tuple[Architecture, Score]]:
        """Best first; a stable sort, so equal keys keep their order (the reference's `sorted`)."""
        if self.hp.tie_break_by_loss:
            return sorted(scored, key=lambda item: (item[1].error, item[1].loss))
        return sorted(scored, key=lambda item: item[1].error)

    def score(self, arch: Architecture, batches: Sequence[Batch] | None = None) -> Score:
        """Error rate and mean loss of `arch` with the one-shot weights on `batches` (default: the kept
        search batches), in eval mode."""
        batches = list(self._val_batches) if batches is None else batches
        weights = self.architecture_weights(arch)
        wrong, loss, n = 0, 0.0, 0
        with eval_mode(self.ctx.model), torch.inference_mode():
            for x, y in batches:
                logits = self.forward(x, weights)
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
                wrong += int((logits.argmax(1) != y).sum())
                n += len(y)
        if n == 0:
            return Score(math.inf, math.inf)
        return Score(wrong / n, loss / n)

"""One-shot measurements of the supernet that leave the search undisturbed.

Why BatchNorm needs care here: a supernet's running statistics are an average over the forwards of the
search, and those run at mixing weights that are not the ones a one-shot evaluation uses (SDARTS and
MS-DARTS take their weight steps at perturbed weights, GDAS/ENAS/RSWS at sampled cells, and with the
reference's momentum 0.997 the statistics are the last training batch's alone). An eval-mode forward
then measures stale statistics, not the supernet: MS-DARTS' one-shot accuracy "collapsed" to chance
that way while the same weights scored 0.97 with re-estimated statistics (docs/results.md).

So the one-shot accuracy re-estimates the statistics at the evaluated weights first (`recalibrate`:
a cumulative average over a fixed slice of the training half, the usual one-shot NAS practice, e.g.
SPOS), which is deterministic, independent of the evaluation batches and of the search's history. The
plain eval-mode number is kept beside it. Every measurement restores the model's buffers, its
train/eval flags and every RNG, so a run measures exactly what an uninterrupted one does after resume.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor, nn

from bench.runs.device import rng_state, set_rng_state
from bench.search.graph import hash_spec
from bench.search.spaces import PRIMITIVES, Architecture, SearchSpace

BN_MODES = ("recalibrate", "eval", "batch")
Forward = Callable[[Tensor, Sequence[Tensor]], Tensor]


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Run a measurement and put back everything it could change: BN buffers and momenta, every
    module's train/eval flag, and the Python, NumPy and torch RNG states."""
    bns = _batchnorms(model)
    saved = [
        (m.momentum, {k: v.clone() for k, v in m.named_buffers(recurse=False) if v is not None}) for m in bns
    ]
    flags = [(m, m.training) for m in model.modules()]
    rng = rng_state()
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (momentum, buffers) in zip(bns, saved, strict=True):
                m.momentum = momentum
                for k, v in buffers.items():
                    getattr(m, k).copy_(v)
        for m, training in flags:
            m.training = training
        set_rng_state(rng)


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, forward: Forward, weights: Sequence[Tensor], batches: Sequence[Tensor]
) -> None:
    """Replace every BN's running statistics by their cumulative average over `batches` at `weights`.

    Call inside `untouched(model)`: it changes the model's buffers and leaves it in train mode.
    """
    for m in _batchnorms(model):
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    model.train()
    for x in batches:
        forward(x, weights)


@dataclass(frozen=True)
class Score:
    """Mean cross-entropy and accuracy of one forward setting on a labelled set."""

    loss: float
    acc: float


@torch.no_grad()
def score(
    model: nn.Module,
    forward: Forward,
    weights: Sequence[Tensor],
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    device: torch.device,
    train_mode: bool = False,
) -> Score:
    """Loss and accuracy of `forward(·, weights)` over (x, y), in eval mode unless `train_mode` (BN on
    batch statistics). Changes BN buffers in train mode: call inside `untouched(model)`."""
    model.train(train_mode)
    loss_sum, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
        logits = forward(xb, weights)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return Score(loss_sum / len(y), correct / len(y))


@dataclass(frozen=True)
class Evaluator:
    """Scores mixing weights on the validation half with a chosen BN treatment; never changes the model.

    `recal_x`: the fixed training-half images BN statistics are re-estimated on (`recalibrate`).
    """

    model: nn.Module
    x_valid: Tensor
    y_valid: Tensor
    recal_x: Tensor
    batch_size: int
    device: torch.device

    def __call__(self, forward: Forward, weights: Sequence[Tensor], bn: str) -> Score:
        if bn not in BN_MODES:
            raise ValueError(f"bn={bn!r}: choose one of {BN_MODES}")
        with untouched(self.model):
            if bn == "recalibrate":
                recal = [
                    self.recal_x[i : i + self.batch_size].to(self.device)
                    for i in range(0, len(self.recal_x), self.batch_size)
                ]
                recalibrate_bn(self.model, forward, weights, recal)
            return score(
                self.model, forward, weights, self.x_valid, self.y_valid,
                batch_size=self.batch_size, device=self.device, train_mode=bn == "batch",
            )  # fmt: skip


# ---- one-shot vs ground truth ---------------------------------------------------------------------
def sample_architectures(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    """`n` distinct NB-101 models of `space`, each represented by one cell.

    Raw cells are drawn uniformly (own generator: the run's RNG stream is untouched) and deduplicated by
    NB-101 hash, as NAS-Bench-1Shot1 samples its search space. When `n` nears the number of unique models
    the draws stall; then the unique models are enumerated and all of them (or a seeded subset) are used.
    """
    gen = torch.Generator().manual_seed(seed)
    seen: dict[str, Architecture] = {}
    misses = 0
    while misses < 200 and n <= space.num_raw_architectures():
        if len(seen) == n:
            return list(seen.values())
        arch = space.sample(gen)
        h = hash_spec(*space.spec(arch))
        misses = misses + 1 if h in seen else 0
        seen.setdefault(h, arch)
    unique = unique_architectures(space)
    if n >= len(unique):
        return unique
    keep = torch.randperm(len(unique), generator=gen)[:n].sort().values.tolist()
    return [unique[i] for i in keep]


def unique_architectures(space: SearchSpace) -> list[Architecture]:
    """One cell per unique NB-101 model of `space` (the first in enumeration order)."""
    first: dict[str, Architecture] = {}
    ops_choices = list(itertools.product(range(len(PRIMITIVES)), repeat=space.num_blocks))
    for topology in space.topologies():
        for ops in ops_choices:
            arch = Architecture(ops, topology)
            first.setdefault(hash_spec(*space.spec(arch)), arch)
    return list(first.values())


def top_overlap(a: Sequence[float], b: Sequence[float], fraction: float = 0.1) -> float:
    """Share of the top `fraction` by `a` that is also in the top `fraction` by `b` (ties by index)."""
    n = len(a)
    k = max(1, math.ceil(fraction * n))
    top_a = set(np.argsort(-np.asarray(a, float), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-np.asarray(b, float), kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def correlation_stats(
    oneshot: Sequence[float], valid: Sequence[float], test: Sequence[float]
) -> dict[str, float]:
    """Rank agreement of one-shot accuracies with ground-truth validation and test accuracies."""
    out: dict[str, float] = {"n": float(len(oneshot)), "oneshot_acc_mean": float(np.mean(oneshot))}
    for name, truth in (("valid", valid), ("test", test)):
        constant = len(set(oneshot)) < 2 or len(set(truth)) < 2  # a rank correlation is undefined
        out[f"spearman_{name}"] = float("nan") if constant else float(stats.spearmanr(oneshot, truth)[0])
        out[f"kendall_{name}"] = float("nan") if constant else float(stats.kendalltau(oneshot, truth)[0])
        out[f"top10_overlap_{name}"] = top_overlap(oneshot, truth)
    return out

"""Learning curves behind docs/digits-benchmark/gdas-training.md.

    PYTHONPATH=. nice -n 5 python docs/digits-benchmark/gdas_training.py --epochs 20 --seeds 0,1,2 \
        --out docs/digits-benchmark/gdas-training-curves.csv

Trains the paper-preset supernet on the embedded digits benchmark (space 1, batch 96, 16 channels, 9
cells, SGD 0.025 cosine over `--epochs`, BN momentum 0.1, 5 steps per epoch) under several ways of
choosing the mixing weights of the weight step, with the same data order and initialization for every
variant of a seed. Per epoch it records the training accuracy of the weight steps (train-mode BN, the
sampled network on its own batch, as `oneshot_train_acc`) and, every `--eval-every` epochs, three
evaluations on the whole architecture half: the argmax cell with one-hot weights in eval mode (what
GDAS's one-shot accuracy measures now), the same in train-mode BN (batch statistics: separates stale
running statistics from untrained weights), and the argmax op at softmax(alpha) weights in eval mode
(GDAS's old one-shot evaluation).

Variants (`--variants`, default all):
- darts: softmax mixing, all ops run (the reference point).
- gdas: the GDAS plug-in as shipped (paper settings: per-cell Gumbel, hard ops, soft edges at tau).
- gdas-shared: GDAS with one Gumbel sample for all cells (`per_cell=false`).
- gdas-noarch: GDAS's weight step only (no arch step): the alphas stay at their 1e-3 init.
- gdas-hard-edges: GDAS, but the input/output edges use hard (straight-through) Gumbel too, k-hot
  over each node's top-k perturbed logits, so every edge is 0 or 1 as in a discrete cell.
- spos: uniform single path (SPOS / the RSWS weight step): one uniformly random op per block and random
  parents (0/1 weights), one cell shared by all 9 cells, only the chosen ops run.
- spos-per-cell: the same with an independent uniform sample per cell.
- fixed: one random cell (the same for every seed), trained alone as a stand-alone network inside the
  supernet (0/1 weights, only its ops run): how fast a single discrete network learns under this protocol.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.data.splits import STREAM_TRAIN, STREAM_VALID, SearchData, epoch_batches, load_digits_search_data
from bench.runs.config import RunConfig
from bench.runs.parts import build_parts
from optimizers.base import OneShotOptimizer, StepStats

VARIANTS = (
    "darts",
    "gdas",
    "gdas-shared",
    "gdas-noarch",
    "gdas-hard-edges",
    "spos",
    "spos-per-cell",
    "fixed",
)


def stacked_one_hot(plugin: OneShotOptimizer, per_cell: bool) -> list[Tensor]:
    """Uniform random cell(s) as 0/1 mixing weights; per cell: a leading num_cells dim."""
    space = plugin.ctx.space
    if not per_cell:
        return space.one_hot(space.sample())
    cells = [space.one_hot(space.sample()) for _ in range(plugin.ctx.model.num_cells)]
    return [torch.stack(ts) for ts in zip(*cells, strict=True)]


def hard_edges(plugin: OneShotOptimizer, weights: list[Tensor]) -> list[Tensor]:
    """Replace GDAS' soft edge weights by straight-through k-hot ones of the same Gumbel draw."""
    space, out = plugin.ctx.space, [weights[0]]
    names = list(space.alpha_shapes())
    for name, soft in zip(names[1:], weights[1:], strict=True):
        node = space.output_node if name == "output" else int(name.split("_")[1])
        k = space.num_parents[node - 1]
        top = soft.topk(k, dim=-1).indices
        hard = torch.zeros_like(soft).scatter_(-1, top, 1.0)
        out.append(hard - soft.detach() + soft)
    return out


def configure(variant: str, plugin: OneShotOptimizer) -> None:
    """Patch the variant's behaviour onto a freshly built plug-in instance."""
    if variant == "gdas-shared":
        plugin.num_cells = None
    if variant in ("gdas-noarch", "spos", "spos-per-cell", "fixed"):
        plugin.arch_step = lambda batch_val, batch_train=None: None
    if variant == "gdas-hard-edges":
        soft_weights = plugin.arch_weights
        plugin.arch_weights = lambda alphas: hard_edges(plugin, soft_weights(alphas))
    if variant == "fixed":
        cell = plugin.ctx.space.one_hot(plugin.ctx.space.sample(torch.Generator().manual_seed(0)))
        plugin.weight_step_weights = lambda batch_train: cell
        plugin.fixed_cell = cell  # evaluated instead of the argmax cell of the (untouched) alphas
        plugin.forward = lambda x, w: plugin.ctx.model(x, w, op_choice=w[0].argmax(-1))
    if variant.startswith("spos"):
        per_cell = variant == "spos-per-cell"
        plugin.weight_step_weights = lambda batch_train: stacked_one_hot(plugin, per_cell)
        plugin.forward = lambda x, w: plugin.ctx.model(x, w, op_choice=w[0].argmax(-1))


@torch.no_grad()
def evaluate(plugin: OneShotOptimizer, data: SearchData, weights: Sequence[Tensor], train_bn: bool,
             op_choice: Tensor | None) -> float:  # fmt: skip
    model = plugin.ctx.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train(train_bn)
    correct = 0
    for i in range(0, len(data.x_valid), 96):
        x, y = data.x_valid[i : i + 96], data.y_valid[i : i + 96]
        correct += int((model(x, weights, op_choice=op_choice).argmax(1) == y).sum())
    model.load_state_dict(state)  # train-mode BN must not leave its statistics behind
    model.train()
    return correct / len(data.x_valid)


def run(variant: str, seed: int, epochs: int, data: SearchData, eval_every: int) -> list[dict]:
    optimizer = "darts" if variant == "darts" else "gdas"
    cfg = RunConfig.resolve(
        optimizer, 1, seed=seed, device="cpu", overrides={"epochs": epochs, "hessian": False}
    )
    parts = build_parts(cfg, data)
    plugin = parts.plugin
    configure(variant, plugin)
    rows = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        plugin.on_epoch_start(epoch)
        steps = data.steps_per_epoch(cfg.batch_size)
        train = epoch_batches(data.x_train, data.y_train, cfg.batch_size, seed, epoch, STREAM_TRAIN, "cpu",
                              steps=steps)  # fmt: skip
        valid = epoch_batches(data.x_valid, data.y_valid, cfg.batch_size, seed, epoch, STREAM_VALID, "cpu",
                              steps=steps)  # fmt: skip
        correct = n = 0
        loss = 0.0
        for bt, bv in zip(train, valid, strict=True):
            stats: StepStats = plugin.step(bt, bv)
            correct, n, loss = correct + stats.correct, n + stats.n, loss + stats.loss * stats.n
        parts.scheduler.step()
        alphas = parts.alphas
        space = parts.space
        one_hot = getattr(plugin, "fixed_cell", None) or space.one_hot(space.argmax_architecture(alphas))
        choice = one_hot[0].argmax(-1)
        soft = [F.softmax(a.detach(), -1) for a in alphas]
        row = {"variant": variant, "seed": seed, "epoch": epoch, "step": (epoch + 1) * steps,
               "train_loss": loss / n, "train_acc": correct / n}  # fmt: skip
        nan = float("nan")
        measure = (epoch + 1) % eval_every == 0 or epoch == epochs - 1
        row["argmax_onehot_eval"] = evaluate(plugin, data, one_hot, False, choice) if measure else nan
        row["argmax_onehot_trainbn"] = evaluate(plugin, data, one_hot, True, choice) if measure else nan
        row["argmax_softmax_eval"] = evaluate(plugin, data, soft, False, choice) if measure else nan
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        evals = " ".join(f"{k} {row[k]:.3f}" for k in ("argmax_onehot_eval", "argmax_onehot_trainbn",
                                                         "argmax_softmax_eval"))  # fmt: skip
        print(
            f"{variant:16s} seed {seed} epoch {epoch:3d} train_acc {row['train_acc']:.3f} {evals}", flush=True
        )
    return rows


@torch.no_grad()
def evaluate_recalibrated(plugin: OneShotOptimizer, data: SearchData, weights: Sequence[Tensor],
                          op_choice: Tensor) -> float:  # fmt: skip
    """SPOS' practice: reset every BN's running statistics, re-estimate them as a cumulative average over
    the training half (train-mode forwards of this network, no gradient), then evaluate in eval mode."""
    model = plugin.ctx.model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    model.train()
    for i in range(0, len(data.x_train), 96):
        model(data.x_train[i : i + 96], weights, op_choice=op_choice)
    accuracy = evaluate(plugin, data, weights, False, op_choice)
    for bn, m in zip(bns, momenta, strict=True):
        bn.momentum = m
    model.load_state_dict(state)
    return accuracy


def evaluation_modes(run_dir: Path, samples: int = 5) -> dict[str, float]:
    """A finished GDAS run's final supernet, evaluated on the whole architecture half in several ways."""
    from bench.runs.restore import load_run

    run = load_run(run_dir, device="cpu")
    plugin, space, data = run.plugin, run.plugin.ctx.space, run.data
    plugin.on_epoch_start(run.epoch)  # tau of the last epoch
    one_hot = plugin.oneshot_weights(run.alphas)
    choice = one_hot[0].argmax(-1)
    soft = [F.softmax(a, -1) for a in run.alphas]
    argmax_ops_soft_edges = [one_hot[0], *soft[1:]]
    out = {
        "argmax cell, one-hot (oneshot_weights), eval-mode BN": evaluate(
            plugin, data, one_hot, False, choice
        ),
        "argmax cell, one-hot, train-mode BN (batch statistics)": evaluate(
            plugin, data, one_hot, True, choice
        ),
        "argmax ops, softmax(alpha) edges, eval-mode BN": evaluate(
            plugin, data, argmax_ops_soft_edges, False, choice
        ),
        "argmax op at softmax(alpha) weights, eval-mode BN (the old evaluation)": evaluate(
            plugin, data, soft, False, choice
        ),
    }
    out["argmax cell, one-hot, eval-mode BN recalibrated on the training half"] = evaluate_recalibrated(
        plugin, data, one_hot, choice
    )
    torch.manual_seed(0)
    accs = []
    for _ in range(samples):  # NB1's infer: a per-cell Gumbel sample at the current tau, eval mode
        weights = [w.detach() for w in plugin.arch_weights(run.alphas)]
        accs.append(evaluate(plugin, data, weights, False, weights[0].argmax(-1)))
    out[f"Gumbel samples at tau={plugin.tau:.2f}, eval-mode BN (NB1's infer), mean of {samples}"] = (
        sum(accs) / samples
    )
    out["architecture"] = str(space.argmax_architecture(run.alphas))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--eval-every", type=int, default=5, help="evaluate the argmax cell every N epochs")
    p.add_argument("--out", type=Path, help="curves CSV")
    p.add_argument("--evaluate-run", type=Path, help="instead: evaluate a finished GDAS run directory")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.evaluate_run is not None:
        for key, value in evaluation_modes(args.evaluate_run).items():
            print(f"{key}: {value if isinstance(value, str) else f'{value:.4f}'}")
        return
    data = load_digits_search_data(0.5)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):  # every variant of a seed before the next seed
        for variant in args.variants.split(","):
            rows += run(variant, seed, args.epochs, data, args.eval_every)
            with open(args.out, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)


if __name__ == "__main__":
    main()

"""Architecture selection after the search: the seam `--set selection=argmax|pt`.

`argmax` (default) is the per-epoch discretization every run does (argmax op per choice block, top-k
parents per node); nothing here runs and every file a run writes is unchanged.

`pt` is DARTS-PT's perturbation-based selection (Wang et al., ICLR 2021, "Rethinking Architecture
Selection in Differentiable NAS"; released code ruocwang/darts-pt, `sota/cnn/projection.py`
(`pt_project`, `project_op`, `project_edge`) and `sota/cnn/model_search_darts_proj.py`
(`get_projected_weights`)). It runs once, after the last search epoch, on the trained supernet of any
optimizer, and decides one choice at a time:

- op decisions first, one per choice block, blocks in random order (`--edge_decision random`): with the
  block's op o masked to 0 in the current projected weights, the supernet's accuracy on the whole
  validation half is measured for each o; the op whose removal leaves the LOWEST accuracy is chosen
  (the release's `compare = x < y`, strict, so ties go to the lowest op index) and the block is fixed
  to its one-hot;
- then edge decisions, one per node that chooses its parents (the `inputs_*` alphas and the output),
  nodes in random order: while more than the space's number of parents remain, the edge whose removal
  leaves the HIGHEST accuracy is dropped (`not compare(crit, extrema)`: ties go to the later edge);
  earlier drops of the same node stay active while it is decided, as in the release; the dropped edges
  are then fixed to weight 0, the kept ones keep their mixing weight;
- between two decisions the supernet is fine-tuned for `pt_tune_epochs` epochs (release script
  `exp_scripts/darts-proj-sota.sh`: `--proj_intv 5`) with the plug-in's own search step (so the
  undecided alphas keep learning), at the projected mixing weights, with a fresh SGD at w_lr / 10 that
  the release creates and never steps its scheduler for (constant learning rate). The release also
  tunes after the last decision; that cannot change the selection and is skipped.

Adaptations (decisions): the release scores candidates in train mode (BN on batch statistics) and so
overwrites the running statistics; here the same train-mode scoring runs inside
`bench.runs.oneshot.untouched`, which puts them (and every RNG) back. The masked weights are the
plug-in's deterministic `eval_weights` (softmax(alpha) for DARTS and its variants) run through the plain
supernet (all ops), whatever the plug-in's own forward. The random decision order comes from a
generator seeded with the run's seed, so a rerun (or a resumed run) selects the same architecture.

Results: `selection.csv` holds one row for the PT-selected architecture with the columns of
`epochs.csv` (its ground-truth lookup; `epoch` = the last search epoch; training and one-shot columns
NaN) plus `selection` and `pt_tune_epochs`; `selection_decisions.csv` holds one row per candidate
scored (decision, kind, alpha tensor, row, candidate, valid_acc, valid_loss, outcome). `epochs.csv`
stays the per-epoch argmax record of the search.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from bench import results
from bench.runs import oneshot
from bench.search.spaces import Architecture

if TYPE_CHECKING:
    from bench.runs.trainer import Trainer

log = logging.getLogger(__name__)

SELECTIONS = ("argmax", "pt")
DECISION_COLUMNS = (
    "decision", "kind", "tensor", "row", "candidate", "valid_acc", "valid_loss", "outcome",
)  # fmt: skip

Scorer = Callable[[Sequence[Tensor]], oneshot.Score]


class Projection:
    """The decisions taken so far, as entries of the mixing weights pinned to fixed values."""

    def __init__(self, alphas: Sequence[Tensor]) -> None:
        self.masks = [torch.zeros_like(a, dtype=torch.bool) for a in alphas]
        self.values = [torch.zeros_like(a).detach() for a in alphas]

    def __call__(self, weights: Sequence[Tensor]) -> list[Tensor]:
        return [torch.where(m, v, w) for w, m, v in zip(weights, self.masks, self.values, strict=True)]

    def pin(self, tensor: int, row: int, entries: Sequence[int], value: Tensor | float) -> None:
        self.masks[tensor][row, list(entries)] = True
        self.values[tensor][row, list(entries)] = value


def masked(weights: Sequence[Tensor], tensor: int, row: int, entry: int) -> list[Tensor]:
    out = [w.detach().clone() for w in weights]
    out[tensor][row, entry] = 0.0
    return out


def decide_op(weights: Sequence[Tensor], row: int, score: Scorer, log_rows: list[dict[str, Any]]) -> int:
    """The op of choice block `row` whose removal leaves the lowest accuracy (ties: lowest index)."""
    best, extreme = 0, None
    for op in range(weights[0].shape[-1]):
        s = score(masked(weights, 0, row, op))
        log_rows.append({"kind": "op", "tensor": 0, "row": row, "candidate": op, "valid_acc": s.acc,
                         "valid_loss": s.loss, "outcome": ""})  # fmt: skip
        if extreme is None or s.acc < extreme:
            best, extreme = op, s.acc
    for r in log_rows:
        if r["candidate"] == best and r["kind"] == "op":
            r["outcome"] = "chosen"
    return best


def decide_edges(
    weights: Sequence[Tensor], tensor: int, keep: int, score: Scorer, log_rows: list[dict[str, Any]]
) -> list[int]:
    """Drop, one at a time, the edge whose removal leaves the highest accuracy (ties: the later edge)
    until `keep` remain; returns the kept edges."""
    edges = list(range(weights[tensor].shape[-1]))
    while len(edges) > keep:
        drop, extreme, scored = None, None, []
        for e in edges:
            s = score(masked(weights, tensor, 0, e))
            scored.append({"kind": "edge", "tensor": tensor, "row": 0, "candidate": e, "valid_acc": s.acc,
                           "valid_loss": s.loss, "outcome": ""})  # fmt: skip
            if extreme is None or not s.acc < extreme:
                drop, extreme = e, s.acc
        for r in scored:
            r["outcome"] = "dropped" if r["candidate"] == drop else ""
        log_rows.extend(scored)
        edges.remove(drop)
    return edges


def run_pt(trainer: Trainer) -> Architecture:
    """DARTS-PT on the trainer's supernet; writes selection.csv and selection_decisions.csv."""
    cfg, space, plugin, model = trainer.cfg, trainer.space, trainer.plugin, trainer.model
    alphas = trainer.alphas
    names = list(space.alpha_shapes())
    projection = Projection(alphas)
    data = trainer.data

    def score(weights: Sequence[Tensor]) -> oneshot.Score:
        with oneshot.untouched(model):
            return oneshot.score(
                model, model, weights, data.x_valid, data.y_valid,
                batch_size=cfg.batch_size, device=trainer.device, train_mode=True,
            )  # fmt: skip

    def current() -> list[Tensor]:
        with torch.no_grad():
            return projection(plugin.eval_weights(alphas))

    g = torch.Generator().manual_seed(cfg.seed)
    blocks = [int(i) for i in torch.randperm(space.num_blocks, generator=g)]
    edge_tensors = [k for k, n in enumerate(names) if n != "ops"]
    edge_order = [edge_tensors[int(i)] for i in torch.randperm(len(edge_tensors), generator=g)]
    decisions: list[tuple[str, int]] = [("op", b) for b in blocks] + [("edge", k) for k in edge_order]
    ops = [0] * space.num_blocks
    kept: dict[int, list[int]] = {}
    rows: list[dict[str, Any]] = []
    for d, (kind, target) in enumerate(decisions):
        step_rows: list[dict[str, Any]] = []
        weights = current()
        if kind == "op":
            ops[target] = decide_op(weights, target, score, step_rows)
            one_hot = torch.zeros(weights[0].shape[-1], dtype=weights[0].dtype, device=weights[0].device)
            one_hot[ops[target]] = 1.0
            projection.pin(0, target, range(len(one_hot)), one_hot)
        else:
            keep = space.num_parents[_node(names[target], space) - 1]
            kept[target] = decide_edges(weights, target, keep, score, step_rows)
            dropped = [e for e in range(weights[target].shape[-1]) if e not in kept[target]]
            projection.pin(target, 0, dropped, 0.0)
        for r in step_rows:
            r["decision"], r["tensor"] = d, names[r["tensor"]]
        rows.extend(step_rows)
        log.info("selection=pt decision %d/%d: %s %s", d + 1, len(decisions), kind, names[target])
        if d < len(decisions) - 1:
            fine_tune(trainer, projection, first_epoch=trainer.epochs + d * cfg.pt_tune_epochs)
    topology = []
    for node in range(1, space.num_blocks + 2):
        name = "output" if node == space.output_node else f"inputs_{node}"
        k = space.num_parents[node - 1]
        topology.append(tuple(kept[names.index(name)]) if name in names else tuple(range(node))[:k])
    arch = Architecture(tuple(ops), tuple(topology))
    _write(trainer, arch, rows)
    return arch


def _node(name: str, space: Any) -> int:
    return space.output_node if name == "output" else int(name.split("_", 1)[1])


def fine_tune(trainer: Trainer, projection: Projection, first_epoch: int) -> None:
    """`pt_tune_epochs` epochs of the plug-in's own search step at the projected mixing weights, with a
    fresh SGD at w_lr / 10 (constant, as the release)."""
    from bench.runs.trainer import search_batches

    cfg, plugin = trainer.cfg, trainer.plugin
    if cfg.pt_tune_epochs == 0:
        return
    sgd = torch.optim.SGD(plugin.ctx.weight_params, lr=cfg.w_lr / 10, momentum=cfg.w_momentum,
                          weight_decay=cfg.w_weight_decay)  # fmt: skip
    ctx = plugin.ctx
    mixing = plugin.arch_weights
    plugin.ctx = dataclasses.replace(ctx, w_optim=sgd)
    plugin.arch_weights = lambda a: projection(mixing(a))  # the instance's, for these steps only
    try:
        for epoch in range(first_epoch, first_epoch + cfg.pt_tune_epochs):
            for batch_train, batch_val in search_batches(
                cfg, trainer.data, epoch, trainer.device, trainer.augment
            ):
                plugin.step(batch_train, batch_val)
    finally:
        del plugin.arch_weights
        plugin.ctx = ctx


def _write(trainer: Trainer, arch: Architecture, decisions: list[dict[str, Any]]) -> None:
    space, nan = trainer.space, float("nan")
    one_hot = space.one_hot(arch, dtype=trainer.alphas[0].dtype)
    one_shot = dict.fromkeys(
        ("oneshot_valid_loss", "oneshot_valid_acc", "oneshot_valid_loss_evalbn", "oneshot_valid_acc_evalbn"),
        nan,
    )
    row = trainer._row(trainer.epochs - 1, (nan, nan), one_shot, one_hot)
    row.update(selection="pt", pt_tune_epochs=trainer.cfg.pt_tune_epochs)
    results.write_table(trainer.out_dir / results.SELECTION_DECISIONS_CSV, decisions, DECISION_COLUMNS)
    results.write_table(
        trainer.out_dir / results.SELECTION_CSV,
        [row],
        results.columns(trainer.repeats, trainer.cfg.truth_budgets),
    )


def select(trainer: Trainer) -> None:
    """The trainer's hook after the last epoch: run the configured selection unless it is done."""
    if trainer.cfg.selection == "argmax" or (trainer.out_dir / results.SELECTION_CSV).exists():
        return
    arch = run_pt(trainer)
    log.info("selection=pt: ops %s, topology %s", arch.ops, arch.topology)

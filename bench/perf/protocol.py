"""Benchmark: the cost of the full published (paper-preset) protocol on this device, and of the paper's grids.

    python -m bench.perf protocol [--device auto] [--spaces 1,2,3] [--steps 3] [--seeds 5] [--parallel 1]
                                  [--table4-spaces 1] [--batch B] [--threads N] [--quick] [--json PATH]

Each optimizer of Figure 3 (darts, pcdarts, gdas, sdarts-rs, sdarts-adv, msdarts) and NAS-Bench-1Shot1's
baselines (rsws, enas) is built as a paper-preset run on the nb101 benchmark builds it (RunConfig.resolve,
then the trainer's build_parts: batch 96, RSWS 64 as its preset says, 16 channels, 3 x 3 cells, every
protocol setting and the optimizer's own preset settings), on SYNTHETIC CIFAR-shaped data: random 3x32x32
images and random labels in CIFAR-10's numbers, batched and augmented by the trainer's own pipeline.
Neither CIFAR-10 nor NAS-Bench-101 is needed; the numbers measure cost only.

Per optimizer and space, every part of a paper-preset epoch, timed and scaled:
  steps       --steps full search steps after one untimed warm-up, batches drawn and augmented as the
              trainer draws them; the median x the steps per epoch the config gives (CIFAR-10, batch 96,
              partial batches: ceil(25,000 / 96) = 261).
  Hessian     one cold-start eigenvalue as the trainer measures it (bench.runs.trainer.measure_hessian) on
              a batch the size of the preset's Hessian batch (hessian_batch=last: the epoch's last search
              batch, the 40-image remainder), in every epoch the preset measures it. On CUDA an untimed
              eigenvalue on 2 images first: CUDA loads the double-backward kernels lazily.
  evaluation  a few one-shot evaluation batches (eval mode, the plug-in's one-shot weights), scaled to a
              pass over the validation half, x the passes the trainer makes (oneshot_bn=recalibrate: the
              plain and the recalibrated one); the BN re-estimation's bn_recal_batches batches in full.
  extras      RSWS: its incumbent selection on --rsws-archs of its eval_archs candidates (each on
              eval_batches stream batches), scaled; the rerank_top whole validation passes at the measured
              per-batch cost. ENAS: --enas-steps of its controller_steps REINFORCE steps, scaled, plus one
              greedy decode. Any other plug-in with an on_epoch_end of its own: that hook once, in full.
Not included (milliseconds per epoch): the checkpoint, discretization and ground-truth lookup; the
correlation analysis is off in the paper preset. Spaces not timed reuse the first timed space's costs.

Projections: Figure 3 = 6 optimizers x 3 spaces x --seeds; Table 4 = MS-DARTS x 5 bandwidths x --seeds x
--table4-spaces; the NB-1Shot1 baselines (RSWS, ENAS) x 3 spaces x --seeds. Wall hours for --parallel runs
at once assume they share the device perfectly (device-hours / N). The issue sets no numeric target:
the benchmark passes when every component was measured (finite, > 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.data import cifar10
from bench.data.splits import SearchData, batches_per_pass, cifar10_halves
from bench.errors import HarnessError
from bench.runs.config import RunConfig
from bench.runs.oneshot import recalibrate_bn, score, untouched
from bench.runs.parts import augmentation, build_parts
from bench.runs.trainer import hessian_epoch, measure_hessian, search_batches
from optimizers import OneShotOptimizer
from optimizers.base import Batch

log = logging.getLogger(__name__)
PROG = "python -m bench.perf protocol"

FIGURE3 = ("darts", "pcdarts", "gdas", "sdarts-rs", "sdarts-adv", "msdarts")
BASELINES = ("rsws", "enas")
OPTIMIZERS = FIGURE3 + BASELINES
SPACES = (1, 2, 3)
TABLE4_BANDWIDTHS = (0.1, 0.3, 1.0, 3.0, 10.0)  # MS-DARTS' Table 4
BENCHMARK, PRESET, SEED = "nb101", "paper", 0
# Image i of the synthetic data starts IMAGE_STRIDE values after image i - 1 in one random buffer: distinct
# random images in CIFAR-10's numbers in 19 MB instead of 600 MB (the pipeline copies what it indexes).
IMAGE_STRIDE = 97
HESSIAN_WARMUP_IMAGES = 2


class BenchUsageError(ValueError):
    """A command-line value the benchmark cannot use."""


@dataclass(frozen=True)
class Targets:
    """No numeric target for this benchmark: every component must be measured."""

    min_seconds: float = 0.0  # each measured component: finite and above this


@dataclass(frozen=True)
class Scale:
    """How much of each part is timed (the rest is extrapolated)."""

    steps: int = 3
    eval_batches: int = 5
    rsws_archs: int = 10
    enas_steps: int = 10


QUICK_SCALE = Scale(steps=1, eval_batches=1, rsws_archs=2, enas_steps=2)
# --quick: a smoke check that still runs every part, never a number to quote.
QUICK_SETTINGS = {"batch_size": 8, "init_channels": 4, "cells_per_stack": 1}


@dataclass
class Extra:
    """Per-epoch work of a plug-in beyond its steps: seconds per epoch and how they were obtained."""

    seconds: float
    how: str


@dataclass
class Cost:
    """The measured cost of one paper-preset run (one optimizer, one space) and how it adds up."""

    optimizer: str
    space: int
    batch_size: int
    init_channels: int
    cells: int
    epochs: int
    steps_per_epoch: int
    step_samples: list[float]
    hessian_s: float  # one eigenvalue (0: the preset measures none)
    hessian_hvps: int
    hessian_batch: int
    hessian_batch_mode: str  # the preset's hessian_batch
    hessian_epochs: int  # epochs the preset measures it in
    eval_batch_s: float  # one one-shot evaluation batch
    validation_images: int  # the architecture half a one-shot evaluation passes over
    eval_batches: int  # per pass over it
    eval_passes: int  # per epoch
    bn_recal_s: float  # one BN re-estimation, all its batches (0: none)
    extras: Extra
    measured: dict[str, float] = field(default_factory=dict)  # component -> seconds, judged by Targets

    @property
    def step_s(self) -> float:
        return statistics.median(self.step_samples)

    @property
    def steps_epoch_s(self) -> float:
        return self.step_s * self.steps_per_epoch

    @property
    def hessian_epoch_s(self) -> float:
        """Mean per epoch (the preset may skip epochs)."""
        return self.hessian_s * self.hessian_epochs / self.epochs

    @property
    def eval_epoch_s(self) -> float:
        return self.eval_passes * self.eval_batches * self.eval_batch_s + self.bn_recal_s

    @property
    def epoch_s(self) -> float:
        return self.steps_epoch_s + self.hessian_epoch_s + self.eval_epoch_s + self.extras.seconds

    @property
    def run_hours(self) -> float:
        return self.epoch_s * self.epochs / 3600

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("step_s", "steps_epoch_s", "hessian_epoch_s", "eval_epoch_s", "epoch_s", "run_hours"):
            out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Grid:
    """A set of runs of the paper: optimizers x spaces x settings x seeds."""

    name: str
    optimizers: tuple[str, ...]
    spaces: tuple[int, ...]
    settings: int  # per optimizer and space (Table 4: one per bandwidth)
    seeds: int

    @property
    def runs(self) -> int:
        return len(self.optimizers) * len(self.spaces) * self.settings * self.seeds

    def device_hours(self, costs: dict[tuple[str, int], Cost], source: dict[int, int]) -> float:
        return sum(
            costs[(name, source[space])].run_hours * self.settings * self.seeds
            for name in self.optimizers
            for space in self.spaces
        )


def grids(seeds: int, table4_spaces: int) -> list[Grid]:
    return [
        Grid("Figure 3", FIGURE3, SPACES, 1, seeds),
        Grid("Table 4", ("msdarts",), SPACES[:table4_spaces], len(TABLE4_BANDWIDTHS), seeds),
        Grid("NB-1Shot1 baselines", BASELINES, SPACES, 1, seeds),
    ]


# ---- building --------------------------------------------------------------------------------------
def synthetic_cifar10(train_portion: float, augment: bool, seed: int = SEED) -> SearchData:
    """CIFAR-10-shaped search data of random images and labels, halved and augmented as CIFAR-10 is."""
    gen = torch.Generator().manual_seed(seed)
    n, shape = cifar10.TRAIN_IMAGES, cifar10.IMAGE_SHAPE
    per_image = math.prod(shape)
    buffer = torch.randn((n - 1) * IMAGE_STRIDE + per_image, generator=gen)
    x = buffer.as_strided((n, *shape), (IMAGE_STRIDE, shape[1] * shape[2], shape[2], 1))
    y = torch.randint(0, cifar10.NUM_CLASSES, (n,), generator=gen)
    return cifar10_halves(x, y, train_portion, augment, name="synthetic-cifar10")


def run_config(name: str, space: int, batch: int | None, quick: bool, device: str) -> RunConfig:
    """The config of a paper-preset run on nb101 (--quick and --batch as explicit overrides)."""
    overrides: dict[str, Any] = dict(QUICK_SETTINGS) if quick else {}
    if batch is not None:
        overrides["batch_size"] = batch
    return RunConfig.resolve(
        name, space, benchmark=BENCHMARK, preset=PRESET, overrides=overrides, seed=SEED, device=device
    )


def steps_per_epoch(cfg: RunConfig, data: SearchData) -> int:
    """Search steps per epoch of `cfg` on `data`, as the trainer counts them."""
    return data.steps_per_epoch(cfg.batch_size, partial=cfg.partial_batch)


def last_batch_size(n: int, batch_size: int, steps: int, partial: bool) -> int:
    """Size of the `steps`-th batch of a stream over n images (bench.data.splits.batch_stream's passes)."""
    index = (steps - 1) % batches_per_pass(n, batch_size, partial)
    return min(batch_size, n - index * batch_size)


def hessian_batch_size(cfg: RunConfig, data: SearchData) -> int:
    """The size of the batch the paper preset's Hessian is measured on."""
    if cfg.hessian_batch == "last":
        return last_batch_size(
            len(data.x_valid), cfg.batch_size, steps_per_epoch(cfg, data), cfg.partial_batch
        )
    return min(cfg.hessian_batch_size or cfg.batch_size, len(data.x_valid))


def hessian_epochs(cfg: RunConfig, epochs: int) -> int:
    """Epochs whose Hessian the trainer measures."""
    return sum(1 for e in range(epochs) if hessian_epoch(cfg, e, epochs))


def eval_passes(cfg: RunConfig) -> int:
    """Passes over the validation half per epoch (Trainer._evaluate_oneshot: the plain eval-BN pass, and
    a second one at the `oneshot_bn` treatment unless that is eval)."""
    if not cfg.eval_oneshot:
        return 0
    return 1 if cfg.oneshot_bn == "eval" else 2


# ---- timing ----------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """(fn(), wall seconds), with the device's queue drained before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0


@dataclass
class Probe:
    """What the per-epoch extras need: the run, its device, a validation batch and the timed share."""

    cfg: RunConfig
    device: torch.device
    epoch: int
    batch_val: Batch
    scale: Scale


def rsws_extras(plugin: Any, probe: Probe) -> Extra:
    """RSWS' incumbent selection: a few candidates timed through `select`, scaled to eval_archs; the
    re-scored candidates' batches at the measured per-batch cost."""
    hp, ctx = plugin.hp, plugin.ctx
    n = min(probe.scale.rsws_archs, hp.eval_archs)
    successive = hp.candidate_batches == "successive"
    plugin.hp = dataclasses.replace(hp, eval_archs=n, rerank_top=0)
    try:
        stream = ctx.validation_stream(probe.epoch) if successive else None
        _, seconds = timed(lambda: plugin.select(stream), probe.device)
    finally:
        plugin.hp = hp
    per_candidate = seconds / n
    per_batch = per_candidate / hp.eval_batches
    rerank_batches = (ctx.validation_pass or hp.eval_batches) if successive else hp.eval_batches
    total = hp.eval_archs * per_candidate + hp.rerank_top * rerank_batches * per_batch
    how = (
        f"selection timed on {n} of {hp.eval_archs} candidates x {hp.eval_batches} batches, scaled; "
        f"rerank {hp.rerank_top} x {rerank_batches} batches at the per-batch cost"
    )
    return Extra(total, how)


def enas_extras(plugin: Any, probe: Probe) -> Extra:
    """ENAS' controller: a few REINFORCE steps timed (after one untimed), scaled to controller_steps; the
    greedy decode of the epoch's cell once."""
    hp, device = plugin.hp, probe.device
    n = min(probe.scale.enas_steps, hp.controller_steps)
    plugin.controller_step(probe.batch_val)  # warm-up: the controller's first backward
    per_step = statistics.median(
        timed(lambda: plugin.controller_step(probe.batch_val), device)[1] for _ in range(n)
    )
    _, greedy = timed(plugin.controller.most_likely, device)
    how = f"{n} of {hp.controller_steps} controller steps timed (median), scaled; greedy decode once"
    return Extra(hp.controller_steps * per_step + greedy, how)


def own_epoch_end(plugin: Any, probe: Probe) -> Extra:
    """A plug-in's own on_epoch_end, once, in full."""
    _, seconds = timed(lambda: plugin.on_epoch_end(probe.epoch), probe.device)
    return Extra(seconds, "on_epoch_end once, in full")


EXTRAS: dict[str, Callable[[Any, Probe], Extra]] = {"rsws": rsws_extras, "enas": enas_extras}


def epoch_extras(name: str, plugin: OneShotOptimizer, probe: Probe) -> Extra | None:
    """The plug-in's per-epoch work beyond its steps; None when it has none."""
    if name in EXTRAS:
        return EXTRAS[name](plugin, probe)
    if type(plugin).on_epoch_end is not OneShotOptimizer.on_epoch_end:
        return own_epoch_end(plugin, probe)
    return None


def time_steps(
    plugin: OneShotOptimizer, batches: Iterator[tuple[Batch, Batch]], n: int, device: torch.device
) -> tuple[list[float], Batch]:
    """`n` full search steps after an untimed one: (seconds of each, the last validation batch)."""

    def step() -> Batch:
        batch_train, batch_val = next(batches)  # drawing and augmenting is part of a step's cost
        plugin.step(batch_train, batch_val)
        return batch_val

    batch_val, _ = timed(step, device)  # warm-up
    samples = []
    for _ in range(n):
        batch_val, seconds = timed(step, device)
        samples.append(seconds)
    return samples, batch_val


def time_hessian(
    cfg: RunConfig, plugin: OneShotOptimizer, data: SearchData, size: int, device: torch.device
) -> tuple[float, int]:
    """(seconds, Hessian-vector products) of one cold-start eigenvalue on `size` validation images."""
    x, y = (t.contiguous().to(device) for t in (data.x_valid[:size], data.y_valid[:size]))
    if device.type == "cuda":
        measure_hessian(cfg, plugin, (x[:HESSIAN_WARMUP_IMAGES], y[:HESSIAN_WARMUP_IMAGES]))
    info, seconds = timed(lambda: measure_hessian(cfg, plugin, (x, y)), device)
    return seconds, int(info.num_hvps)


def time_evaluation(
    cfg: RunConfig, plugin: OneShotOptimizer, data: SearchData, k: int, device: torch.device
) -> tuple[float, float]:
    """(seconds per one-shot evaluation batch over `k` batches after an untimed one, seconds of one BN
    re-estimation or 0 where the preset makes none), as bench.runs.oneshot.Evaluator runs them."""
    model, bs = plugin.ctx.model, cfg.batch_size
    weights = plugin.oneshot_weights(plugin.ctx.alphas)
    xv, yv = data.x_valid[: (k + 1) * bs].contiguous(), data.y_valid[: (k + 1) * bs]

    def evaluate(lo: int, hi: int) -> object:
        return score(
            model, plugin.forward, weights, xv[lo * bs : hi * bs], yv[lo * bs : hi * bs],
            batch_size=bs, device=device,
        )  # fmt: skip

    with untouched(model):
        evaluate(0, 1)  # warm-up: the eval-mode fast path's first call
        _, seconds = timed(lambda: evaluate(1, k + 1), device)
    if cfg.oneshot_bn != "recalibrate":
        return seconds / k, 0.0
    recal_x = data.x_train[: cfg.bn_recal_batches * bs]

    def recalibrate() -> None:
        recal = [recal_x[i : i + bs].to(device) for i in range(0, len(recal_x), bs)]
        recalibrate_bn(model, plugin.forward, weights, recal)

    with untouched(model):
        _, recal_s = timed(recalibrate, device)
    return seconds / k, recal_s


def measure(name: str, cfg: RunConfig, data: SearchData, scale: Scale) -> Cost:
    """Build the run as the trainer does and time every part of one of its epochs."""
    parts = build_parts(cfg, data)
    plugin, device = parts.plugin, parts.device
    epoch = parts.epochs // 2  # mid-schedule (radius, temperature): the cost does not depend on it
    plugin.on_epoch_start(epoch)
    batches = search_batches(cfg, data, epoch, device, augmentation(cfg, data))
    samples, batch_val = time_steps(plugin, batches, scale.steps, device)
    measured = {"step": statistics.median(samples)}
    # The Hessian first, as hessian_first=True (paper) orders them.
    hess_size, hess_s, hvps = hessian_batch_size(cfg, data), 0.0, 0
    if cfg.hessian:
        hess_s, hvps = time_hessian(cfg, plugin, data, hess_size, device)
        measured["hessian"] = hess_s
    n_eval = math.ceil(len(data.x_valid) / cfg.batch_size)
    eval_s = recal_s = 0.0
    if cfg.eval_oneshot:
        eval_s, recal_s = time_evaluation(cfg, plugin, data, min(scale.eval_batches, n_eval), device)
        measured["evaluation"] = eval_s
        if cfg.oneshot_bn == "recalibrate":
            measured["bn_recalibration"] = recal_s
    extra = epoch_extras(name, plugin, Probe(cfg, device, epoch, batch_val, scale))
    if extra is not None:
        measured["extras"] = extra.seconds
    return Cost(
        optimizer=name,
        space=cfg.space,
        batch_size=cfg.batch_size,
        init_channels=cfg.init_channels,
        cells=3 * cfg.cells_per_stack,
        epochs=parts.epochs,
        steps_per_epoch=steps_per_epoch(cfg, data),
        step_samples=samples,
        hessian_s=hess_s,
        hessian_hvps=hvps,
        hessian_batch=hess_size,
        hessian_batch_mode=cfg.hessian_batch,
        hessian_epochs=hessian_epochs(cfg, parts.epochs),
        eval_batch_s=eval_s,
        validation_images=len(data.x_valid),
        eval_batches=n_eval,
        eval_passes=eval_passes(cfg),
        bn_recal_s=recal_s,
        extras=extra or Extra(0.0, "none"),
        measured=measured,
    )


# ---- report ----------------------------------------------------------------------------------------
def judge(costs: Sequence[Cost], targets: Targets) -> list[str]:
    """The components that failed the target ('optimizer space component')."""
    return [
        f"{c.optimizer} space {c.space} {part}"
        for c in costs
        for part, seconds in c.measured.items()
        if not (math.isfinite(seconds) and seconds > targets.min_seconds)
    ]


def projections(
    costs: dict[tuple[str, int], Cost], source: dict[int, int], args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = []
    for grid in grids(args.seeds, args.table4_spaces):
        hours = grid.device_hours(costs, source)
        rows.append({
            "grid": grid.name, "optimizers": list(grid.optimizers), "spaces": list(grid.spaces),
            "settings": grid.settings, "seeds": grid.seeds, "runs": grid.runs, "device_hours": hours,
            "wall_hours": hours / args.parallel,
        })  # fmt: skip
    total = sum(r["device_hours"] for r in rows)
    rows.append({
        "grid": "total", "runs": sum(r["runs"] for r in rows), "device_hours": total,
        "wall_hours": total / args.parallel,
    })  # fmt: skip
    return rows


def describe_grid(row: dict[str, Any]) -> str:
    if row["grid"] == "total":
        return "total"
    opts, n_spaces = row["optimizers"], len(row["spaces"])
    what = f"{len(opts)} optimizers" if len(opts) > 2 else ", ".join(opts)
    settings = f" x {row['settings']} bandwidths" if row["settings"] > 1 else ""
    spaces = f"{n_spaces} space{'s' if n_spaces > 1 else ''}"
    return (
        f"{row['grid']}: {what}{settings} x {spaces} x {row['seeds']} seed{'s' if row['seeds'] > 1 else ''}"
    )


def report(
    costs: list[Cost], source: dict[int, int], args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """Print the tables and return everything as one JSON-ready dict."""
    if args.quick:
        print("\nQUICK SMOKE (--quick: a tiny supernet, a single timed step): never quote these numbers")
    first = costs[0]
    print(
        f"\npaper-preset protocol cost, benchmark {BENCHMARK}, {first.init_channels} channels, {first.cells} "
        f"cells, SYNTHETIC CIFAR-shaped data (random 3x32x32 images, random labels), device {device}, "
        f"{torch.get_num_threads()} threads, median of {args.scale.steps} timed step(s) after a warm-up"
    )
    header = (
        f"{'optimizer':<11} {'space':>5} {'batch':>5} {'steps/ep':>8} {'step s':>8} {'steps s/ep':>10} "
        f"{'hess s/ep':>9} {'eval s/ep':>9} {'extra s/ep':>10} {'total s/ep':>10} {'epochs':>6} {'h/run':>7}"
    )
    print(header + "\n" + "-" * len(header))
    for c in costs:
        print(
            f"{c.optimizer:<11} {c.space:>5} {c.batch_size:>5} {c.steps_per_epoch:>8} {c.step_s:>8.3f} "
            f"{c.steps_epoch_s:>10.1f} {c.hessian_epoch_s:>9.2f} {c.eval_epoch_s:>9.2f} "
            f"{c.extras.seconds:>10.2f} {c.epoch_s:>10.1f} {c.epochs:>6} {c.run_hours:>7.2f}"
        )
    print(
        "\nExtrapolated: steps = median step x steps/epoch (the smaller last batch counted as a full one); "
        f"Hessian = one cold-start eigenvalue on {first.hessian_batch} images (hessian_batch="
        f"{first.hessian_batch_mode}) x the epochs it is measured in (warm-started epochs need fewer "
        f"products); evaluation = {args.scale.eval_batches} timed eval batch(es) scaled to a pass over the "
        f"{first.validation_images:,}-image validation half, x {first.eval_passes} passes, + the BN "
        "re-estimation (timed in full)."
    )
    for c in costs:
        if c.extras.how != "none":
            print(f"  extras {c.optimizer} space {c.space}: {c.extras.how}")
    reused = {s: t for s, t in source.items() if s != t}
    if reused:
        print(
            f"Spaces {', '.join(map(str, reused))} were not timed: they reuse space "
            f"{next(iter(reused.values()))}'s costs."
        )
    table = projections({(c.optimizer, c.space): c for c in costs}, source, args)
    print(
        f"\nProjections (device-hours; wall hours with {args.parallel} run(s) at once, assuming perfect "
        "sharing):"
    )
    head = f"{'grid':<72} {'runs':>5} {'device-h':>10} {'wall-h':>10}"
    print(head + "\n" + "-" * len(head))
    for row in table:
        print(
            f"{describe_grid(row):<72} {row['runs']:>5} {row['device_hours']:>10.1f} "
            f"{row['wall_hours']:>10.1f}"
        )
    print(
        f"(Table 4's h = 1 runs repeat Figure 3's MS-DARTS setting; counted separately. Bandwidths "
        f"{', '.join(f'{h:g}' for h in TABLE4_BANDWIDTHS)}.)"
    )
    failed = judge(costs, Targets())
    n_parts = sum(len(c.measured) for c in costs)
    verdict = "PASS" if not failed else "FAIL"
    print(
        f"\nTargets (no numeric target): every component measured, finite and > 0: "
        f"{verdict} ({n_parts - len(failed)} of {n_parts})"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    print(f"Projected total: {table[-1]['device_hours']:.1f} device-hours (information, not judged).")
    return {
        "benchmark": "protocol",
        "synthetic": True,
        "quick": args.quick,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "preset": PRESET,
        "scale": dataclasses.asdict(args.scale),
        "seeds": args.seeds,
        "parallel": args.parallel,
        "table4_spaces": args.table4_spaces,
        "table4_bandwidths": list(TABLE4_BANDWIDTHS),
        "spaces_timed": args.space_list,
        "space_source": {str(s): t for s, t in source.items()},
        "costs": [c.to_dict() for c in costs],
        "projections": table,
        "targets": {"pass": not failed, "components": n_parts, "failed": failed},
    }


# ---- command line ----------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument(
        "--spaces", default="1,2,3", help="spaces to time, e.g. 1,2,3 (others reuse the first)"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed search steps (default 3; --quick 1)")
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size for every optimizer (default: the paper preset's)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per grid cell in the projections")
    parser.add_argument("--table4-spaces", type=int, default=1, help="spaces of Table 4's sweep (1-3)")
    parser.add_argument("--parallel", type=int, default=1, help="runs sharing the device at once")
    parser.add_argument("--rsws-archs", type=int, default=None, help="RSWS candidates timed (default 10)")
    parser.add_argument(
        "--enas-steps", type=int, default=None, help="ENAS controller steps timed (default 10)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="smoke check: tiny supernet, never to be quoted")
    parser.add_argument("--json", type=Path, default=None, help="write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a component was not measured")
    args = parser.parse_args(argv)
    base = QUICK_SCALE if args.quick else Scale()
    chosen = {"steps": args.steps, "rsws_archs": args.rsws_archs, "enas_steps": args.enas_steps}
    args.scale = dataclasses.replace(base, **{k: v for k, v in chosen.items() if v is not None})
    items = [s.strip() for s in args.spaces.split(",") if s.strip()]
    if not items or any(s not in {str(x) for x in SPACES} for s in items):
        raise BenchUsageError(f"--spaces {args.spaces!r}: choose from {', '.join(map(str, SPACES))}")
    args.space_list = sorted({int(s) for s in items})
    for key in ("steps", "rsws_archs", "enas_steps"):
        if getattr(args.scale, key) < 1:
            raise BenchUsageError(f"--{key.replace('_', '-')} {getattr(args.scale, key)}: must be >= 1")
    for key in ("batch", "threads"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            raise BenchUsageError(f"--{key} {getattr(args, key)}: must be >= 1")
    if args.seeds < 1 or args.parallel < 1:
        raise BenchUsageError(f"--seeds {args.seeds} --parallel {args.parallel}: both must be >= 1")
    if not 1 <= args.table4_spaces <= len(SPACES):
        raise BenchUsageError(f"--table4-spaces {args.table4_spaces}: choose 1 to {len(SPACES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from bench.runs.device import resolve_device

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args = parse_args(argv)
        device = resolve_device(args.device)
        for name in OPTIMIZERS:  # a setting no run can use is a usage error, before any timing
            run_config(name, 1, args.batch, args.quick, str(device))
    except (BenchUsageError, HarnessError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    data_by_split: dict[tuple[float, bool], SearchData] = {}
    costs = []
    for space in args.space_list:
        for name in OPTIMIZERS:
            cfg = run_config(name, space, args.batch, args.quick, str(device))
            key = (cfg.train_portion, cfg.augment)
            if key not in data_by_split:
                data_by_split[key] = synthetic_cifar10(*key)
            log.info("timing %s, space %d (batch %d) ...", name, space, cfg.batch_size)
            cost = measure(name, cfg, data_by_split[key], args.scale)
            log.info("  %.1f s per epoch, %.2f h per run", cost.epoch_s, cost.run_hours)
            costs.append(cost)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the next supernet starts from the same free memory
    source = {s: s if s in args.space_list else args.space_list[0] for s in SPACES}
    record = report(costs, source, args, device)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if args.strict and not record["targets"]["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())

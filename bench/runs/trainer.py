"""The one training loop every optimizer runs under.

Per epoch: the plug-in's search steps over (training batch, validation batch) pairs, then the Hessian
eigenvalue and the one-shot evaluation, discretize -> ground-truth lookup -> one tidy CSV row ->
checkpoint. The checkpoint is the source of truth (it carries the rows and the alpha history too), so a
run killed at any moment resumes from its last completed epoch and ends with exactly the rows of an
uninterrupted run.

The protocol switches (bench/runs/config.py; paper = the SDARTS/MS-DARTS/NAS-Bench-1Shot1 scripts):
- `scheduler_step_first`: the scripts call `scheduler.step()` at the start of each epoch, so epoch e
  trains at eta(e + 1) and the last one at w_lr_min; otherwise epoch e trains at eta(e).
- `partial_batch`: an epoch is one pass over the weight half including its smaller last batch.
- `hessian_first`: the Hessian runs before the one-shot evaluation (scripts: in `train()`, before
  `infer`); with `hessian_restore_bn=False` its train-mode forward leaves its BN statistics, which the
  evaluation then sees.
- `hessian_batch`: last = the epoch's last search batch of the validation half (SDARTS/MS-DARTS'
  `input_search` after the loop), random = a fresh random one (RobustDARTS), fixed = one per run.
- `hessian_weights`: search = the plug-in's `hessian_mixing()` through its `forward`; eval = its
  `eval_weights` through the plain supernet.
- `lookup_alphas`: start = an epoch's row looks up the alphas saved at the start of the epoch (the
  scripts' `one_shot_architecture_{epoch}.obj`), end = those the epoch produced.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bench import results
from bench.benchmarks import get_benchmark
from bench.data.splits import (
    STREAM_TRAIN,
    STREAM_VALID,
    Augmentation,
    SearchData,
    epoch_batches,
    fixed_batch,
    random_batch,
)
from bench.results import schema
from bench.runs import checkpoint, oneshot, reproducible, selection
from bench.runs.config import RunConfig
from bench.runs.device import resolve_device, rng_state, set_rng_state
from bench.runs.machine import machine_record
from bench.runs.parts import augmentation, build_parts
from bench.search.spaces import Architecture
from bench.truth.base import GroundTruth

if TYPE_CHECKING:
    from bench.search.hessian import EigenInfo
    from optimizers import OneShotOptimizer
    from optimizers.base import Batch

log = logging.getLogger(__name__)


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; the run cannot continue."""


@dataclass
class RunOutcome:
    """What a finished (or skipped) run reports to the summary table."""

    run_dir: Path
    state: str  # complete | skipped | failed
    epochs: int
    last_row: dict[str, Any] | None
    reason: str = ""


def fault_point(point: str, epoch: int) -> None:
    """Crash-safety test hook: NB1SHOT1_KILL_AT=<point>:<epoch> SIGKILLs the process right here."""
    if os.environ.get("NB1SHOT1_KILL_AT") == f"{point}:{epoch}":
        os.kill(os.getpid(), signal.SIGKILL)


def hessian_epoch(cfg: RunConfig, epoch: int, epochs: int) -> bool:
    """Whether the 0-based `epoch` of `epochs` measures the eigenvalue: every `hessian_every`-th from the
    first, and always the last (the end point of Figure 3)."""
    return bool(cfg.hessian) and (epoch % cfg.hessian_every == 0 or epoch == epochs - 1)


def correlation_epoch(cfg: RunConfig, epoch: int, epochs: int) -> bool:
    """Whether `epoch` runs the one-shot vs ground-truth correlation: every `correlation_every`-th
    epoch counted from 1, and the last; never when it is 0 (off)."""
    every = cfg.correlation_every
    return bool(every) and ((epoch + 1) % every == 0 or epoch == epochs - 1)


class Trainer:
    """Runs one search (one optimizer, space, seed, setting) into `out_dir`."""

    def __init__(
        self,
        cfg: RunConfig,
        out_dir: Path,
        table: GroundTruth,
        data: SearchData,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.table = table
        self.data = data
        self.meta = dict(meta or {})
        self.repeats = get_benchmark(cfg.benchmark).repeats  # the per-repeat columns of epochs.csv
        if cfg.reproducible:
            reproducible.check_pinned(resolve_device(cfg.device))
        parts = build_parts(cfg, data)  # seeds everything with the run's seed first
        self.parts = parts
        self.device, self.space, self.model, self.alphas = (
            parts.device,
            parts.space,
            parts.model,
            parts.alphas,
        )
        self.w_optim, self.a_optim, self.scheduler = parts.w_optim, parts.a_optim, parts.scheduler
        self.plugin, self.hp, self.epochs = parts.plugin, parts.hp, parts.epochs
        self.best_test_error = table.best_test_error(cfg.space)
        self.rows: list[dict[str, Any]] = []
        self.alpha_history: dict[int, list[np.ndarray]] = {}
        self.eig_vector: np.ndarray | None = None  # last Lanczos Ritz vector (warm start)
        self.start_epoch = 0
        self.correlation_rows: list[dict[str, Any]] = []  # one per measured epoch
        self.correlation_archs: list[dict[str, Any]] = []  # one per measured epoch and model
        self._corr_archs: list[Architecture] | None = None  # the sampled models, drawn once
        self.augment = augmentation(cfg, data)
        self.last_search_batch: tuple[torch.Tensor, torch.Tensor] | None = None  # of the current epoch

    def _checkpoint(self, epoch: int) -> checkpoint.Checkpoint:
        return checkpoint.Checkpoint(
            epoch=epoch,
            model=self.model.state_dict(),
            alphas=list(self.alphas),
            w_optim=self.w_optim.state_dict(),
            a_optim=self.a_optim.state_dict(),
            scheduler=self.scheduler.state_dict(),
            plugin=self.plugin.extra_state(),
            rng=rng_state(),
            rows=self.rows,
            correlation=self.correlation_rows,
            correlation_archs=self.correlation_archs,
            alpha_history=self.alpha_history,
            eig_vector=self.eig_vector,
        )

    def _resume(self) -> None:
        for stale in self.out_dir.glob(".*.tmp"):  # half-written files of a killed process
            stale.unlink(missing_ok=True)
        path = self.out_dir / results.CHECKPOINT
        if not path.exists():
            return
        state = checkpoint.read(path)  # checked whole before anything is loaded
        checkpoint.load_into(self.parts, state, optimizers=True)
        if not self.cfg.zero_grad_set_to_none:
            restore_zeroed_grads(self.w_optim)
        set_rng_state(state.rng)
        self.rows = list(state.rows)
        self.correlation_rows = list(state.correlation)
        self.correlation_archs = list(state.correlation_archs)
        self.alpha_history = dict(state.alpha_history)
        self.eig_vector = state.eig_vector
        self.start_epoch = state.epoch + 1
        # The CSV may be one epoch ahead of or behind the checkpoint: rewrite it from the checkpoint.
        self._write_tables()
        log.info("resumed %s after epoch %d", self.out_dir, state.epoch)

    # ---- one epoch -----------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        loss_sum, correct, n = 0.0, 0, 0
        for batch_train, batch_val in search_batches(self.cfg, self.data, epoch, self.device, self.augment):
            self.last_search_batch = batch_val
            stats = self.plugin.step(batch_train, batch_val)
            fault_point("step", epoch)
            if not math.isfinite(stats.loss):
                raise DivergedError(f"training loss became {stats.loss} in epoch {epoch}")
            loss_sum += stats.loss * stats.n
            correct += stats.correct
            n += stats.n
        return loss_sum / max(n, 1), correct / max(n, 1)

    def _evaluator(self) -> oneshot.Evaluator:
        cfg = self.cfg
        return oneshot.Evaluator(
            self.model, self.data.x_valid, self.data.y_valid,
            recal_x=self.data.x_train[: cfg.bn_recal_batches * cfg.batch_size],
            batch_size=cfg.batch_size, device=self.device,
        )  # fmt: skip

    def _evaluate_oneshot(self) -> dict[str, float]:
        """One-shot loss and accuracy on the architecture half at the plug-in's one-shot weights: with BN
        as `oneshot_bn` says (default: statistics re-estimated at these weights), and with the running
        statistics as the search left them (`_evalbn`). Leaves the model and every RNG as they were."""
        nan = float("nan")
        if not self.cfg.eval_oneshot:
            return dict.fromkeys(
                (
                    "oneshot_valid_loss",
                    "oneshot_valid_acc",
                    "oneshot_valid_loss_evalbn",
                    "oneshot_valid_acc_evalbn",
                ),
                nan,
            )
        evaluate = self._evaluator()
        weights = self.plugin.oneshot_weights(self.alphas)
        plain = evaluate(self.plugin.forward, weights, bn="eval")
        main = (
            plain
            if self.cfg.oneshot_bn == "eval"
            else evaluate(self.plugin.forward, weights, self.cfg.oneshot_bn)
        )
        return {
            "oneshot_valid_loss": main.loss,
            "oneshot_valid_acc": main.acc,
            "oneshot_valid_loss_evalbn": plain.loss,
            "oneshot_valid_acc_evalbn": plain.acc,
        }

    def _correlation(self, epoch: int) -> None:
        """NAS-Bench-1Shot1's one-shot vs ground-truth correlation: the same sampled models every time,
        each scored on the supernet at its one-hot weights (only its ops run; BN as `oneshot_bn`)."""
        cfg = self.cfg
        if not correlation_epoch(cfg, epoch, self.epochs):
            return
        t0 = time.perf_counter()
        if self._corr_archs is None:
            self._corr_archs = oneshot.sample_architectures(self.space, cfg.correlation_samples, cfg.seed)
        evaluate = self._evaluator()
        dtype = self.alphas[0].dtype
        archs, one_shot, valid, test = [], [], [], []
        for arch in self._corr_archs:
            matrix, ops = self.space.spec(arch)
            truth = self.table.query(matrix, ops)
            weights = self.space.one_hot(arch, dtype=dtype, device=self.device)
            choice = torch.tensor(arch.ops)

            def forward(
                x: torch.Tensor, w: Sequence[torch.Tensor], choice: torch.Tensor = choice
            ) -> torch.Tensor:
                return self.model(x, w, op_choice=choice)

            s = evaluate(forward, weights, cfg.oneshot_bn)
            archs.append({
                "epoch": epoch, "arch_hash": truth.arch_hash, "oneshot_valid_loss": s.loss,
                "oneshot_valid_acc": s.acc, "valid_acc_mean": truth.valid_acc_mean,
                "test_acc_mean": truth.test_acc_mean,
            })  # fmt: skip
            one_shot.append(s.acc)
            valid.append(truth.valid_acc_mean)
            test.append(truth.test_acc_mean)
        summary = {"epoch": epoch, **oneshot.correlation_stats(one_shot, valid, test)}
        summary["n"] = int(summary["n"])
        summary["seconds"] = time.perf_counter() - t0
        self.correlation_rows.append(summary)
        self.correlation_archs.extend(archs)
        log.info(
            "epoch %d: one-shot vs ground truth over %d models: Spearman %.3f (valid), %.3f (test)",
            epoch, summary["n"], summary["spearman_valid"], summary["spearman_test"],
        )  # fmt: skip

    def hessian_batch(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The validation batch the epoch's Hessian is measured on (`hessian_batch`)."""
        cfg, data = self.cfg, self.data
        if cfg.hessian_batch == "last":
            if self.last_search_batch is None:
                raise RuntimeError("hessian_batch=last: no search step ran in this epoch")
            return self.last_search_batch
        size = cfg.hessian_batch_size or cfg.batch_size
        if cfg.hessian_batch == "random":
            return random_batch(data.x_valid, data.y_valid, size, cfg.seed, epoch, self.device, self.augment)
        return fixed_batch(data.x_valid, data.y_valid, size, cfg.seed, self.device)

    def _hessian(self, epoch: int) -> tuple[float, float]:
        """(largest algebraic eigenvalue, seconds); NaN when this epoch is not measured."""
        cfg = self.cfg
        if not hessian_epoch(cfg, epoch, self.epochs):
            return float("nan"), 0.0
        t0 = time.perf_counter()
        info = measure_hessian(cfg, self.plugin, self.hessian_batch(epoch), start=self.eig_vector)
        # Warm start for the next epoch: the top eigenvector moves slowly along a search. It is part of
        # the checkpoint, so a resumed run measures exactly what an uninterrupted one does.
        self.eig_vector = info.vector
        log.debug("epoch %d: eigenvalue %.6g after %d HVPs", epoch, info.eigenvalue, info.num_hvps)
        return float(info.eigenvalue), time.perf_counter() - t0

    def _row(
        self,
        epoch: int,
        train: tuple[float, float],
        one_shot: dict[str, float],
        alphas: list[torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        """The epoch's row; the architecture is that of `alphas` (default: the current ones)."""
        matrix, ops = self.space.discretize(self.alphas if alphas is None else alphas)
        truth = self.table.query(matrix, ops)
        return schema.row(
            identity={"benchmark": self.table.name, "space": self.cfg.space, "optimizer": self.cfg.optimizer,
                      "tag": self.meta.get("tag", ""), "seed": self.cfg.seed, "epoch": epoch},
            architecture={
                "arch_hash": truth.arch_hash,
                "matrix": json.dumps(np.asarray(matrix).astype(int).tolist(), separators=(",", ":")),
                "ops": ",".join(ops),
            },
            measurements={"oneshot_train_loss": train[0], "oneshot_train_acc": train[1], **one_shot},
            truth={**schema.ground_truth(truth.valid_acc, truth.test_acc, repeats=self.repeats,
                                         best_test_error=self.best_test_error),
                   **self._budget_truth(matrix, ops)},
        )  # fmt: skip

    def _budget_truth(self, matrix: np.ndarray, ops: list[str]) -> dict[str, float]:
        """The per-budget columns `--set truth_budgets` asks for (none without it)."""
        out: dict[str, float] = {}
        for budget in self.cfg.truth_budgets:
            r = self.table.query(matrix, ops, budget=budget)
            out.update(schema.budget_truth(budget, r.valid_acc, r.test_acc, r.train_time))
        return out

    def _write_tables(self) -> None:
        results.write_epochs(
            self.out_dir / results.EPOCHS_CSV, self.rows, self.repeats, self.cfg.truth_budgets
        )
        if self.cfg.correlation_every:
            results.write_table(
                self.out_dir / results.CORRELATION_CSV, self.correlation_rows, results.CORRELATION_COLUMNS
            )
            results.write_table(
                self.out_dir / results.CORRELATION_ARCHS_CSV,
                self.correlation_archs,
                results.CORRELATION_ARCH_COLUMNS,
            )
        results.write_alphas(
            self.out_dir / results.ALPHAS_NPZ, self.alpha_history, list(self.space.alpha_shapes())
        )

    def mark(self, state: str, reason: str = "") -> None:
        """Record the run's state (running, complete, failed, interrupted) in status.json; the pid and
        host let `bench.status` tell a running run from one whose process was killed."""
        import socket

        self.out_dir.mkdir(parents=True, exist_ok=True)
        results.write_status(
            self.out_dir, state, reason,
            epochs_done=len(self.rows), epochs=self.epochs, pid=os.getpid(), host=socket.gethostname(),
        )  # fmt: skip

    # ---- the loop ------------------------------------------------------------------------------
    def run(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> RunOutcome:
        """Train from the last checkpoint (or scratch) to the last epoch; returns the outcome."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._resume()
        wall0 = time.perf_counter() - (self.rows[-1]["wallclock_s"] if self.rows else 0.0)
        self.mark("running")
        cfg = self.cfg
        for epoch in range(self.start_epoch, self.epochs):
            t0 = time.perf_counter()
            self.plugin.on_epoch_start(epoch)
            if cfg.scheduler_step_first:
                self._step_scheduler()
            lr = self.scheduler.get_last_lr()[0]
            start_alphas = [a.detach().clone() for a in self.alphas]
            self.last_search_batch = None
            train = self._train_epoch(epoch)
            self.plugin.on_epoch_end(epoch)
            if not cfg.scheduler_step_first:
                self._step_scheduler()
            if cfg.hessian_first:
                eig, eig_seconds = self._hessian(epoch)
                valid = self._evaluate_oneshot()
            else:
                valid = self._evaluate_oneshot()
                eig, eig_seconds = self._hessian(epoch)
            self.last_search_batch = None  # not needed after the epoch: free it
            row = self._row(epoch, train, valid, start_alphas if cfg.lookup_alphas == "start" else None)
            row["hessian_eig_max"] = abs(eig)  # as SDARTS/MS-DARTS report it: norm(max(eigvals))
            row["hessian_lambda_max"] = eig
            row["hessian_seconds"] = eig_seconds
            row["lr"] = lr
            row["epoch_seconds"] = time.perf_counter() - t0
            row["wallclock_s"] = time.perf_counter() - wall0
            self.rows.append(row)
            self._correlation(epoch)  # after the timing: it is an analysis, not part of the search
            self.alpha_history[epoch] = [a.detach().cpu().numpy().copy() for a in self.alphas]
            fault_point("before-checkpoint", epoch)
            checkpoint.save(self._checkpoint(epoch), self.out_dir / results.CHECKPOINT)
            fault_point("after-checkpoint", epoch)
            self._write_tables()
            fault_point("after-tables", epoch)
            if on_epoch is not None:
                on_epoch(row)
        selection.select(self)  # after the search: nothing unless selection=pt (bench.runs.selection)
        self.mark("complete")
        return RunOutcome(self.out_dir, "complete", len(self.rows), self.rows[-1] if self.rows else None)

    def _step_scheduler(self) -> None:
        with warnings.catch_warnings():
            # Stepping first (the scripts' order) is deliberate: no "step() before optimizer.step()" noise.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            self.scheduler.step()


def search_batches(
    cfg: RunConfig, data: SearchData, epoch: int, device: torch.device, augment: Augmentation | None
) -> Iterator[tuple[Batch, Batch]]:
    """The epoch's search steps' (training batch, validation batch) pairs, drawn and augmented lazily:
    `data.steps_per_epoch` of them (`partial_batch`: the last pair is the smaller remainder)."""
    steps = data.steps_per_epoch(cfg.batch_size, partial=cfg.partial_batch)
    train = epoch_batches(
        data.x_train, data.y_train, cfg.batch_size, cfg.seed, epoch, STREAM_TRAIN, device,
        augment=augment, steps=steps, partial=cfg.partial_batch,
    )  # fmt: skip
    valid = epoch_batches(
        data.x_valid, data.y_valid, cfg.batch_size, cfg.seed, epoch, STREAM_VALID, device,
        augment=augment, steps=steps, partial=cfg.partial_batch,
    )  # fmt: skip
    return zip(train, valid, strict=True)


def measure_hessian(
    cfg: RunConfig,
    plugin: OneShotOptimizer,
    batch: tuple[torch.Tensor, torch.Tensor],
    start: np.ndarray | None = None,
) -> EigenInfo:
    """The Hessian eigenvalue of the plug-in's supernet on `batch`, as the run's settings define it
    (`hessian_weights`, `hessian_method`, `hessian_hvp`, `hessian_restore_bn`): the one way the trainer
    measures it, shared with `bench.perf protocol`, which times it. `start`: a warm-start vector
    (method="exact" ignores it and returns no vector)."""
    from bench.search.hessian import supernet_eigenvalue_info

    if cfg.hessian_weights == "search":
        # A plug-in that runs the plain supernet keeps the staged loss (hessian_hvp=segmented).
        mixing, forward = plugin.hessian_mixing(), own_forward(plugin)
    else:
        mixing, forward = plugin.eval_weights, None
    return supernet_eigenvalue_info(
        plugin.ctx.model,
        plugin.ctx.alphas,
        mixing,
        batch,
        arch_weight_decay=cfg.a_weight_decay,
        method=cfg.hessian_method,
        hvp=cfg.hessian_hvp,
        start=start,
        forward=forward,
        restore_bn=cfg.hessian_restore_bn,
    )


def own_forward(plugin: Any) -> Callable | None:
    """The plug-in's `forward` when it overrides the base one (GDAS, RSWS), else None (the supernet)."""
    from optimizers.base import OneShotOptimizer

    return None if type(plugin).forward is OneShotOptimizer.forward else plugin.forward


def restore_zeroed_grads(w_optim: torch.optim.Optimizer) -> None:
    """Give every weight that has a momentum buffer a zero gradient again.

    With in-place zero_grad (PyTorch 1.3, `zero_grad_set_to_none=False`) a weight keeps a zero gradient
    once it has had one, so weight decay and momentum move it even in steps that do not use it (ops
    GDAS did not sample). The checkpoint has no gradients; the weights that had one are exactly those
    SGD holds a momentum buffer for, so a resumed run steps the same weights as an uninterrupted one."""
    for group in w_optim.param_groups:
        for p in group["params"]:
            if p.grad is None and w_optim.state.get(p, {}).get("momentum_buffer") is not None:
                p.grad = torch.zeros_like(p)


def config_record(cfg: RunConfig, trainer: Trainer, extra: dict[str, Any]) -> dict[str, Any]:
    """Everything config.json holds: settings, resolved values, versions, device, git revision."""
    import platform

    record = {
        "results_version": results.RESULTS_VERSION,
        "config": cfg.to_dict(),
        "epochs": trainer.epochs,
        "optimizer_hyperparameters": dataclasses.asdict(trainer.hp),
        "device": str(trainer.device),
        # CPU numbers are bit-reproducible for a fixed seed AND thread count (reduction order).
        "torch_threads": torch.get_num_threads(),
        # Everything else besides the settings that decides CPU numbers (bench/runs/machine.py).
        "machine": machine_record(is_reproducible=cfg.reproducible),
        "device_name": torch.cuda.get_device_name(trainer.device)
        if trainer.device.type == "cuda"
        else platform.processor() or platform.machine(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "harness": results.harness_version(),
        },
        "git_revision": results.git_revision(),
        "best_test_error": trainer.best_test_error,
        # Regret of a uniformly random cell of the space (None until the table covers it): the baseline
        # analysis.regret draws beside the optimizers.
        "random_baseline": random_baseline(trainer.table, cfg.space),
    }
    record.update(extra)
    return record


def random_baseline(table: GroundTruth, space: int) -> dict[str, Any] | None:
    """The table's random-architecture regret baseline as a plain dict, where the table offers one."""
    value = table.random_baseline(space)
    return dataclasses.asdict(value) if value is not None else None

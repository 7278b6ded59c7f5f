"""Executing run requests: one run, then serial, joblib (processes/GPUs) or Dask (a cluster).

A run is the unit of work everywhere. Workers open the ground-truth table and load the data
themselves (through picklable factories) and write their results straight into the run directory,
so every executor produces the same files. With Dask this means the results directory must be on a
filesystem the workers share (NFS, Lustre, ...); each run writes only inside its own directory, so
runs never contend for a file, and the client only receives the small outcome record.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import results
from bench.runs import machine, parts, reproducible, runlog
from bench.runs.config import RunConfig
from bench.runs.device import resolve_device
from bench.runs.progress import Display, Watched, describe_epoch
from bench.runs.runlog import Console
from bench.runs.trainer import RunOutcome, Trainer, config_record

log = logging.getLogger(__name__)

TableFactory = Callable[[], Any]
DataFactory = Callable[[RunConfig], Any]


# ---- what to run ---------------------------------------------------------------------------------
@dataclass
class RunRequest:
    """One point of a grid: its resolved config and where it writes (picklable for workers)."""

    cfg: RunConfig
    tag: str
    out_root: Path

    @property
    def run_dir(self) -> Path:
        c = self.cfg
        return results.run_dir(self.out_root, c.benchmark, c.space, c.optimizer, self.tag, c.seed)

    @property
    def label(self) -> str:
        """The name every log line of this run carries: `darts s1 seed0 quick`."""
        return runlog.run_label(self.cfg.optimizer, self.cfg.space, self.cfg.seed, self.tag)

    @property
    def epochs(self) -> int:
        return self.cfg.resolved_epochs(self.cfg.plugin().reference_epochs)

    def watched(self) -> Watched:
        return Watched(self.label, self.run_dir, self.epochs)


# ---- where ground truth and data come from ------------------------------------------------------
def factories(benchmark: str, paths: Any) -> tuple[TableFactory, DataFactory]:
    """Picklable factories for the real benchmark, for workers in other processes or machines."""
    return functools.partial(parts.open_table, benchmark, paths), functools.partial(
        parts.load_data, paths=paths
    )


# ---- one run -------------------------------------------------------------------------------------
def benchmark_note(benchmark: str, best_test_error: float | None) -> str:
    from bench.benchmarks import get_benchmark

    return get_benchmark(benchmark).run_note(best_test_error)


def execute(
    request: RunRequest,
    table: Any,
    data_factory: DataFactory,
    force: bool = False,
    console: Console | None = None,
) -> RunOutcome:
    """Run, resume or skip one request. A diverged or crashed run is marked failed, not raised.
    Every line it logs (in this thread) names the run, on the terminal and in its run.log."""
    with runlog.naming(request.label):
        return _execute(request, table, data_factory, force, console or Console())


def _execute(
    request: RunRequest, table: Any, data_factory: DataFactory, force: bool, console: Console
) -> RunOutcome:
    run_dir: Path = request.run_dir
    if force and run_dir.exists():
        log.info("--force: moved the old run to %s", results.move_aside(run_dir, request.out_root))
    status = results.read_json(run_dir / results.STATUS_JSON)
    if status and status.get("state") == "complete":
        rows = results.read_epochs(run_dir / results.EPOCHS_CSV)
        log.debug("already complete, skipping: %s (use --force to start over)", run_dir)
        return RunOutcome(run_dir, "skipped", len(rows), rows[-1] if rows else None, "already complete")
    # Pinned before the first operation of the run (building the supernet already computes).
    with reproducible.pinned(request.cfg.reproducible, resolve_device(request.cfg.device)):
        return _train(request, table, data_factory, console)


def _train(request: RunRequest, table: Any, data_factory: DataFactory, console: Console) -> RunOutcome:
    run_dir: Path = request.run_dir
    data = data_factory(request.cfg)
    trainer = Trainer(request.cfg, run_dir, table, data, meta={"tag": request.tag})
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = results.read_json(run_dir / results.CONFIG_JSON)
    extra = {
        "tag": request.tag,
        "benchmark_note": benchmark_note(request.cfg.benchmark, trainer.best_test_error),
    }
    record = config_record(request.cfg, trainer, extra)
    resumed_across = (run_dir / results.CHECKPOINT).exists() and _machine_changed(previous, record)
    results.write_json(run_dir / results.CONFIG_JSON, record)
    with runlog.run_log(run_dir / results.RUN_LOG, request.label, console.run_log_level):
        try:
            verb = "resuming" if (run_dir / results.CHECKPOINT).exists() else "starting"
            log.info("%s: %d epochs into %s", verb, trainer.epochs, run_dir)
            if resumed_across:
                log.warning(
                    "resumed on another machine, so its epochs mix two machines' numbers (%s); "
                    "config.json keeps the earlier one under machine_history; use --force to start over",
                    "; ".join(resumed_across),
                )

            def on_epoch(row: dict[str, Any]) -> None:
                log.info(describe_epoch(row, trainer.epochs))

            return trainer.run(on_epoch=on_epoch)
        except KeyboardInterrupt:
            trainer.mark("interrupted", "stopped by the user; rerun the same command to resume")
            # INFO: the command says so once for all runs (a worker's warning would cut the bars).
            log.info("interrupted: %s keeps its last completed epoch; rerun to resume", run_dir)
            raise
        except Exception as exc:  # one failed run must not stop a grid
            reason = f"{type(exc).__name__}: {exc}"
            log.error("run failed: %s (traceback in %s)", reason, run_dir / results.RUN_LOG)
            log.error("traceback:\n%s", traceback.format_exc(), extra={runlog.RUN_LOG_ONLY: True})
            trainer.mark("failed", reason)
            return RunOutcome(
                run_dir, "failed", len(trainer.rows), trainer.rows[-1] if trainer.rows else None, reason
            )


def _machine_changed(previous: dict[str, Any] | None, record: dict[str, Any]) -> list[str]:
    """How this machine differs from the one that wrote the earlier epochs; records the earlier one."""
    if not previous:
        return []
    history = list(previous.get("machine_history", []))
    before = previous.get("machine")
    if before is not None and before not in history:
        history.append(before)
    if history:
        record["machine_history"] = history
    return machine.differences(before, record["machine"])


def _in_worker(
    request: RunRequest,
    table_factory: TableFactory,
    data_factory: DataFactory,
    threads: int,
    force: bool,
    console: Console,
) -> RunOutcome:
    """A run in a fresh process: its own thread budget, table connection, data and terminal logging."""
    torch.set_num_threads(threads)
    runlog.configure(console)
    with runlog.naming(request.label):
        table = table_factory()
    return execute(request, table, data_factory, force=force, console=console)


# ---- many runs -----------------------------------------------------------------------------------
def spread_over_gpus(requests: Sequence[RunRequest]) -> None:
    """`--device cuda` with several visible GPUs: one run per GPU, round robin."""
    n = torch.cuda.device_count()
    if n < 2:
        return
    for i, req in enumerate(requests):
        if req.cfg.device in ("cuda", "auto"):
            req.cfg.device = f"cuda:{i % n}"


def run_serial(
    requests: Sequence[RunRequest],
    table_factory: TableFactory,
    data_factory: DataFactory,
    console: Console,
    force: bool,
    threads: int = 1,
) -> list[RunOutcome]:
    """One run after another in this process; each logs its own epochs, the display draws the bars."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    outcomes = []
    try:
        table = table_factory()
        with Display([r.watched() for r in requests], console) as display:
            for r in requests:
                outcomes.append(execute(r, table, data_factory, force=force, console=console))
                display.finished(outcomes[-1])
        return outcomes
    finally:
        torch.set_num_threads(before)


def run_joblib(
    requests: Sequence[RunRequest],
    table_factory: TableFactory,
    data_factory: DataFactory,
    jobs: int,
    console: Console,
    force: bool,
    threads: int = 1,
) -> list[RunOutcome]:
    """Independent runs in `jobs` processes, each with `threads` torch threads.

    The workers share this terminal, so they print only warnings and errors (a line of theirs would
    cut the bars); their epochs reach the terminal through the display, which reads their files and
    logs each epoch under the run's name. Everything is in each run's run.log as well.
    """
    from joblib import Parallel, delayed

    quiet_worker = dataclasses.replace(console, level=max(console.level, logging.WARNING), bars=False)
    tasks = (
        delayed(_in_worker)(r, table_factory, data_factory, threads, force, quiet_worker) for r in requests
    )
    outcomes = []
    with Display([r.watched() for r in requests], console, announce=True) as display:
        for outcome in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
            outcomes.append(outcome)
            display.finished(outcome)
    return _in_request_order(outcomes, requests)


def run_dask(
    requests: Sequence[RunRequest],
    table_factory: TableFactory,
    data_factory: DataFactory,
    address: str,
    console: Console,
    force: bool,
    threads: int = 1,
) -> list[RunOutcome]:
    """Each run as one task on a Dask cluster; workers write into the shared results directory.

    Workers log every epoch, named, with timestamps, into their own logs (a Slurm job's output); this
    process shows the same epochs read from the shared files."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RuntimeError("--dask needs the distributed package: pip install 'dask[distributed]'") from None

    worker_console = dataclasses.replace(console, bars=False, timestamps=True)
    outcomes = []
    with Client(address, timeout="30s") as client:
        futures = [
            client.submit(
                _in_worker, r, table_factory, data_factory, threads, force, worker_console, pure=False
            )
            for r in requests
        ]
        with Display([r.watched() for r in requests], console, announce=True, remote=True) as display:
            for future in as_completed(futures):
                outcomes.append(future.result())
                display.finished(outcomes[-1])
    return _in_request_order(outcomes, requests)


def _in_request_order(outcomes: list[RunOutcome], requests: Sequence[RunRequest]) -> list[RunOutcome]:
    order = {str(r.run_dir): i for i, r in enumerate(requests)}
    return sorted(outcomes, key=lambda o: order.get(str(o.run_dir), len(order)))

"""What a researcher sees while runs execute.

On a terminal: an overall bar (the epochs of the whole command, with its ETA) and one stable line per
active run (epoch, one-shot accuracy, test accuracy, eigenvalue, ETA); log lines scroll above them
without cutting them. Elsewhere (a file, CI, nohup, a Slurm or Dask worker log): no bars, only log
lines, each naming its run, one per epoch.

The display reads only the files each run writes (status.json, epochs.csv), polled from this process
by a background thread, so it is the same for runs in this process, in joblib worker processes and on
Dask workers (whose results directory is shared anyway): workers need no channel back to the parent,
and their own terminal output can stay quiet.
"""

from __future__ import annotations

import logging
import math
import numbers
import shutil
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import results
from bench.runs.runlog import Console
from bench.runs.status import fmt_duration

log = logging.getLogger("bench.progress")


@dataclass(frozen=True)
class Watched:
    """A run the display follows: its name, directory and number of epochs."""

    label: str
    run_dir: Path
    epochs: int


def _f(value: Any, spec: str) -> str:
    if not isinstance(value, numbers.Real) or math.isnan(value):
        return "-"
    return format(value, spec)


def describe_epoch(row: Mapping[str, Any], epochs: int) -> str:
    """`epoch 3/10: one-shot acc 0.9656, test acc 0.5911, regret 0.0123, eig 1.22, 2.4s` (1-based)."""
    return (
        f"epoch {int(row['epoch']) + 1}/{epochs}: one-shot acc {_f(row.get('oneshot_valid_acc'), '.4f')}, "
        f"test acc {_f(row.get('test_acc_mean'), '.4f')}, regret {_f(row.get('test_regret'), '.4f')}, "
        f"eig {_f(row.get('hessian_eig_max'), '.4g')}, {_f(row.get('epoch_seconds'), '.1f')}s"
    )


def describe_outcome(outcome: Any, epochs: int, reason: bool = True) -> str:
    """One line for a finished run: its state, epochs and last numbers (or why it failed)."""
    row = outcome.last_row or {}
    if outcome.state == "skipped":
        return "skipped: already complete (--force starts over)"
    figures = ", ".join(
        [
            f"test acc {_f(row.get('test_acc_mean'), '.4f')}",
            f"regret {_f(row.get('test_regret'), '.4f')}",
            f"eig {_f(row.get('hessian_eig_max'), '.4g')}",
            f"wall {fmt_duration(row.get('wallclock_s'))}",
        ]
    )
    text = f"{outcome.state}, {outcome.epochs}/{epochs} epochs: {figures}"
    return f"{text}; {outcome.reason}" if outcome.reason and reason else text


def _describe_start(done: int, epochs: int) -> str:
    return f"resuming: {done} of {epochs} epochs done" if done else f"starting: {epochs} epochs"


@dataclass
class _Run:
    watched: Watched
    status_seen: tuple[int, int] | None  # (mtime_ns, size) of status.json when last read
    announced: int  # the last epoch (0-based) reported; -1: none
    rows_done: int
    csv_seen: tuple[int, int] | None = None
    csv_time: float = 0.0
    last_row: dict[str, Any] | None = None
    state: str = "waiting"  # waiting | running | complete | failed | interrupted (from status.json)
    began: float = field(default_factory=time.time)
    slot: int | None = None
    done: bool = False


def _signature(path: Path) -> tuple[int, int] | None:
    """Changes whenever the file is replaced; (mtime, size) because some filesystems (NFS) keep
    mtimes to the second, and every CSV rewrite adds a row."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Display:
    """Follows `runs` while an executor runs them; `finished(outcome)` when each one returns.

    console.bars: draw the overall bar and the per-run lines (a terminal). announce: log each new
    epoch of runs in other processes (joblib, Dask), which do not print theirs here, as `[run] epoch ...`
    (a run in this process logs its own). remote: the runs' errors do not reach this terminal either
    (Dask), so a failed run's reason is repeated here.
    """

    def __init__(
        self,
        runs: Sequence[Watched],
        console: Console,
        announce: bool = False,
        remote: bool = False,
        interval: float = 0.5,
    ) -> None:
        self.console = console
        self.bars = console.bars
        self.announce = announce and console.level <= logging.INFO
        self.remote = remote
        self.interval = interval
        self._runs: dict[str, _Run] = {}
        for w in runs:
            rows = results.poll_rows(w.run_dir / results.EPOCHS_CSV)
            self._runs[str(w.run_dir)] = _Run(
                w, _signature(w.run_dir / results.STATUS_JSON), announced=len(rows) - 1, rows_done=len(rows)
            )
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished: Counter[str] = Counter()
        self._overall: Any = None
        self._slots: list[Any] = []  # tqdm lines, reused: a slot keeps its place on the screen
        self._slot_run: list[_Run | None] = []
        self._width = min(48, max((len(w.label) for w in runs), default=10))

    # ---- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Display:
        if self.bars:
            from tqdm import tqdm

            total = sum(r.watched.epochs for r in self._runs.values())
            done = self._epochs_done()
            self._overall = tqdm(
                total=total, initial=done, position=0, leave=True, dynamic_ncols=True, smoothing=0,
                desc=self._overall_desc(), unit="epoch",
                bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} epochs [{elapsed}<{remaining}]",
            )  # fmt: skip
        if self.bars or self.announce:
            self._thread = threading.Thread(target=self._loop, name="bench-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for bar in reversed(self._slots):
                bar.close()
            if self._overall is not None:
                self._overall.set_description_str(self._overall_desc(), refresh=False)
                self._overall.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # the display must never take a search down
                log.debug("progress display failed to update", exc_info=True)

    def refresh(self) -> None:
        """Read the runs' files and redraw (the display's thread does this every `interval`)."""
        with self._lock:
            for run in self._runs.values():
                if not run.done:
                    self._poll(run)
            self._draw()

    def lines(self) -> list[str]:
        """The per-run lines as drawn now, top to bottom (runs that have a line on the screen)."""
        with self._lock:
            now = time.time()
            return [self._line(run, now) for run in self._slot_run if run is not None]

    # ---- the executor's side -----------------------------------------------------------------
    def finished(self, outcome: Any) -> None:
        """A run returned (any state): report its last epochs, free its line, log one summary line."""
        with self._lock:
            run = self._runs.get(str(outcome.run_dir))
            if run is None:
                return
            if outcome.state != "skipped":
                self._poll(run)
            run.done = True
            run.state = outcome.state
            run.rows_done = outcome.epochs
            self._finished[outcome.state] += 1
            n, total = sum(self._finished.values()), len(self._runs)
            failed = outcome.state == "failed"
            # A run here or in a joblib worker has logged its failure on this terminal already.
            text = describe_outcome(outcome, run.watched.epochs, reason=self.remote or not failed)
            log.log(
                logging.ERROR if failed and self.remote else logging.INFO,
                "%s (%d of %d runs finished)", text, n, total, extra={"run": run.watched.label},
            )  # fmt: skip
            self._draw()

    # ---- reading the files -------------------------------------------------------------------
    def _poll(self, run: _Run) -> None:
        run_dir = run.watched.run_dir
        sig = _signature(run_dir / results.STATUS_JSON)
        if sig != run.status_seen:  # written at a run's start and end only
            status = results.read_json(run_dir / results.STATUS_JSON)
            if sig is None or status is None:
                return
            run.status_seen = sig
            state = str(status.get("state", run.state))
            if run.state == "waiting":
                run.began = time.time()
                if state == "running" and isinstance(status.get("epochs_done"), int):
                    run.announced = status["epochs_done"] - 1  # where this command (re)started the run
                    if self.announce:
                        log.info(
                            _describe_start(run.announced + 1, run.watched.epochs),
                            extra={"run": run.watched.label},
                        )
            run.state = state
        if run.state == "waiting":
            return  # status.json is as it was before this command: not started yet
        csv_sig = _signature(run_dir / results.EPOCHS_CSV)
        if csv_sig is None or csv_sig == run.csv_seen:
            return
        rows = results.poll_rows(run_dir / results.EPOCHS_CSV)
        run.csv_seen, run.csv_time = csv_sig, time.time()
        run.rows_done = len(rows)
        run.last_row = rows[-1] if rows else None
        for row in rows:
            epoch = row.get("epoch")
            if isinstance(epoch, int) and epoch > run.announced:
                if self.announce:
                    log.info(describe_epoch(row, run.watched.epochs), extra={"run": run.watched.label})
                run.announced = epoch

    # ---- drawing -----------------------------------------------------------------------------
    def _epochs_done(self) -> int:
        """The overall bar counts work left: a finished run (failed too) has none."""
        return sum(
            r.watched.epochs if r.done else min(r.rows_done, r.watched.epochs) for r in self._runs.values()
        )

    def _overall_desc(self) -> str:
        total = len(self._runs)
        text = f"runs {sum(self._finished.values())}/{total} done"
        if self._finished["failed"]:
            text += f", {self._finished['failed']} failed"
        active = sum(1 for r in self._runs.values() if r.state == "running" and not r.done)
        if active:
            text += f", {active} running"
        return text

    def _draw(self) -> None:
        if not self.bars:
            return
        from tqdm import tqdm

        active = [r for r in self._runs.values() if r.state == "running" and not r.done]
        for i, owner in enumerate(self._slot_run):  # free the lines of runs that ended
            if owner is not None and owner not in active:
                owner.slot = None
                self._slot_run[i] = None
        max_slots = max(1, shutil.get_terminal_size((140, 40)).lines - 3)
        for run in active:
            if run.slot is not None:
                continue
            free = [i for i, owner in enumerate(self._slot_run) if owner is None]
            if free:
                run.slot = free[0]
            elif len(self._slots) < max_slots:
                self._slots.append(
                    tqdm(total=1, position=len(self._slots) + 1, leave=False, bar_format="{desc}",
                         dynamic_ncols=True)
                )  # fmt: skip
                self._slot_run.append(None)
                run.slot = len(self._slots) - 1
            else:
                continue  # more active runs than terminal lines; the overall bar still counts them
            self._slot_run[run.slot] = run
        columns = shutil.get_terminal_size((140, 40)).columns - 1
        now = time.time()
        for i, bar in enumerate(self._slots):
            owner = self._slot_run[i]
            line = self._line(owner, now) if owner is not None else ""
            bar.set_description_str(line[:columns], refresh=True)
        if self._overall is not None:
            self._overall.n = self._epochs_done()
            self._overall.set_description_str(self._overall_desc(), refresh=False)
            self._overall.refresh()

    def _line(self, run: _Run, now: float) -> str:
        w = run.watched
        label = w.label if len(w.label) <= self._width else w.label[: self._width - 1] + "…"
        filled = int(20 * min(run.rows_done, w.epochs) / max(w.epochs, 1))
        bar = "█" * filled + " " * (20 - filled)
        head = f"  {label:<{self._width}} |{bar}| {run.rows_done:>{len(str(w.epochs))}}/{w.epochs}"
        row = run.last_row
        if row is None:
            return f"{head}  starting ({fmt_duration(now - run.began)})"
        eta = "?"
        wall = row.get("wallclock_s")
        if isinstance(wall, (int, float)) and run.rows_done:
            per_epoch = wall / run.rows_done
            eta = fmt_duration(max(0.0, (w.epochs - run.rows_done) * per_epoch - (now - run.csv_time)))
        figures = "  ".join(
            [
                f"one-shot {_f(row.get('oneshot_valid_acc'), '.3f')}",
                f"test {_f(row.get('test_acc_mean'), '.3f')}",
                f"eig {_f(row.get('hessian_eig_max'), '.3g')}",
                f"ETA {eta}",
            ]
        )
        return f"{head}  {figures}"

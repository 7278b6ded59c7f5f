"""Every log line of a run names the run, in the terminal and in its `run.log`, in any process.

The name of the run being executed (optimizer, space, seed, tag) lives in a context variable while the
run executes, so the same code names its lines whether the run is in the CLI's own process, a joblib
worker process or a Dask worker thread (each thread has its own context). Handlers read it through
`RunNameFilter`; a line logged for a run from elsewhere (the parent announcing a worker's epoch) passes
the name itself with `extra={"run": name}`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_current_run: ContextVar[str] = ContextVar("bench_current_run", default="")

# A record logged with extra={RUN_LOG_ONLY: True} (a traceback) goes to run.log, and to the terminal only
# with --verbose: the terminal gets the one-line reason instead.
RUN_LOG_ONLY = "run_log_only"
# The loggers whose INFO lines are worth recording in run.log (third-party ones stay at WARNING).
OWN_LOGGERS = ("bench", "optimizers")
_CONSOLE_MARK = "_bench_console"


def run_label(optimizer: str, space: int, seed: int, tag: str) -> str:
    """The short name of a run on every line: `darts s1 seed0 quick_epochs=3`."""
    return f"{optimizer} s{space} seed{seed} {tag}".strip()


@contextlib.contextmanager
def naming(label: str) -> Iterator[None]:
    """Every record logged inside (in this thread) belongs to the run `label`."""
    token = _current_run.set(label)
    try:
        yield
    finally:
        _current_run.reset(token)


def current_run() -> str:
    return _current_run.get()


class RunNameFilter(logging.Filter):
    """Adds `run` and `run_prefix` ("[name] " or "") to every record a handler formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        run = getattr(record, "run", None) or _current_run.get()
        record.run = run
        record.run_prefix = f"[{run}] " if run else ""
        return True


class OnlyRun(logging.Filter):
    """A run's own file: only the records of that run (runs may share a process on Dask)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        return (getattr(record, "run", None) or _current_run.get()) == self.label


class _TerminalOnly(logging.Filter):
    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or not getattr(record, RUN_LOG_ONLY, False)


class TerminalHandler(logging.Handler):
    """Writes through tqdm.write, so a line never cuts a progress bar drawn by this process.

    Not a StreamHandler on purpose: tqdm's logging_redirect_tqdm replaces those and drops their level and
    filters. The stream is looked up at each write unless given (pytest swaps sys.stderr per test).
    """

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream or sys.stderr)
        except Exception:
            self.handleError(record)


@dataclass(frozen=True)
class Console:
    """How a command talks to its terminal; workers get a copy so they log the same way.

    level: the terminal's threshold (WARNING with -q, DEBUG with -v); verbose: DEBUG in run.log too and
    tracebacks in the terminal; bars: live progress bars (a terminal, not -q or --no-progress);
    timestamps: on every line (when the output goes to a file, where there is no bar to show time).
    """

    level: int = logging.INFO
    verbose: bool = False
    bars: bool = False
    timestamps: bool = True

    @classmethod
    def for_cli(
        cls,
        *,
        quiet: bool = False,
        verbose: bool = False,
        progress: bool = True,
        stream: IO[str] | None = None,
    ) -> Console:
        stream = stream or sys.stderr
        tty = _isatty(stream)
        level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
        return cls(level=level, verbose=verbose, bars=tty and progress and not quiet, timestamps=not tty)

    @property
    def run_log_level(self) -> int:
        return logging.DEBUG if self.verbose else logging.INFO


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_formatter(console: Console) -> logging.Formatter:
    fmt = "%(levelname)s %(run_prefix)s"
    if console.verbose:
        fmt += "%(name)s: "
    if console.timestamps:
        fmt = "%(asctime)s " + fmt
    return logging.Formatter(fmt + "%(message)s", datefmt="%Y-%m-%d %H:%M:%S")


def configure(console: Console, stream: IO[str] | None = None) -> logging.Handler:
    """Install (or replace) this process's terminal handler; safe to call again in a reused worker.

    The harness's own loggers pass INFO (DEBUG with -v) so run.log records them even under -q; the
    terminal handler applies the console's level. Third-party loggers stay at WARNING.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _CONSOLE_MARK, False)]:
        root.removeHandler(old)
    handler = TerminalHandler(stream)
    setattr(handler, _CONSOLE_MARK, True)
    handler.setLevel(console.level)
    handler.addFilter(RunNameFilter())
    handler.addFilter(_TerminalOnly(console.verbose))
    handler.setFormatter(terminal_formatter(console))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(console.run_log_level)
    logging.captureWarnings(True)  # Python warnings (torch, numpy) become records that name their run
    return handler


@contextlib.contextmanager
def run_log(path: Path, label: str, level: int = logging.INFO) -> Iterator[logging.Handler]:
    """Append this run's records (any logger, this run only) to `path` while the block runs."""
    handler = logging.FileHandler(path)
    handler.setLevel(level)
    handler.addFilter(OnlyRun(label))
    handler.addFilter(RunNameFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(run)s] %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    own = [logging.getLogger(name) for name in OWN_LOGGERS]
    old_levels = [lg.level for lg in own]
    for lg in own:  # a caller that never configured logging still gets INFO in run.log
        if lg.level == logging.NOTSET or lg.level > level:
            lg.setLevel(level)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for lg, lvl in zip(own, old_levels, strict=True):
            lg.setLevel(lvl)
        handler.close()

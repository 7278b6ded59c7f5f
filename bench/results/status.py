"""Where a run stands, as its directory records it: status.json (state, epochs, and the pid and host of
the process that wrote it), epochs.csv and config.json. Whether that process still lives is not a
question for files: bench.runs.status asks it."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results import epochs as epochs_file
from bench.results import files, layout
from bench.results.schema import RESULTS_VERSION


def existing_config(run_dir: Path) -> dict[str, Any] | None:
    """The config.json a run directory already holds (None: a new run), refused when another results
    version wrote it: a resume must never append rows of one schema to files of another."""
    existing = files.read_json(Path(run_dir) / layout.CONFIG_JSON)
    if not existing:
        return None
    if existing.get("results_version") != RESULTS_VERSION:
        raise UsageError(
            f"{run_dir} was written by results version {existing.get('results_version')} "
            f"(this harness writes {RESULTS_VERSION}); use another --out or move it aside"
        )
    return existing


# The order states are counted in; `unknown`: a directory without a readable status.json.
STATES = ("complete", "running", "interrupted", "failed", "unknown")


def write_status(run_dir: Path, state: str, reason: str = "", **facts: Any) -> None:
    """Record a run's state (running, complete, failed, interrupted), why, and any further facts
    (epochs done, the writing process's pid and host ...) in its status.json, atomically."""
    files.write_json(Path(run_dir) / layout.STATUS_JSON, {"state": state, "reason": reason, **facts})


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """A run's status.json, or None when it is missing or unreadable."""
    return files.read_json(Path(run_dir) / layout.STATUS_JSON)


@dataclass(frozen=True)
class RunStatus:
    """One run as `python -m bench.status` shows it."""

    run_dir: Path
    name: str  # the run directory relative to the tree
    benchmark: str
    space: int | None
    optimizer: str
    tag: str
    seed: int | None
    state: str
    epochs_done: int
    epochs: int | None
    last_eig: float  # the last measured eigenvalue (NaN epochs skipped: hessian_every > 1)
    last_regret: float
    wall_s: float
    updated: float | None  # when a file of the run last changed (Unix time)
    reason: str = ""
    machine: dict[str, Any] | None = None  # config.json's machine record (None: older runs)
    pid: Any = None  # of the process that wrote status.json (None: not recorded)
    host: Any = None  # where that process ran

    def with_state(self, state: str, reason: str) -> RunStatus:
        return replace(self, state=state, reason=reason)


def _last_measured(rows: Sequence[dict[str, Any]], key: str) -> float:
    for row in reversed(rows):
        value = row.get(key)
        if isinstance(value, numbers.Real) and not math.isnan(value):
            return float(value)
    return math.nan


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _identity(rel: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Benchmark, space, optimizer, tag, seed: from config.json, else from the directory layout."""
    cfg = record.get("config") or {}
    from_path = layout.parse_run_path(rel).known()
    tag = record.get("tag", from_path.get("tag", ""))
    return {
        "benchmark": str(cfg.get("benchmark", from_path.get("benchmark", "?"))),
        "space": cfg.get("space", from_path.get("space")),
        "optimizer": str(cfg.get("optimizer", from_path.get("optimizer", "?"))),
        "tag": str(tag),
        "seed": cfg.get("seed", from_path.get("seed")),
    }


def read_run(run_dir: Path, root: Path | None = None) -> RunStatus:
    """A run's recorded status (a `running` one may since have been killed: see bench.runs.status)."""
    run_dir = Path(run_dir)
    try:
        rel = run_dir.relative_to(root) if root is not None else run_dir
    except ValueError:
        rel = run_dir
    status = read_status(run_dir)
    record = files.read_json(run_dir / layout.CONFIG_JSON) or {}
    rows = epochs_file.poll_rows(run_dir / layout.EPOCHS_CSV)
    state, reason = "unknown", "no readable status.json"
    if status is not None:
        state, reason = str(status.get("state", "unknown")), str(status.get("reason", "") or "")
    epochs = (
        (status or {}).get("epochs") or record.get("epochs") or (record.get("config") or {}).get("epochs")
    )
    times = [t for t in (_mtime(run_dir / n) for n in (layout.STATUS_JSON, layout.EPOCHS_CSV)) if t]
    return RunStatus(
        run_dir=run_dir,
        name=rel.as_posix(),
        **_identity(rel, record),
        state=state,
        epochs_done=len(rows),
        epochs=int(epochs) if epochs else None,
        last_eig=_last_measured(rows, "hessian_eig_max"),
        last_regret=_last_measured(rows[-1:], "test_regret"),
        wall_s=_last_measured(rows[-1:], "wallclock_s"),
        updated=max(times) if times else None,
        reason=reason,
        machine=record.get("machine"),
        pid=(status or {}).get("pid"),
        host=(status or {}).get("host"),
    )


def scan(
    root: Path,
    *,
    benchmarks: Iterable[str] | None = None,
    spaces: Iterable[int] | None = None,
    optimizers: Iterable[str] | None = None,
) -> list[RunStatus]:
    """The recorded status of every run under `root`, optionally only some benchmarks, spaces,
    optimizers."""
    want_b = set(benchmarks) if benchmarks else None
    want_s = set(spaces) if spaces else None
    want_o = set(optimizers) if optimizers else None
    out = []
    for run_dir in layout.run_dirs(root):
        st = read_run(run_dir, Path(root))
        if want_b is not None and st.benchmark not in want_b:
            continue
        if want_s is not None and st.space not in want_s:
            continue
        if want_o is not None and st.optimizer not in want_o:
            continue
        out.append(st)
    return out

"""Where every run of a results tree stands, read from its files alone.

A run directory holds `status.json` (state, epochs, the pid and host of the process that wrote it),
`epochs.csv` (one row per finished epoch) and `config.json`. A run whose status says `running` but
whose process is gone from this host was killed (SIGKILL, out of memory, a lost node): it reads as
interrupted, and rerunning its command resumes it. A process on another host cannot be checked from
here; such a run keeps `running` and names the host.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.runs import machine, results

# The order states are counted in; `unknown`: a directory without a readable status.json.
STATES = ("complete", "running", "interrupted", "failed", "unknown")
_TEXT_COLUMNS = frozenset({"benchmark", "optimizer", "tag", "arch_hash", "matrix", "ops"})


@dataclass
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


# ---- reading one run ---------------------------------------------------------------------------
def read_rows(path: Path) -> list[dict[str, Any]]:
    """epochs.csv as dicts with numbers parsed (no pandas: the progress display polls this often)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    rows = []
    try:
        for raw in csv.DictReader(io.StringIO(text)):
            rows.append({k: v if k in _TEXT_COLUMNS else _number(v) for k, v in raw.items() if k is not None})
    except csv.Error:
        pass  # a hand-edited or foreign file: what parsed is still worth showing
    return rows


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def process_gone(pid: Any, host: Any) -> bool | None:
    """True when the process that wrote a status is known to be gone; None when it cannot be told."""
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    except OSError:
        return None
    return False


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
    parts = rel.parts
    from_path: dict[str, Any] = {}
    if len(parts) >= 5:
        bench, space, opt, tag, seed = parts[-5:]
        from_path = {"benchmark": bench, "optimizer": opt, "tag": tag}
        if space.startswith("space") and space[5:].isdigit():
            from_path["space"] = int(space[5:])
        if seed.startswith("seed") and seed[4:].isdigit():
            from_path["seed"] = int(seed[4:])
    tag = record.get("tag", from_path.get("tag", ""))
    return {
        "benchmark": str(cfg.get("benchmark", from_path.get("benchmark", "?"))),
        "space": cfg.get("space", from_path.get("space")),
        "optimizer": str(cfg.get("optimizer", from_path.get("optimizer", "?"))),
        "tag": str(tag),
        "seed": cfg.get("seed", from_path.get("seed")),
    }


def read_run(run_dir: Path, root: Path | None = None) -> RunStatus:
    run_dir = Path(run_dir)
    try:
        rel = run_dir.relative_to(root) if root is not None else run_dir
    except ValueError:
        rel = run_dir
    status = results.read_json(run_dir / results.STATUS_JSON)
    record = results.read_json(run_dir / results.CONFIG_JSON) or {}
    rows = read_rows(run_dir / results.EPOCHS_CSV)
    state, reason = "unknown", "no readable status.json"
    if status is not None:
        state, reason = str(status.get("state", "unknown")), str(status.get("reason", "") or "")
    if state == "running":
        pid, host = status.get("pid"), status.get("host")  # type: ignore[union-attr]
        gone = process_gone(pid, host)
        if gone:
            state = "interrupted"
            reason = f"its process ({pid} on {host}) is gone; rerun the same command to resume"
        elif gone is None and host and host != socket.gethostname():
            reason = f"on {host} (pid {pid}; not checkable from here)"
    epochs = (
        (status or {}).get("epochs") or record.get("epochs") or (record.get("config") or {}).get("epochs")
    )
    times = [t for t in (_mtime(run_dir / n) for n in (results.STATUS_JSON, results.EPOCHS_CSV)) if t]
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
    )


# ---- a whole tree ------------------------------------------------------------------------------
def run_dirs(root: Path) -> list[Path]:
    """Every run directory under `root`: those with epochs.csv (results.find_runs) and those killed
    before their first epoch (only config.json or status.json); hidden folders (.replaced/) excluded."""
    root = Path(root)
    found = set(results.find_runs(root))
    for name in (results.STATUS_JSON, results.CONFIG_JSON):
        for path in root.rglob(name):
            rel = path.parent.relative_to(root)
            if not any(part.startswith(".") for part in rel.parts):
                found.add(path.parent)
    return sorted(found)


def scan(
    root: Path,
    *,
    benchmarks: Iterable[str] | None = None,
    spaces: Iterable[int] | None = None,
    optimizers: Iterable[str] | None = None,
) -> list[RunStatus]:
    """The status of every run under `root`, optionally only some benchmarks, spaces, optimizers."""
    want_b = set(benchmarks) if benchmarks else None
    want_s = set(spaces) if spaces else None
    want_o = set(optimizers) if optimizers else None
    out = []
    for run_dir in run_dirs(root):
        st = read_run(run_dir, Path(root))
        if want_b is not None and st.benchmark not in want_b:
            continue
        if want_s is not None and st.space not in want_s:
            continue
        if want_o is not None and st.optimizer not in want_o:
            continue
        out.append(st)
    return out


# ---- presenting --------------------------------------------------------------------------------
def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain aligned columns (readable in a terminal, a log file and `less`); the last one unpadded."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def fmt_number(value: Any, spec: str) -> str:
    if value is None or not isinstance(value, numbers.Real) or math.isnan(value):
        return "-"
    return format(value, spec)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def fmt_age(then: float | None, now: float) -> str:
    if then is None:
        return "-"
    age = max(0.0, now - then)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{int(age // size)}{unit} ago"
    return f"{int(age)}s ago"


def table(statuses: Sequence[RunStatus], now: float | None = None, reason_width: int = 80) -> str:
    now = time.time() if now is None else now
    header = ("run", "state", "epochs", "last eig", "last regret", "wall", "updated", "reason")
    rows = []
    for st in statuses:
        reason = st.reason if len(st.reason) <= reason_width else st.reason[: reason_width - 1] + "…"
        rows.append(
            (
                st.name,
                st.state,
                f"{st.epochs_done}/{st.epochs if st.epochs is not None else '?'}",
                fmt_number(st.last_eig, ".4g"),
                fmt_number(st.last_regret, ".4f"),
                fmt_duration(st.wall_s),
                fmt_age(st.updated, now),
                reason,
            )
        )
    return format_table(header, rows)


def machine_lines(statuses: Sequence[RunStatus]) -> list[str]:
    """One line per compared group (benchmark, space, setting) whose runs came from differing machines."""
    groups: dict[str, list[dict[str, Any] | None]] = {}
    for st in statuses:
        groups.setdefault(f"{st.benchmark} space {st.space} {st.tag}", []).append(st.machine)
    return machine.comparison_lines(groups)


def summary(statuses: Sequence[RunStatus]) -> str:
    """`7 runs: 4 complete, 1 running, 1 interrupted, 1 failed` (states with no run left out)."""
    counts = Counter(st.state for st in statuses)
    order = [*STATES, *sorted(set(counts) - set(STATES))]
    parts = [f"{counts[s]} {s}" for s in order if counts[s]]
    n = len(statuses)
    return f"{n} run{'s' if n != 1 else ''}" + (": " + ", ".join(parts) if parts else "")

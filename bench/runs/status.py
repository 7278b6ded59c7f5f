"""Where every run of a results tree stands: its recorded status (bench.results.status) checked
against the processes of this host, and how `python -m bench.status` presents it.

A run whose status says `running` but whose process is gone from this host was killed (SIGKILL, out of
memory, a lost node): it reads as interrupted, and rerunning its command resumes it. A process on
another host cannot be checked from here; such a run keeps `running` and names the host.
"""

from __future__ import annotations

import math
import numbers
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.results import status as recorded
from bench.results.status import STATES, RunStatus
from bench.runs import machine

__all__ = ["STATES", "RunStatus", "read_run", "scan", "process_gone"]


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


def checked(st: RunStatus) -> RunStatus:
    """A recorded `running` status as it stands: interrupted when its process is gone from this host,
    still running (with the host named) when that process is on another host."""
    if st.state != "running":
        return st
    gone = process_gone(st.pid, st.host)
    if gone:
        return st.with_state(
            "interrupted", f"its process ({st.pid} on {st.host}) is gone; rerun the same command to resume"
        )
    if gone is None and st.host and st.host != socket.gethostname():
        return st.with_state(st.state, f"on {st.host} (pid {st.pid}; not checkable from here)")
    return st


def read_run(run_dir: Path, root: Path | None = None) -> RunStatus:
    return checked(recorded.read_run(run_dir, root))


def scan(
    root: Path,
    *,
    benchmarks: Iterable[str] | None = None,
    spaces: Iterable[int] | None = None,
    optimizers: Iterable[str] | None = None,
) -> list[RunStatus]:
    """The status of every run under `root`, optionally only some benchmarks, spaces, optimizers."""
    found = recorded.scan(root, benchmarks=benchmarks, spaces=spaces, optimizers=optimizers)
    return [checked(st) for st in found]


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

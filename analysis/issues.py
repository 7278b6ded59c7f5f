"""Problems found in the results (cut runs, NaN eigenvalues, empty regret ...), reported, never hidden.

Each command collects the issues that matter to its numbers, prints one warning line per kind that
names the runs, writes them to `warnings.txt` beside its outputs, and puts the counts into its
captions and tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

WARNINGS_TXT = "warnings.txt"

# kind -> how a reader is told about it (plural noun phrase after "N run(s) with ...").
KINDS: dict[str, str] = {
    "unreadable": "an unreadable epochs.csv (left out)",
    "no_config": "no readable config.json (settings unknown)",
    "missing_epochs": "missing epochs (incomplete; left out of final-epoch numbers)",
    "duplicate_epochs": "duplicate epoch rows (last one kept)",
    "duplicate_run": "the same seed and setting twice (first one kept)",
    "nan_eig": "NaN eigenvalues (those epochs left out)",
    "no_eig": "no eigenvalues at all (hessian disabled; left out)",
    "no_regret": "empty test regret (space not fully tabulated)",
    "nan_value": "NaN values (those epochs left out)",
    "no_alphas": "no readable alphas.npz (left out)",
}


@dataclass(frozen=True)
class Issue:
    """One problem of one run; `detail` says what exactly (which epochs, which state)."""

    run: str
    kind: str
    detail: str = ""


def nan_issues(
    frame: pd.DataFrame, column: str, kind: str = "nan_value", expected: pd.Series | None = None
) -> list[Issue]:
    """Runs with NaN in `column` at epochs where a value was expected (`expected`: boolean per row)."""
    mask = frame[column].isna()
    if expected is not None:
        mask &= expected.reindex(frame.index, fill_value=True).astype(bool)
    out = []
    for run, rows in frame[mask].groupby("run", sort=True):
        epochs = sorted(int(e) for e in rows["epoch"])
        out.append(Issue(run, kind, f"{column} NaN at {len(epochs)} epoch(s): {_epoch_list(epochs)}"))
    return out


def _epoch_list(epochs: Sequence[int], limit: int = 8) -> str:
    shown = ", ".join(str(e) for e in epochs[:limit])
    return shown + (f", … ({len(epochs) - limit} more)" if len(epochs) > limit else "")


def dedupe(issues: Iterable[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))


def count_by_kind(issues: Iterable[Issue]) -> dict[str, int]:
    """kind -> number of distinct runs with that problem."""
    runs: dict[str, set[str]] = {}
    for i in issues:
        runs.setdefault(i.kind, set()).add(i.run)
    return {k: len(v) for k, v in runs.items()}


def summary_lines(issues: Iterable[Issue], limit: int = 6) -> list[str]:
    """One line per kind: the count, what it means, and the runs (the first `limit` of them)."""
    by_kind: dict[str, list[Issue]] = {}
    for i in dedupe(issues):
        by_kind.setdefault(i.kind, []).append(i)
    lines = []
    for kind, items in by_kind.items():
        runs = sorted({i.run for i in items})
        named = "; ".join(
            f"{i.run} ({i.detail})" if i.detail else i.run for i in sorted(items, key=lambda i: i.run)[:limit]
        )
        more = f"; … and {len(items) - limit} more" if len(items) > limit else ""
        lines.append(f"{len(runs)} run(s) with {KINDS.get(kind, kind)}: {named}{more}")
    return lines


def short_note(issues: Iterable[Issue]) -> str:
    """A caption-sized count, e.g. '2 run(s) with missing epochs, 1 with NaN eigenvalues'."""
    counts = count_by_kind(issues)
    if not counts:
        return ""
    parts = [f"{n} run(s) with {KINDS.get(k, k).split(' (')[0]}" for k, n in counts.items()]
    return "Data problems: " + ", ".join(parts) + f" — see {WARNINGS_TXT}."


def report(issues: Iterable[Issue], out_dir: Path | None, command: str) -> list[str]:
    """Log one warning per kind and write them all to OUT/warnings.txt; returns the lines."""
    issues = dedupe(issues)
    lines = summary_lines(issues, limit=6)
    for line in lines:
        log.warning("%s", line)
    if out_dir is not None:
        path = Path(out_dir) / WARNINGS_TXT
        if issues:
            full = [f"# {command}: data problems in the selected runs ({len(issues)} issue(s))"]
            full += [f"{i.kind}\t{i.run}\t{i.detail}" for i in issues]
            path.write_text("\n".join(full) + "\n")
        else:
            path.unlink(missing_ok=True)  # a stale file from an earlier call would mislead
    return lines


def finite(values: pd.Series) -> pd.Series:
    """Finite floats only (inf is as unusable in a mean as NaN)."""
    v = pd.to_numeric(values, errors="coerce")
    return v.where(np.isfinite(v))

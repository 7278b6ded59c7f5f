"""Where a black-box run writes and what its rows hold.

One run = one method x space x seed, in `<out>/<benchmark>/space<k>/blackbox/<method>/seed<s>/`:
`queries.csv` (one row per table query), `config.json` and `status.json` (bench.results' names and
writers). The CSV is not called epochs.csv on purpose: the one-shot loaders (bench.results.find_runs,
analysis.load) must not mistake a black-box run for a one-shot search.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench import results

QUERIES_CSV = "queries.csv"
# How figures and tables name the methods (bench.blackbox.methods registers them under these keys).
METHOD_TITLES = {
    "rs": "Random search",
    "re": "Regularized evolution",
    "tpe": "TPE",
    "bohb": "BOHB (TPE + Hyperband)",
}
BLACKBOX_DIR = "blackbox"
COLUMNS: tuple[str, ...] = (
    "benchmark",
    "space",
    "method",
    "seed",
    "query",  # 1, 2, ... (a BOHB promotion to the full budget is a query of its own)
    "simulated_seconds",  # the table's training time of every repeat paid for so far
    "arch_hash",
    "budget",  # training repeats behind valid_acc/test_acc (1, or all of them after a promotion)
    "valid_acc",  # what the method sees: one repeat's validation accuracy (mean of `budget` repeats)
    "test_acc",  # the same repeats' test accuracy (never shown to the method)
    "incumbent_hash",  # best validation accuracy observed so far
    "incumbent_valid_acc",
    "incumbent_test_error",  # mean test error of ALL the incumbent's repeats
    "test_regret",  # incumbent_test_error minus the space's best test error
)


def run_dir(root: Path, benchmark: str, space: int, method: str, seed: int) -> Path:
    return Path(root) / benchmark / f"space{space}" / BLACKBOX_DIR / method / f"seed{seed}"


def find_runs(root: Path) -> list[Path]:
    """Every black-box run directory under `root` (hidden folders such as `.replaced/` left out)."""
    return results.find_runs(root, QUERIES_CSV)


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The CSV exactly as it is written: a replay is checked against the stored file line by line."""
    frame = pd.DataFrame(list(rows)).reindex(columns=list(COLUMNS))
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.10g", lineterminator="\n")
    return buf.getvalue()


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    results.atomic_write_text(path, csv_text(rows))


def stored_lines(path: Path) -> list[str]:
    """The data lines of a stored queries.csv (header dropped); [] when there is none."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    return lines[1:]


def last_row(path: Path) -> dict[str, Any] | None:
    """The last row of a stored queries.csv, or None."""
    try:
        frame = pd.read_csv(path, dtype={"arch_hash": str, "incumbent_hash": str})
    except (OSError, ValueError):
        return None
    return frame.iloc[-1].to_dict() if len(frame) else None


def load(root: Path) -> pd.DataFrame:
    """Every queries.csv under `root` as one frame, with a `run_dir` column."""
    frames = []
    for run in find_runs(root):
        frame = pd.read_csv(run / QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})
        frame["run_dir"] = str(run)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "run_dir"])
    return pd.concat(frames, ignore_index=True)

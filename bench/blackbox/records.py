"""Where a black-box run writes and what its rows hold.

One run = one method x space x seed, in `<out>/<benchmark>/space<k>/blackbox/<method>/seed<s>/`:
`queries.csv` (one row per table query), `config.json` and `status.json` (bench.results' names and
writers). The CSV is not called epochs.csv on purpose: the one-shot loaders (bench.results.find_runs,
analysis.load) must not mistake a black-box run for a one-shot search.

The layout of queries.csv has a version, `queries_layout` in config.json. Layout 1 (runs without the
key) had no `repeats` column and its `budget` counted training repeats, and its `bohb` was today's
`bohb-repeats`; `load` reads such runs in today's terms (see `upgrade_layout_1`), nothing on disk changes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench import results

QUERIES_CSV = "queries.csv"
QUERIES_LAYOUT = 2  # config.json's `queries_layout`; runs without it are layout 1
LAYOUT_KEY = "queries_layout"
# How figures and tables name the methods (bench.blackbox.methods registers them under these keys).
METHOD_TITLES = {
    "rs": "Random search",
    "re": "Regularized evolution",
    "tpe": "TPE",
    "hb": "Hyperband",
    "bohb": "BOHB (TPE + Hyperband)",
    "bohb-repeats": "BOHB over repeats (TPE + Hyperband pruner)",
}
BLACKBOX_DIR = "blackbox"
COLUMNS: tuple[str, ...] = (
    "benchmark",
    "space",
    "method",
    "seed",
    "query",  # 1, 2, ... (every query at any budget, and each bohb-repeats promotion, is one)
    "simulated_seconds",  # the table's training time of every query so far, each at its own budget
    "arch_hash",
    "budget",  # training epochs of the query (the table's budgets; empty for a table that names none)
    "repeats",  # training repeats behind valid_acc/test_acc (1; all of them after a bohb-repeats promotion)
    "valid_acc",  # what the method sees: one repeat's validation accuracy at `budget` (mean of `repeats`)
    "test_acc",  # the same repeats' test accuracy (never shown to the method)
    "incumbent_hash",  # best validation accuracy observed at the table's standard budget (empty: none yet)
    "incumbent_valid_acc",
    "incumbent_test_error",  # mean test error of ALL the incumbent's repeats at the standard budget
    "test_regret",  # incumbent_test_error minus the space's best test error (empty: no incumbent yet)
)
# Layout 1's `bohb` was the repeats-fidelity method, named `bohb-repeats` since layout 2.
LAYOUT_1_METHODS = {"bohb": "bohb-repeats"}


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


def layout(run: Path) -> int:
    """The queries.csv layout of a run directory (1: written before the key existed)."""
    config = results.read_json(Path(run) / results.CONFIG_JSON) or {}
    return int(config.get(LAYOUT_KEY, 1))


def upgrade_layout_1(frame: pd.DataFrame) -> pd.DataFrame:
    """Layout-1 rows in today's terms: `budget` counted repeats (now `repeats`); every query was at the
    table's standard budget, which layout 1 did not record (left empty); `bohb` is `bohb-repeats`."""
    frame = frame.rename(columns={"budget": "repeats"})
    frame["budget"] = float("nan")
    frame["method"] = frame["method"].replace(LAYOUT_1_METHODS)
    return frame.reindex(columns=list(COLUMNS))


def load(root: Path) -> pd.DataFrame:
    """Every queries.csv under `root` as one frame in today's layout, with a `run_dir` column."""
    frames = []
    for run in find_runs(root):
        frame = pd.read_csv(run / QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})
        if layout(run) == 1:
            frame = upgrade_layout_1(frame)
        frame["run_dir"] = str(run)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*COLUMNS, "run_dir"])
    return pd.concat(frames, ignore_index=True)

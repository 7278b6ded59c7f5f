"""The shipped space-1 tables of the digits budgets, checked from the SQLite files alone (sqlite3 + scipy),
independently of bench.truth.budget_character, and the rank correlations the embedded-benchmark page
prints, recomputed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from bench.truth.digits_protocol import BUDGET_LADDER, FULL_BUDGET, RUN_PROTOCOL, at_budget
from bench.truth.digits_store import SHIPPED_DIR
from tests.truth.test_shipped_character import SPACE1_MODELS, open_shipped

PAGE = Path(__file__).parents[2] / "docs" / "digits-benchmark.md"


def _table(key: str) -> dict[str, np.ndarray]:
    """hash -> valid accuracies of repeats 0..2, from whichever shipped file holds the protocol."""
    for path in sorted(SHIPPED_DIR.glob("*.sqlite")):
        with open_shipped(path) as conn:
            complete = conn.execute(
                "SELECT complete, n_models FROM spaces WHERE protocol_key=? AND space=1", (key,)
            ).fetchone()
            if complete is None:
                continue
            rows = conn.execute(
                "SELECT arch_hash, repeat, valid_acc FROM results WHERE protocol_key=?", (key,)
            ).fetchall()
        assert complete == (1, SPACE1_MODELS)
        out: dict[str, np.ndarray] = {}
        for h, repeat, acc in rows:
            out.setdefault(h, np.full(3, np.nan))[repeat] = acc
        return out
    raise AssertionError(f"no shipped table holds protocol {key}")


@pytest.fixture(scope="module")
def tables() -> dict[int, dict[str, np.ndarray]]:
    return {b: _table(at_budget(RUN_PROTOCOL, b).key()) for b in BUDGET_LADDER}


def test_every_budget_holds_every_space1_model_three_times(tables) -> None:
    hashes = set(tables[FULL_BUDGET])
    for table in tables.values():
        assert set(table) == hashes and len(hashes) == SPACE1_MODELS
        assert not np.isnan(np.array(list(table.values()))).any()


def test_the_page_prints_the_measured_rank_correlations(tables) -> None:
    hashes = sorted(tables[FULL_BUDGET])
    page = PAGE.read_text(encoding="utf-8")

    def acc(budget: int, repeat: int | None) -> np.ndarray:
        rows = np.array([tables[budget][h] for h in hashes])
        return rows[:, repeat] if repeat is not None else rows.mean(axis=1)

    for b in (4, 12, 36):
        for repeat in (0, None):
            rho = spearmanr(acc(b, repeat), acc(FULL_BUDGET, repeat))[0]
            line = re.search(rf"\| Spearman\(budget {b}, budget 108\) \| ([-0-9.]+) \| ([-0-9.]+) \|", page)
            assert line is not None, f"the page lacks the budget {b} row"
            shown = float(line.group(1 if repeat == 0 else 2))
            assert shown == pytest.approx(rho, abs=5e-4)


def test_the_budget_report_prints_the_pages_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`python -m bench.tabulate --budget-report` on the shipped tables prints the table on the page."""
    from bench import tabulate

    argv = ["--benchmark", "digits", "--space", "1", "--budget-report", "--cache", str(tmp_path / "c.sqlite")]
    assert tabulate.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2685 of 2685 models stored at every budget" in printed
    page = PAGE.read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith(("| Spearman(budget", "| budget "))]
    assert len(rows) == 14  # 4 percentile rows, 6 pairs, 4 cost rows
    for line in rows:
        assert line in printed

"""hb and bohb: Hyperband over a table's epoch budgets, as HpBandSter runs it, on LadderTable (a TEST
FIXTURE with NB-101's budgets 108, 4, 12, 36); and the older queries.csv layout, read from runs the
code before epoch budgets wrote (tests/assets/blackbox_v1: SmoothTable, space 1, seed 0, 30 queries;
re with population=10, tpe and the repeats-fidelity bohb with n_startup_trials=5)."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.benchmarks import Benchmark, register_benchmark
from bench.benchmarks import registry as benchmark_registry
from bench.blackbox import cli, records, runs
from bench.blackbox.encoding import Encoding
from bench.blackbox.methods import BOHBSettings, TPEProposals, bracket_schedule
from bench.blackbox.oracle import TabularOracle
from bench.blackbox.runs import BlackboxRequest
from bench.errors import UsageError
from bench.search.spaces import SearchSpace
from tests.blackbox.helpers import LadderTable, SmoothTable

LAYOUT_1 = Path(__file__).parents[1] / "assets" / "blackbox_v1"
CYCLE = 27 + 9 + 3 + 1 + 9 + 3 + 1 + 6 + 2 + 4  # queries of one round of the four brackets


def hpbandster_brackets(min_budget: float, max_budget: float, eta: int) -> list[list[tuple[int, int]]]:
    """HpBandSter's Hyperband.__init__ and get_next_iteration, transcribed (rounded against float error
    in its log ratio)."""
    max_sh_iter = -int(round(np.log(min_budget / max_budget) / np.log(eta), 9)) + 1
    budgets = max_budget * np.power(eta, -np.linspace(max_sh_iter - 1, 0, max_sh_iter))
    out = []
    for iteration in range(max_sh_iter):
        s = max_sh_iter - 1 - (iteration % max_sh_iter)
        n0 = int(np.floor(max_sh_iter / (s + 1)) * eta**s)
        ns = [max(int(n0 * (eta ** (-i))), 1) for i in range(s + 1)]
        out.append([(n, round(float(b))) for n, b in zip(ns, budgets[(-s - 1) :], strict=True)])
    return out


def run_rows(
    method: str, table: Any, tmp: Path, seed: int = 0, queries: int = CYCLE, **settings
) -> pd.DataFrame:
    req = BlackboxRequest(method, 1, seed, table.name, queries, tmp, dict(settings))
    outcome = runs.execute(req, table)
    assert outcome.state == "complete", outcome.reason
    return pd.read_csv(req.run_dir / records.QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})


# ---- the schedule -------------------------------------------------------------------------------
def test_bracket_schedule_is_hpbandsters_for_eta_3_from_4_to_108() -> None:
    expected = [
        [(27, 4), (9, 12), (3, 36), (1, 108)],
        [(9, 12), (3, 36), (1, 108)],
        [(6, 36), (2, 108)],
        [(4, 108)],
    ]
    assert hpbandster_brackets(4, 108, 3) == expected
    assert bracket_schedule(LadderTable.budgets, 3) == expected  # the table's order does not matter
    assert bracket_schedule((1, 2, 4, 8, 16), 2) == hpbandster_brackets(1, 16, 2)


@pytest.mark.parametrize("method", ["hb", "bohb"])
def test_rows_follow_the_schedule_and_rungs_keep_the_best(method: str, tmp_path: Path) -> None:
    rows = run_rows(method, LadderTable(), tmp_path, queries=CYCLE + 5)
    plan = [b for bracket in bracket_schedule(LadderTable.budgets, 3) for n, b in bracket for _ in range(n)]
    assert rows["budget"].tolist() == plan + [4] * 5  # the next round starts with s = 3 again
    start = 0
    for bracket in bracket_schedule(LadderTable.budgets, 3):
        for (n, _), (keep, _) in zip(bracket, bracket[1:], strict=False):
            rung, nxt = rows.iloc[start : start + n], rows.iloc[start + n : start + n + keep]
            best = rung.sort_values("valid_acc", ascending=False, kind="stable")["arch_hash"].head(keep)
            assert nxt["arch_hash"].tolist() == best.tolist()
            start += n
        start += bracket[-1][0]
    assert (rows["repeats"] == 1).all()


@pytest.mark.parametrize("method", ["hb", "bohb"])
def test_each_query_is_charged_one_repeat_at_its_budget(method: str, tmp_path: Path) -> None:
    rows = run_rows(method, LadderTable(), tmp_path)
    paid = np.diff(np.concatenate([[0.0], rows["simulated_seconds"]]))
    per_epoch = paid / rows["budget"]
    for k, offset in zip(LadderTable.SECONDS_PER_EPOCH, (0.0, -0.001, 0.001), strict=True):
        mine = np.isclose(per_epoch, k)
        # the repeat whose time was charged is the repeat whose accuracy was returned
        np.testing.assert_allclose((rows["valid_acc"] - rows["test_acc"])[mine], offset, atol=1e-9)
    assert np.isclose(per_epoch.to_numpy()[:, None], LadderTable.SECONDS_PER_EPOCH).any(axis=1).all()
    assert len(set(np.round(per_epoch, 9))) == 3


def test_the_incumbent_is_chosen_at_the_full_budget_only(tmp_path: Path) -> None:
    table = LadderTable()
    rows = run_rows("hb", table, tmp_path)
    full = rows["budget"] == 108
    first = int(np.argmax(full.to_numpy()))
    assert first == 39  # 27 + 9 + 3 lower-budget queries before bracket s=3 reaches 108
    assert rows.loc[: first - 1, ["incumbent_hash", "test_regret"]].isna().all().all()
    best_full = rows["valid_acc"].where(full).ffill().cummax()
    np.testing.assert_allclose(rows.loc[first:, "incumbent_valid_acc"], best_full[first:])
    assert set(rows.loc[first:, "incumbent_hash"]) <= set(rows.loc[full, "arch_hash"])
    np.testing.assert_allclose(
        rows.loc[first:, "test_regret"], rows.loc[first:, "incumbent_test_error"] - table.best_test_error(1)
    )
    # a better lower-budget accuracy never becomes the incumbent
    low_best = rows.loc[~full, "valid_acc"].max()
    assert (rows["incumbent_valid_acc"].dropna() <= max(low_best, rows.loc[full, "valid_acc"].max())).all()


@pytest.mark.parametrize("method", ["hb", "bohb"])
def test_same_seed_same_rows(method: str, tmp_path: Path) -> None:
    a = run_rows(method, LadderTable(), tmp_path / "a", seed=5)
    b = run_rows(method, LadderTable(), tmp_path / "b", seed=5)
    c = run_rows(method, LadderTable(), tmp_path / "c", seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not a["arch_hash"].equals(c["arch_hash"])


def test_an_interrupted_bohb_run_resumes_to_the_uninterrupted_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = run_rows("bohb", LadderTable(), tmp_path / "whole")
    req = BlackboxRequest("bohb", 1, 0, "ladder", CYCLE, tmp_path / "cut")
    original = TabularOracle.observe

    def stop_at_30(self, *args, **kwargs):  # before the first full-budget query: empty regrets stored
        if self.queries == 30:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TabularOracle, "observe", stop_at_30)
    with pytest.raises(KeyboardInterrupt):
        runs.execute(req, LadderTable(), flush_every=7)
    monkeypatch.setattr(TabularOracle, "observe", original)
    assert runs.execute(req, LadderTable(), flush_every=7).state == "complete"
    resumed = pd.read_csv(req.run_dir / records.QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})
    pd.testing.assert_frame_equal(resumed, whole)


def test_bohb_proposes_from_the_largest_budget_with_a_model() -> None:
    table = LadderTable()
    space = SearchSpace(1)
    enc = Encoding(space)
    oracle = TabularOracle(table, space, np.random.default_rng(0), 200, table.best_test_error(1))
    proposals = TPEProposals(enc, np.random.default_rng(1), BOHBSettings(random_fraction=0.0))
    need = 2 * (len(enc.params) + 1)
    rng = np.random.default_rng(2)
    for budget, n in ((4, need), (12, need), (36, need - 1)):
        for _ in range(n):
            proposals.observe(oracle.query(enc.sample(rng), budget=budget))
    assert proposals._modelled_budget() == 12  # 36 is one observation short
    before = {b: len(s.trials) for b, s in proposals.studies.items()}
    proposals.propose()
    after = {b: len(s.trials) for b, s in proposals.studies.items()}
    assert after == before | {12: before[12] + 1}  # the proposal was asked of budget 12's study
    empty = TPEProposals(enc, np.random.default_rng(1), BOHBSettings(random_fraction=0.0))
    assert empty._modelled_budget() is None  # no model: random configurations
    space.spec(empty.propose())


# ---- the methods that query the standard budget, and runs written before epoch budgets -----------
def layout_1_rows(method: str) -> pd.DataFrame:
    path = LAYOUT_1 / "fixture/space1/blackbox" / method / "seed0" / records.QUERIES_CSV
    return pd.read_csv(path, dtype={"arch_hash": str, "incumbent_hash": str})


@pytest.mark.parametrize(
    ("method", "settings"), [("rs", {}), ("re", {"population": 10}), ("tpe", {"n_startup_trials": 5})]
)
def test_rs_re_tpe_rows_are_those_written_before_epoch_budgets(
    method: str, settings: dict, tmp_path: Path
) -> None:
    new = run_rows(method, SmoothTable(), tmp_path, queries=30, **settings)
    old = records.upgrade_layout_1(layout_1_rows(method))
    pd.testing.assert_frame_equal(new, old, check_dtype=False)  # budget: empty, SmoothTable names none


def test_bohb_repeats_rows_are_the_old_bohbs(tmp_path: Path) -> None:
    new = run_rows("bohb-repeats", SmoothTable(), tmp_path, queries=30, n_startup_trials=5)
    old = records.upgrade_layout_1(layout_1_rows("bohb"))
    pd.testing.assert_frame_equal(new, old, check_dtype=False)


def test_layout_1_runs_load_in_todays_terms() -> None:
    frame = records.load(LAYOUT_1)
    assert list(frame.columns) == [*records.COLUMNS, "run_dir"]
    assert set(frame["method"]) == {"rs", "re", "tpe", "bohb-repeats"}
    assert set(frame["repeats"]) == {1, 3} and frame["budget"].isna().all()


def test_a_layout_1_run_is_skipped_when_complete_and_never_continued(tmp_path: Path) -> None:
    root = tmp_path / "results"
    shutil.copytree(LAYOUT_1, root)
    before = (root / "fixture/space1/blackbox/rs/seed0" / records.QUERIES_CSV).read_text()
    assert runs.execute(BlackboxRequest("rs", 1, 0, "fixture", 30, root), SmoothTable()).state == "skipped"
    with pytest.raises(UsageError, match="older queries.csv layout"):
        runs.execute(BlackboxRequest("rs", 1, 0, "fixture", 40, root), SmoothTable())
    with pytest.raises(UsageError, match="holds a bohb-repeats run in the older"):
        runs.execute(BlackboxRequest("bohb", 1, 0, "fixture", 30, root), LadderTable())
    assert (root / "fixture/space1/blackbox/rs/seed0" / records.QUERIES_CSV).read_text() == before


# ---- the command --------------------------------------------------------------------------------
class Ladder(Benchmark):
    title = "ladder test table — not a benchmark"
    caveat = "test fixture"
    budgets = LadderTable.budgets

    def open_table(self, paths: Any) -> LadderTable:
        return LadderTable()


@pytest.fixture
def ladder(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from bench.runs import parts

    register_benchmark("ladder")(Ladder)
    tables = {"ladder": LadderTable(), "fixture": SmoothTable()}
    monkeypatch.setattr(parts, "open_table", lambda benchmark, paths: tables[benchmark])
    try:
        yield "ladder"
    finally:
        benchmark_registry._REGISTRY.pop("ladder", None)


def test_cli_runs_hb_and_bohb_on_a_table_of_budgets(ladder: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    argv = ["--method", "hb,bohb", "--benchmark", ladder, "--out", str(out), "--max-queries", "50"]
    assert cli.main([*argv, "--jobs", "1", "--no-progress"]) == 0
    frame = records.load(out)
    assert frame.groupby("method").size().to_dict() == {"bohb": 50, "hb": 50}
    assert math.isnan(frame["test_regret"].iloc[0]) and frame["test_regret"].notna().iloc[-1]


@pytest.mark.parametrize("method", ["hb", "bohb"])
def test_a_table_of_one_budget_is_refused_naming_the_alternatives(
    method: str, ladder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from bench.runs import parts

    monkeypatch.setattr(parts, "open_table", lambda benchmark, paths: SmoothTable())
    out = tmp_path / "results"
    assert cli.main(["--method", method, "--benchmark", "digits", "--out", str(out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "holds one budget (one unnamed)" in err
    assert "--method bohb-repeats" in err and "--benchmark ladder (budgets 108, 4, 12, 36)" in err
    assert not out.exists()


def test_digits_budgets_not_tabulated_are_refused_naming_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Hyperband on a lazily trained table queries every budget: without the shorter budgets' tables each
    query would train on the spot, so the run is refused before anything is written."""
    from bench.runs import parts
    from bench.truth.digits import SHIPPED_DIR, DigitsBenchmark
    from bench.truth.digits_protocol import RUN_PROTOCOL

    full_only = DigitsBenchmark(
        tmp_path / "c.sqlite", RUN_PROTOCOL, shipped=[SHIPPED_DIR / "digits_space1.sqlite"]
    )
    assert full_only.tabulated(1) and not full_only.tabulated(1, 4)
    monkeypatch.setattr(parts, "open_table", lambda benchmark, paths: full_only)
    out = tmp_path / "results"
    assert cli.main(["--method", "hb", "--benchmark", "digits", "--out", str(out), "--jobs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not tabulated at budget 4, 12, 36" in err and "\n" not in err
    assert "python -m bench.tabulate --benchmark digits --space 1 --budget 4" in err
    assert not out.exists()

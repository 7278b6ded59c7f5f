"""`--set truth_budgets=4,12,36,108`: the ground truth at every budget asked for, as extra columns of
epochs.csv after the standard ones; without it the file is what it always was."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench import results
from bench import run as cli
from bench.errors import ConfigError
from bench.results import schema
from bench.runs.config import RunConfig

TINY = ["--benchmark", "digits", "--epochs", "2", "--no-progress", "--set", "batch_size=32",
        "--set", "init_channels=2", "--set", "cells_per_stack=1", "--set", "data_limit=256"]  # fmt: skip


def _run(out: Path, *sets: str) -> pd.DataFrame:
    argv = ["--optimizer", "darts", "--out", str(out), *TINY]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    return pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})


def test_budget_columns_follow_the_standard_ones(tmp_path: Path, fixture_cli) -> None:
    plain = _run(tmp_path / "plain")
    budgeted = _run(tmp_path / "budgets", "truth_budgets=36,4,12,108")  # one run, budgets sorted
    assert list(plain.columns) == list(schema.COLUMNS)
    extra = list(budgeted.columns[len(schema.COLUMNS) :])
    assert list(budgeted.columns[: len(schema.COLUMNS)]) == list(schema.COLUMNS)
    assert extra == list(schema.budget_columns((4, 12, 36, 108)))
    assert schema.budgets_in(budgeted.columns) == (4, 12, 36, 108)
    same = [c for c in schema.COLUMNS if c not in schema.TIMING_COLUMNS + ("tag",)]
    pd.testing.assert_frame_equal(plain[same], budgeted[same])  # the search is the same search
    # The fixture table's accuracy scales with budget/108 (TEST FIXTURE): the columns are that budget's.
    assert (budgeted.test_acc_mean_b108 == budgeted.test_acc_mean).all()
    ratio = budgeted.test_acc_mean_b36 / budgeted.test_acc_mean_b108
    assert ratio.round(6).eq(round(36 / 108, 6)).all()
    assert (budgeted.train_seconds_b4 < budgeted.train_seconds_b108).all()
    config = RunConfig.from_dict(
        results.existing_config(results.find_runs(tmp_path / "budgets")[0])["config"]
    )
    assert config.truth_budgets == (4, 12, 36, 108)


def test_a_list_setting_is_one_run_not_a_grid() -> None:
    args = cli.build_parser().parse_args(
        ["--optimizer", "darts", "--space", "1", "--set", "truth_budgets=4,12", "--set", "epochs=1,2"]
    )
    requests = cli.build_requests(args, "digits")
    assert len(requests) == 2 and {r.cfg.truth_budgets for r in requests} == {(4, 12)}


def test_a_budget_the_table_lacks_names_the_budgets_it_holds() -> None:
    with pytest.raises(
        ConfigError, match=r"truth_budgets=4,5: the digits table has no budget 5; it holds 4, 12, 36, 108"
    ):
        RunConfig.resolve("darts", 1, benchmark="digits", overrides={"truth_budgets": "4,5"})


def test_a_table_with_one_budget_refuses_truth_budgets() -> None:
    with pytest.raises(ConfigError, match=r"the nb101 table holds one budget \(108\).*--benchmark"):
        RunConfig.resolve("darts", 1, benchmark="nb101", overrides={"truth_budgets": "4"})


@pytest.mark.parametrize("value", ["4,x", "4;12"])
def test_malformed_truth_budgets_exit_2(value: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--optimizer", "darts", "--benchmark", "digits", "--out", str(tmp_path)]
    assert cli.main([*argv, "--set", f"truth_budgets={value}"]) == 2
    err = capsys.readouterr().err
    assert "truth_budgets" in err and err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_a_complete_budgeted_run_is_skipped_on_rerun(tmp_path: Path, fixture_cli) -> None:
    first = _run(tmp_path, "truth_budgets=4,108")
    again = _run(tmp_path, "truth_budgets=4,108")  # config.json's list equals the setting's tuple
    pd.testing.assert_frame_equal(first, again)

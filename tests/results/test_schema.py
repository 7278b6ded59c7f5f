"""The epochs.csv columns follow the benchmark's repeat count; three repeats keep the historical columns."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import results
from bench.results import schema

HISTORICAL_REPEAT_COLUMNS = (
    "valid_acc_r0", "valid_acc_r1", "valid_acc_r2", "test_acc_r0", "test_acc_r1", "test_acc_r2",
)  # fmt: skip


def toy_row(repeats: int, valid: tuple[float, ...], test: tuple[float, ...]) -> dict:
    """TEST FIXTURE: a row of a toy table that trained each architecture `len(valid)` times."""
    return schema.row(
        identity={
            "benchmark": "toy",
            "space": 1,
            "optimizer": "darts",
            "tag": "quick",
            "seed": 0,
            "epoch": 0,
        },
        architecture={"arch_hash": "00ab", "matrix": "[[0,1],[0,0]]", "ops": "input,output"},
        measurements={"oneshot_train_loss": 1.0, "hessian_eig_max": 0.5},
        truth=schema.ground_truth(valid, test, repeats=repeats, best_test_error=0.05),
    )


def test_three_repeats_keep_the_historical_columns() -> None:
    assert schema.repeat_columns(3) == HISTORICAL_REPEAT_COLUMNS
    assert schema.columns() == results.COLUMNS
    assert results.COLUMNS.index("valid_acc_r0") == results.COLUMNS.index("oneshot_valid_acc_evalbn") + 1
    assert set(results.COLUMNS) <= set(results.COLUMN_DOCS)


@pytest.mark.parametrize("repeats", [2, 4])
def test_the_columns_follow_the_benchmark(tmp_path: Path, repeats: int) -> None:
    valid = tuple(0.90 + 0.01 * r for r in range(repeats))
    test = tuple(0.80 + 0.01 * r for r in range(repeats))
    path = tmp_path / results.EPOCHS_CSV
    results.write_epochs(path, [toy_row(repeats, valid, test)], repeats)

    header = path.read_text().splitlines()[0].split(",")
    assert [c for c in header if c.startswith(("valid_acc_r", "test_acc_r"))] == [
        *(f"valid_acc_r{r}" for r in range(repeats)),
        *(f"test_acc_r{r}" for r in range(repeats)),
    ]
    assert tuple(header) == schema.columns(repeats)  # no column outside the schema, none missing
    (row,) = results.read_epochs(path)
    assert [row[f"test_acc_r{r}"] for r in range(repeats)] == pytest.approx(test)
    assert row["test_acc_mean"] == pytest.approx(sum(test) / repeats)
    assert row["test_regret"] == pytest.approx(1 - sum(test) / repeats - 0.05)
    assert list(results.read_frame(path).columns) == list(schema.columns(repeats))  # read back as written


def test_a_repeat_the_table_lacks_is_nan_and_left_out_of_the_mean() -> None:
    truth = schema.ground_truth((0.9, 0.8), (0.7, 0.6), repeats=3, best_test_error=None)
    assert math.isnan(truth["valid_acc_r2"]) and truth["valid_acc_mean"] == pytest.approx(0.85)
    assert math.isnan(truth["test_regret"])


def test_the_run_path_has_one_parser() -> None:
    rel = results.run_dir(Path("out"), "digits", 2, "darts", "quick", 4).relative_to("out")
    assert results.parse_run_path(rel) == results.RunPath("digits", 2, "darts", "quick", 4)
    assert results.parse_run_path(Path("a/b")).known() == {}
    assert results.parse_run_path(Path("d/spaceX/o/t/seed1")).known() == {
        "benchmark": "d", "optimizer": "o", "tag": "t", "seed": 1,
    }  # fmt: skip

"""`python -m bench.perf mainjob`: the main command timed, and its results checked for completeness."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench import results
from bench.perf import mainjob

# A two-epoch, two-seed job on the fixture table and toy data (tests.runs.fixture_cli), Hessian on.
TINY_JOB = [
    "--runner", "tests.runs.fixture_cli", "--optimizer", "darts", "--seeds", "0-1", "--jobs", "1",
    "--set", "batch_size=16", "--set", "init_channels=2", "--set", "cells_per_stack=1",
    "--benchmark", "digits", "--epochs", "2",
]  # fmt: skip


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = mainjob.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any], Path]:
    work = tmp_path_factory.mktemp("mainjob")
    keep, path = work / "kept", work / "mainjob.json"
    code, out, _ = run_main([*TINY_JOB, "--keep", str(keep), "--json", str(path)])
    return code, out, json.loads(path.read_text()), keep


def test_tiny_job_passes_and_counts_every_promise(tiny: tuple[int, str, dict[str, Any], Path]) -> None:
    code, out, record, keep = tiny
    assert code == 0
    assert "overall: PASS" in out and "complete" in out
    assert record["returncode"] == 0 and record["targets"] == {"wall": True, "complete": True, "pass": True}
    assert len(record["runs"]) == 2
    for run in record["runs"]:
        assert run["complete"] and run["rows"] == run["epochs"] == 2
        assert run["hessian_measured"] == run["hessian_expected"] == 2  # every epoch by default
        assert run["oneshot_measured"] == 2 and run["regret_rows"] == 2
    # the cache was the fresh one under --keep, not the user's
    assert (keep / "cache").is_dir() and len(results.find_runs(keep / "results")) == 2


def test_a_dropped_measurement_is_incomplete(tiny: tuple[int, str, dict[str, Any], Path]) -> None:
    run = results.find_runs(tiny[3] / "results")[0]
    assert mainjob.check_run(run).complete
    frame = pd.read_csv(run / results.EPOCHS_CSV)
    frame.loc[1, "hessian_lambda_max"] = float("nan")
    frame.to_csv(run / results.EPOCHS_CSV, index=False)
    check = mainjob.check_run(run)
    assert not check.complete and check.hessian_measured == 1 and check.hessian_expected == 2


def test_missed_target_fails_and_strict_exits_1(tmp_path: Path) -> None:
    code, out, _ = run_main([*TINY_JOB, "--seeds", "0", "--target-minutes", "0.0001", "--strict"])
    assert code == 1
    assert "FAIL" in out and "overall: FAIL" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--seeds", "5-0"], "runs backwards"),
        (["--set", "epochs"], "expected key=value"),
        (["--target-minutes", "0"], "must be positive"),
    ],
)
def test_usage_errors_exit_2_before_running(argv: list[str], needle: str) -> None:
    code, out, err = run_main(argv)
    assert code == 2 and needle in err and "running:" not in out
    assert len(err.strip().splitlines()) == 1


def test_keep_refuses_a_folder_with_results(tmp_path: Path) -> None:
    (tmp_path / "old.csv").write_text("precious\n")
    code, _, err = run_main([*TINY_JOB, "--keep", str(tmp_path)])
    assert code == 2 and "not empty" in err
    assert (tmp_path / "old.csv").read_text() == "precious\n"

"""The nb101-full benchmark end to end: a small nasbench_full-format file written here (TEST FIXTURE
accuracies, not NAS-Bench-101 numbers) plus tiny CIFAR-10 batches, for a one-shot and a black-box run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import results
from bench import run as cli
from bench.benchmarks import resolve
from bench.blackbox import cli as blackbox_cli
from bench.search.spaces import SearchSpace
from bench.truth.nb101_full import NB101FullTable
from tests.helpers import write_fake_cifar, write_nb101_full_fixture

TINY = ["--set", "batch_size=8", "--set", "init_channels=2", "--set", "cells_per_stack=1", "--set",
        "hessian=false", "--no-progress", "--jobs", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Every unique model of space 1 at every budget x 3 fixture repeats, and CIFAR-10-shaped images."""
    d = tmp_path_factory.mktemp("data")
    specs = list(SearchSpace(1).unique_specs(cache_dir=d / "cache").values())
    write_nb101_full_fixture(d / "nasbench_full.tfrecord", specs)
    write_fake_cifar(d / "cifar-10-batches-py", per_batch=8)
    return d


def test_auto_prefers_nb101_full_over_nb101(tmp_path) -> None:
    for name in ("nasbench_only108.tfrecord", "nasbench_full.tfrecord"):
        (tmp_path / name).write_bytes(b"placeholder")  # resolve only looks for the files
    assert resolve("auto", tmp_path, search=False)[0] == "nb101-full"


def test_one_shot_run_rows_match_the_108_epoch_results(data_dir, tmp_path) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--epochs", "2", "--benchmark", "nb101-full", "--data-dir", str(data_dir),
            "--out", str(out), *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    assert run.relative_to(out).parts[0] == "nb101-full"
    frame = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})
    table = NB101FullTable.load(data_dir / "nasbench_full.tfrecord")
    for _, row in frame.iterrows():
        truth = table.query(np.array(json.loads(row["matrix"])), row["ops"].split(","))
        assert truth.arch_hash == row["arch_hash"]
        assert [row[f"test_acc_r{r}"] for r in range(3)] == pytest.approx(list(truth.test_acc))
    cfg = json.loads((run / results.CONFIG_JSON).read_text())
    assert cfg["config"]["benchmark"] == "nb101-full"


def test_black_box_run(data_dir, tmp_path) -> None:
    out = tmp_path / "results"
    argv = ["--benchmark", "nb101-full", "--data-dir", str(data_dir), "--method", "rs", "--max-queries",
            "10", "--out", str(out), "--jobs", "1", "--no-progress"]  # fmt: skip
    assert blackbox_cli.main(argv) == 0
    (queries,) = out.glob("nb101-full/space1/blackbox/rs/seed0/queries.csv")
    rows = pd.read_csv(queries, dtype={"arch_hash": str})
    assert len(rows) == 10 and (rows["benchmark"] == "nb101-full").all()


def test_missing_table_names_the_download(tmp_path, capsys) -> None:
    argv = ["--benchmark", "nb101-full", "--data-dir", str(tmp_path), "--method", "rs", "--out",
            str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert blackbox_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python -m bench.data download nb101-full" in err


def test_auto_without_the_full_table_does_not_warn(tmp_path, caplog) -> None:
    """nb101-full is an optional extra of nb101: its absence is no fallback worth a warning."""
    (tmp_path / "nasbench_only108.tfrecord").write_bytes(b"placeholder")
    assert resolve("auto", tmp_path, search=False)[0] == "nb101"
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_truth_budgets_columns_are_the_tables_budgets(data_dir, tmp_path) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--epochs", "1", "--benchmark", "nb101-full", "--data-dir", str(data_dir),
            "--out", str(out), "--set", "truth_budgets=4,12,36,108", *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    frame = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})
    table = NB101FullTable.load(data_dir / "nasbench_full.tfrecord")
    row = frame.iloc[0]
    spec = (np.array(json.loads(row["matrix"])), row["ops"].split(","))
    for budget in (4, 12, 36, 108):
        truth = table.query(*spec, budget=budget)
        assert row[f"test_acc_mean_b{budget}"] == pytest.approx(truth.test_acc_mean)
        assert row[f"train_seconds_b{budget}"] == pytest.approx(float(np.mean(truth.train_time)))


def test_hyperband_runs_on_the_full_table(data_dir, tmp_path) -> None:
    out = tmp_path / "results"
    argv = ["--benchmark", "nb101-full", "--data-dir", str(data_dir), "--method", "hb,bohb", "--max-queries",
            "45", "--out", str(out), "--jobs", "1", "--no-progress"]  # fmt: skip
    assert blackbox_cli.main(argv) == 0
    rows = pd.read_csv(next(out.glob("nb101-full/space1/blackbox/hb/seed0/queries.csv")))
    assert sorted(rows["budget"].unique()) == [4, 12, 36, 108] and len(rows) == 45

"""End to end on the nb101 benchmark: a small NB-101 file written by our writer (TEST FIXTURE
accuracies, not NAS-Bench-101 numbers) plus tiny CIFAR-10 batches; the rows must match the table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import results
from bench import run as cli
from bench.search.spaces import SearchSpace
from bench.truth.fixtures import metrics_from_final, records_for_spec, write_tfrecord
from bench.truth.nb101 import NB101Table
from tests.helpers import write_fake_cifar

TINY = ["--set", "batch_size=8", "--set", "init_channels=2", "--set", "cells_per_stack=1", "--set",
        "hessian=false", "--no-progress", "--jobs", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Every unique model of space 1 with three fixture repeats, and CIFAR-10-shaped random images."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    records = []
    for matrix, ops in SearchSpace(1).unique_specs(cache_dir=d / "cache").values():
        accs = rng.uniform(0.8, 0.95, size=(3, 2))
        repeats = [metrics_from_final(v, t, 1000.0 + i, 12345) for i, (v, t) in enumerate(accs)]
        records.extend(records_for_spec(matrix, ops, repeats))
    write_tfrecord(d / "nasbench_only108.tfrecord", records)
    write_fake_cifar(d / "cifar-10-batches-py", per_batch=8)
    return d


def test_auto_uses_nb101_and_rows_match_the_table(data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--epochs", "2", "--data-dir", str(data_dir), "--out", str(out), *TINY]
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    assert run.relative_to(out).parts[0] == "nb101"
    frame = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})
    table = NB101Table.load(data_dir / "nasbench_only108.tfrecord")
    space = SearchSpace(1)
    for _, row in frame.iterrows():
        truth = table.query(np.array(json.loads(row["matrix"])), row["ops"].split(","))
        assert truth.arch_hash == row["arch_hash"]
        assert [row[f"test_acc_r{r}"] for r in range(3)] == pytest.approx(list(truth.test_acc))
        assert [row[f"valid_acc_r{r}"] for r in range(3)] == pytest.approx(list(truth.valid_acc))
        assert row["test_regret"] == pytest.approx(truth.test_error_mean - space.best_test_error)
    cfg = json.loads((run / results.CONFIG_JSON).read_text())
    assert cfg["config"]["benchmark"] == "nb101" and "NAS-Bench-101" in cfg["benchmark_note"]


def test_corrupt_nb101_file_is_one_line_exit_2(data_dir, tmp_path, capsys) -> None:
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "cifar-10-batches-py").symlink_to(data_dir / "cifar-10-batches-py")
    raw = bytearray((data_dir / "nasbench_only108.tfrecord").read_bytes()[:5000])
    raw[100] ^= 0xFF
    (bad / "nasbench_only108.tfrecord").write_bytes(bytes(raw))
    code = cli.main(["--optimizer", "darts", "--benchmark", "nb101", "--data-dir", str(bad), "--out",
                     str(tmp_path / "out"), *TINY])  # fmt: skip
    # The table logs that it starts converting the file (minutes for the real one) before it finds the damage.
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if line.startswith("error: ")]
    assert code == 2 and len(err) == 1 and lines[-1] == err[0]
    assert all(" INFO " in f" {line}" for line in lines[:-1])
    assert "download nb101" in err[0]
    assert not (tmp_path / "out" / "nb101").exists()


def test_missing_cifar10_is_one_line_exit_2(data_dir, tmp_path, capsys) -> None:
    only_table = tmp_path / "data"
    only_table.mkdir()
    (only_table / "nasbench_only108.tfrecord").symlink_to(data_dir / "nasbench_only108.tfrecord")
    code = cli.main(["--optimizer", "darts", "--benchmark", "nb101", "--data-dir", str(only_table), "--out",
                     str(tmp_path / "out"), *TINY])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "download cifar10" in err[0]


def test_results_dir_from_another_version_is_refused(data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--epochs", "1", "--data-dir", str(data_dir), "--out", str(out), *TINY]
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    record = json.loads((run / results.CONFIG_JSON).read_text())
    record["results_version"] = 0
    (run / results.CONFIG_JSON).write_text(json.dumps(record))
    (run / "status.json").unlink()
    before = (run / results.EPOCHS_CSV).read_bytes()
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results version 0" in err[0]
    assert (run / results.EPOCHS_CSV).read_bytes() == before

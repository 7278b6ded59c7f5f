"""The repeats-fidelity method (bohb-repeats) on a NAS-Bench-101 file made by the writer: a SYNTHETIC
TEST FIXTURE in the official format (every unique model of space 1, three made-up repeats each), read by
the real reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.blackbox import records, runs
from bench.blackbox.runs import BlackboxRequest
from bench.search.spaces import SearchSpace
from bench.truth.nb101 import NB101Table

try:  # the test-only writers are moving to bench.truth.fixtures
    from bench.truth.fixtures import metrics_from_final, records_for_spec, write_tfrecord
except ImportError:
    from bench.truth.nb101 import metrics_from_final, records_for_spec, write_tfrecord


@pytest.fixture(scope="module")
def nb101_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple]]:
    """Space 1's 2,685 unique models x 3 repeats; accuracies and TPU seconds drawn at random (fixture)."""
    rng = np.random.default_rng(0)
    truth = {}

    def rows():
        for h, (matrix, ops) in SearchSpace(1).unique_specs().items():
            valid = rng.uniform(0.80, 0.94, 3)
            test = valid - rng.uniform(0.0, 0.01, 3)
            seconds = rng.uniform(1000.0, 3000.0, 3)
            truth[h] = (valid, test, seconds)
            repeats = [
                metrics_from_final(float(v), float(t), float(s), 1000)
                for v, t, s in zip(valid, test, seconds, strict=True)
            ]
            yield from records_for_spec(matrix, ops, repeats)

    path = tmp_path_factory.mktemp("nb101") / "synthetic_only108.tfrecord"
    write_tfrecord(path, rows())
    return path, truth


def test_bohb_repeats_on_an_nb101_file(nb101_file: tuple[Path, dict[str, tuple]], tmp_path: Path) -> None:
    path, truth = nb101_file
    table = NB101Table.load(path)
    req = BlackboxRequest("bohb-repeats", 1, 0, "nb101", 80, tmp_path, {"n_startup_trials": 5})
    assert runs.execute(req, table).state == "complete"
    rows = pd.read_csv(req.run_dir / records.QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})
    assert set(rows["repeats"]) == {1, 3} and set(rows["budget"]) == {108}
    assert (rows["benchmark"] == "nb101").all()
    clock = np.concatenate([[0.0], rows["simulated_seconds"]])
    paid = np.diff(clock)
    for i, row in rows.iterrows():
        valid, test, seconds = truth[row["arch_hash"]]
        if row["repeats"] == 1:  # one repeat: its accuracy, its training time
            r = int(np.argmin(np.abs(valid - row["valid_acc"])))
            assert row["valid_acc"] == pytest.approx(valid[r]) and paid[i] == pytest.approx(seconds[r])
        else:  # promotion: the mean of all three, the two others' time
            assert row["valid_acc"] == pytest.approx(valid.mean())
            assert paid[i - 1] + paid[i] == pytest.approx(seconds.sum())
        inc = truth[row["incumbent_hash"]]
        # regret against NAS-Bench-1Shot1's best single-run test error of the space (its convention)
        expected = 1 - inc[1].mean() - SearchSpace(1).best_test_error
        assert row["test_regret"] == pytest.approx(expected)

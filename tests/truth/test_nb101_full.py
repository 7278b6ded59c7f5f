"""The full NAS-Bench-101 table (every budget, halfway metrics) on small files in the official format
written here (TEST FIXTURE values, not NAS-Bench-101 numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.truth import fixtures, nb101_cache
from bench.truth.base import UnknownBudgetError
from bench.truth.nb101 import NB101Error, NB101FileNotFoundError, NB101FormatError, NB101Table
from bench.truth.nb101_full import FULL_BUDGETS, NB101FullTable
from tests.helpers import write_nb101_full_fixture

CHAIN3 = (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv3x3-bn-relu", "output"])
CHAIN3B = (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "maxpool3x3", "output"])
SKIP2 = (np.array([[0, 1], [0, 0]]), ["input", "output"])
FIX = "python -m bench.data download nb101-full"


@pytest.fixture
def full_file(tmp_path):
    path = tmp_path / "nasbench_full.tfrecord"
    truth = write_nb101_full_fixture(path, [CHAIN3, CHAIN3B, SKIP2])
    return path, truth


def test_every_budget_final_and_halfway(full_file):
    path, truth = full_file
    table = NB101FullTable.load(path)
    assert len(table) == 3 and table.budgets == FULL_BUDGETS == (108, 4, 12, 36)
    for matrix, ops in (CHAIN3, CHAIN3B, SKIP2):
        standard = table.query(matrix, ops)
        assert standard == table.query(matrix, ops, budget=108)
        for budget in FULL_BUDGETS:
            want = truth[standard.arch_hash, budget]
            r = table.query(matrix, ops, budget=budget)
            assert r.valid_acc == tuple(want[:, 0]) and r.test_acc == tuple(want[:, 1])
            assert r.train_time == tuple(want[:, 2]) and r.params == 1000
            half = table.query_halfway(matrix, ops, budget=budget)
            assert half.valid_acc == tuple(want[:, 3]) and half.test_acc == tuple(want[:, 4])
            assert half.train_time == tuple(want[:, 5])
            assert table.query_hash(r.arch_hash, budget) == r
            assert table.query_hash(r.arch_hash, budget, halfway=True) == half
            batch = table.query_hashes([r.arch_hash], budget=budget)
            assert batch.valid_acc[0].tolist() == list(want[:, 0]) and batch.n_repeats.tolist() == [3]


def test_unknown_budget_is_one_line_naming_the_budgets(full_file):
    table = NB101FullTable.load(full_file[0])
    for call in (
        lambda: table.query(*CHAIN3, budget=200),
        lambda: table.query_halfway(*CHAIN3, budget=50),
        lambda: table.query_hash("0" * 32, 7),
        lambda: table.query_hashes(["0" * 32], budget=1),
    ):
        with pytest.raises(UnknownBudgetError) as e:
            call()
        assert "108, 4, 12, 36" in str(e.value) and "\n" not in str(e.value)


def test_cache_is_memory_mapped_and_reused(full_file, monkeypatch):
    path, _ = full_file
    first = NB101FullTable.load(path)
    cache = path.with_name("nasbench_full.nb101cache")
    assert cache.is_dir() and (cache / "valid_acc.npy").is_file() and first.source == path

    def no_parsing(*args, **kwargs):
        raise AssertionError("the tfrecord was parsed again")

    monkeypatch.setattr("bench.truth.nb101.convert_tfrecord", no_parsing)
    again = NB101FullTable.load(path)
    assert again.source == cache and isinstance(again._valid, np.memmap)
    assert again.query(*SKIP2, budget=12) == first.query(*SKIP2, budget=12)
    assert NB101FullTable.load(cache).query_halfway(*SKIP2) == first.query_halfway(*SKIP2)
    path.unlink()  # only the cache is left: still usable
    assert NB101FullTable.load(path).query(*CHAIN3) == first.query(*CHAIN3)


def test_damaged_cache_is_rebuilt_beside_the_file_and_refused_when_given(full_file, caplog):
    path, _ = full_file
    NB101FullTable.load(path)
    cache = path.with_name("nasbench_full.nb101cache")
    (cache / "test_acc.npy").write_bytes(b"\x93NUMPY truncated")
    with pytest.raises(NB101FormatError, match="not a usable NB-101 cache"):
        NB101FullTable.load(cache)
    assert NB101FullTable.load(path).query(*CHAIN3, budget=4).arch_hash
    assert "ignoring unreadable cache" in caplog.text
    assert NB101FullTable.load(cache).query(*CHAIN3, budget=4).arch_hash  # rewritten whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["nasbench_full.nb101cache", path.name]


def test_only108_file_is_not_the_full_table(tmp_path):
    path = tmp_path / "nasbench_only108.tfrecord"
    m = fixtures.metrics_from_final(0.8, 0.7, 10.0, 5)
    fixtures.write_tfrecord(path, fixtures.records_for_spec(*CHAIN3, [m, m, m]))
    with pytest.raises(NB101FormatError, match="none at 4, 12, 36 epochs") as e:
        NB101FullTable.load(path)
    assert FIX in str(e.value) and "\n" not in str(e.value)
    # Its 108-epoch cache does not pass for the full table's either.
    NB101Table.load(path)
    with pytest.raises(NB101FormatError, match=r"needs \(108, 4, 12, 36\)"):
        NB101FullTable.load(nb101_cache.cache_path_for(path))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_or_truncated_full_file(full_file, damage):
    path, _ = full_file
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) - 7]
    else:
        raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))
    with pytest.raises(NB101FormatError, match="corrupt or truncated") as e:
        NB101FullTable.load(path)
    assert FIX in str(e.value) and "\n" not in str(e.value)
    assert not path.with_name("nasbench_full.nb101cache").exists()


def test_missing_file_names_the_download(tmp_path):
    with pytest.raises(NB101FileNotFoundError, match=FIX):
        NB101FullTable.load(tmp_path / "nasbench_full.tfrecord")


def test_the_108_epoch_table_keeps_final_metrics_only(full_file):
    path, truth = full_file
    table = NB101Table.load(path)  # the 108-epoch reader on the full file: its 108-epoch runs
    r = table.query(*CHAIN3)
    assert r.valid_acc == tuple(truth[r.arch_hash, 108][:, 0])
    with pytest.raises(NB101Error, match="download nb101-full"):
        table.query_halfway(*CHAIN3)
    with pytest.raises(UnknownBudgetError, match="holds 108"):
        table.query(*CHAIN3, budget=4)


def test_partial_file_missing_a_run_of_one_budget(tmp_path):
    """Not in the official file, but a hand-made one may lack a spec's runs at one budget."""
    path = tmp_path / "partial.tfrecord"
    recs = []
    for budget in FULL_BUDGETS:
        m = fixtures.metrics_from_final(0.8, 0.7, 10.0, 5, epochs=budget)
        recs += fixtures.records_for_spec(*CHAIN3, [m], epochs=budget)
        if budget != 12:
            recs += fixtures.records_for_spec(*SKIP2, [m], epochs=budget)
    fixtures.write_tfrecord(path, recs)
    table = NB101FullTable.load(path)
    assert table.query(*SKIP2, budget=36).valid_acc == (0.8,)
    with pytest.raises(NB101Error, match="no run at 12 epochs"):
        table.query(*SKIP2, budget=12)

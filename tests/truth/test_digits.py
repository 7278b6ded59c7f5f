"""The embedded digits benchmark: splits, protocol key, SQLite cache, claims across processes, CLI.

Most tests use a STUB trainer (accuracies are a deterministic function of the hash and repeat, not real
training) so they run in milliseconds; the few real trainings use a tiny protocol.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import bench.truth.digits as digits
from bench.search.graph import hash_spec
from bench.truth.base import ArchResult, GroundTruth
from bench.truth.digits import (
    DigitsBenchmark,
    DigitsCacheError,
    DigitsProtocol,
    IncompleteSpaceError,
    RepeatResult,
    canonical_spec,
)
from bench.truth.digits_protocol import RUN_PROTOCOL

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

# Hand-written NB-101 specs (5 vertices); SPEC_A_PERMUTED is SPEC_A with vertices 2 and 3 swapped.
SPEC_A = (
    [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", C3, MP, C1, "output"],
)
SPEC_A_PERMUTED = (
    [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, "output"],
)
SPEC_B = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
SPEC_C = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
SPEC_D = ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C1, C3, "output"])
SPEC_E = ([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, C3, "output"])
SPECS = [SPEC_A, SPEC_B, SPEC_C, SPEC_D, SPEC_E]

TINY = DigitsProtocol(epochs=1, batch_size=50, train_size=100, stem_channels=4, num_stacks=1)


def fake_train(
    matrix, ops, protocol, repeat, log_path: str | None = None, sleep: float = 0.0
) -> RepeatResult:
    """STUB trainer (not real training): accuracies are a function of the spec hash and the repeat."""
    h = hash_spec(matrix, ops)
    if sleep:
        time.sleep(sleep)
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as f:  # one short O_APPEND write per line
            f.write(f"{h} {repeat} {os.getpid()}\n")
    base = int(h[:4], 16) / 16**4
    return RepeatResult(0.5 + 0.4 * base + 0.01 * repeat, 0.5 + 0.4 * base - 0.01 * repeat, 0.1, 0.1, 123)


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bytes]] = []

    def __call__(self, matrix, ops, protocol, repeat) -> RepeatResult:
        self.calls.append((hash_spec(matrix, ops), repeat, np.asarray(matrix).tobytes() + str(ops).encode()))
        return fake_train(matrix, ops, protocol, repeat)


@pytest.fixture
def counter() -> Counter:
    return Counter()


@pytest.fixture
def bench_factory(tmp_path: Path, counter: Counter):
    def make(protocol: DigitsProtocol | None = None, **kw) -> DigitsBenchmark:
        kw.setdefault("train_fn", counter)
        kw.setdefault("shipped", [])
        return DigitsBenchmark(tmp_path / "cache" / "digits.sqlite", protocol or DigitsProtocol(), **kw)

    return make


# ---- protocol and specs ----------------------------------------------------------------------------


def test_protocol_key_and_overrides() -> None:
    p = DigitsProtocol()
    assert p.key() == DigitsProtocol().key()
    assert DigitsProtocol(epochs=p.epochs + 1).key() != p.key()
    assert DigitsProtocol(version="other").key() != p.key()
    q = DigitsProtocol.with_overrides(p, {"epochs": "7", "learning_rate": "0.2", "train_size": "500"})
    assert (q.epochs, q.learning_rate, q.train_size) == (7, 0.2, 500)
    assert DigitsProtocol.with_overrides(q, {"train_size": "none"}).train_size is None
    assert DigitsProtocol.with_overrides(p, {"bn_recalibrate": "0"}).bn_recalibrate is False
    with pytest.raises(digits.ProtocolError, match="not a valid"):
        DigitsProtocol.with_overrides(p, {"epochs": "four"})
    with pytest.raises(digits.ProtocolError, match="unknown DigitsProtocol field"):
        DigitsProtocol.with_overrides(p, {"epoch": "3"})
    with pytest.raises(digits.ProtocolError, match="num_stacks"):
        DigitsProtocol(num_stacks=4)


def test_canonical_spec_is_order_independent() -> None:
    a = canonical_spec(*SPEC_A)
    b = canonical_spec(*SPEC_A_PERMUTED)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert hash_spec(*SPEC_A) == hash_spec(*SPEC_A_PERMUTED)
    # A dangling vertex is pruned before canonicalization.
    m = np.zeros((4, 4), int)
    m[0, 1] = m[1, 3] = m[0, 2] = 1
    pm, pops = canonical_spec(m, ["input", C3, MP, "output"])
    assert pops == ["input", C3, "output"]


# ---- cache -----------------------------------------------------------------------------------------


def test_query_trains_three_repeats_then_hits_cache(bench_factory, counter: Counter) -> None:
    b = bench_factory()
    assert isinstance(b, GroundTruth) and b.name == "digits"
    res = b.query(*SPEC_A)
    assert isinstance(res, ArchResult) and res.arch_hash == hash_spec(*SPEC_A)
    assert len(res.valid_acc) == len(res.test_acc) == len(res.train_time) == 3 and res.params == 123
    assert sorted(r for _, r, _ in counter.calls) == [0, 1, 2]
    with sqlite3.connect(b.cache_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 3
        assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = bench_factory().query(*SPEC_A)  # a new object on the same file: no training
    assert again == res and len(counter.calls) == 3
    assert bench_factory().lookup(*SPEC_B) is None and len(counter.calls) == 3


def test_isomorphic_spec_hits_the_same_row(bench_factory, counter: Counter) -> None:
    b = bench_factory()
    r1 = b.query(*SPEC_A_PERMUTED)
    r2 = b.query(*SPEC_A)
    assert r1 == r2 and len(counter.calls) == 3
    # What is trained is the canonical spec, whichever ordering arrived first.
    other = Counter()
    DigitsBenchmark(b.cache_path.with_name("other.sqlite"), shipped=[], train_fn=other).query(*SPEC_A)
    assert {c[2] for c in counter.calls} == {c[2] for c in other.calls}


def test_protocol_change_uses_a_new_key(bench_factory, counter: Counter) -> None:
    b1 = bench_factory()
    b1.query(*SPEC_B)
    b2 = bench_factory(DigitsProtocol(epochs=DigitsProtocol().epochs + 1))
    assert b2.key != b1.key
    b2.query(*SPEC_B)
    assert len(counter.calls) == 6
    with sqlite3.connect(b1.cache_path) as conn:
        keys = {k for (k,) in conn.execute("SELECT DISTINCT protocol_key FROM results")}
        assert keys == {b1.key, b2.key}
        assert conn.execute("SELECT COUNT(*) FROM protocols").fetchone()[0] == 2


def test_failed_training_releases_the_claim(bench_factory) -> None:
    def boom(*args):
        raise RuntimeError("trainer crashed")

    b = bench_factory(train_fn=boom)
    with pytest.raises(RuntimeError, match="crashed"):
        b.query(*SPEC_B)
    with sqlite3.connect(b.cache_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
    assert len(bench_factory().query(*SPEC_B).test_acc) == 3


def _insert_claim(b: DigitsBenchmark, arch_hash: str, repeat: int, pid: int, claimed: float) -> None:
    b.lookup(*SPEC_B)  # creates the schema
    conn = sqlite3.connect(b.cache_path)
    with conn:
        conn.execute(
            "INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)",
            (b.key, arch_hash, repeat, f"x:{pid}", b.store.host, pid, claimed),
        )
    conn.close()


def test_stale_claims_are_reclaimed(bench_factory, counter: Counter) -> None:
    b = bench_factory(poll_interval_s=0.01, stale_after_s=60)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    h_b, h_c = hash_spec(*SPEC_B), hash_spec(*SPEC_C)
    _insert_claim(b, h_b, 1, dead.pid, time.time())  # owner process is gone
    _insert_claim(b, h_c, 2, os.getppid(), time.time() - 3600)  # owner alive but claim too old
    assert len(b.query(*SPEC_B).test_acc) == 3
    assert len(b.query(*SPEC_C).test_acc) == 3
    assert sorted((h, r) for h, r, _ in counter.calls) == sorted(
        [(h_b, 0), (h_b, 1), (h_b, 2), (h_c, 0), (h_c, 1), (h_c, 2)]
    )


def test_live_claim_is_waited_for(bench_factory, counter: Counter) -> None:
    b = bench_factory(poll_interval_s=0.01)
    h = hash_spec(*SPEC_B)
    _insert_claim(b, h, 0, os.getppid(), time.time())  # a live "other process" owns repeat 0

    def finish() -> None:
        time.sleep(0.3)
        conn = sqlite3.connect(b.cache_path)
        with conn:  # commits
            conn.execute(
                "INSERT INTO results VALUES (?, ?, 0, 0.25, 0.75, 1.0, 1.0, 9, ?)", (b.key, h, time.time())
            )
            conn.execute("DELETE FROM claims")
        conn.close()

    t = threading.Thread(target=finish)
    t.start()
    res = b.query(*SPEC_B)
    t.join()
    assert sorted(r for _, r, _ in counter.calls) == [1, 2]  # repeat 0 was not trained here
    assert res.valid_acc[0] == 0.25 and res.test_acc[0] == 0.75


def _worker(cache_path: str, log_path: str, order: list[int], out_path: str) -> None:
    b = DigitsBenchmark(
        cache_path,
        shipped=[],
        train_fn=partial(fake_train, log_path=log_path, sleep=0.02),
        poll_interval_s=0.01,
    )
    lines = []
    for i in order:
        r = b.query(*SPECS[i])
        lines.append(f"{r.arch_hash} {r.test_acc}\n")
    Path(out_path).write_text("".join(lines))


def test_four_processes_train_each_repeat_once(tmp_path: Path) -> None:
    cache, log = tmp_path / "shared.sqlite", tmp_path / "trained.log"
    ctx = mp.get_context("spawn")
    orders = [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3], [1, 2, 3, 0, 4]]
    procs = [
        ctx.Process(target=_worker, args=(str(cache), str(log), o, str(tmp_path / f"out{i}.txt")))
        for i, o in enumerate(orders)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]  # no "database is locked", no crash
    trained = [tuple(line.split()[:2]) for line in log.read_text().splitlines()]
    assert len(trained) == len(set(trained)) == 3 * len(SPECS)  # every (hash, repeat) exactly once
    answers = {tuple(sorted((tmp_path / f"out{i}.txt").read_text().splitlines())) for i in range(4)}
    assert len(answers) == 1  # everyone saw the same numbers


# ---- completeness, shipped tables, errors ----------------------------------------------------------


def test_best_test_error_only_when_complete(bench_factory, tmp_path: Path) -> None:
    b = bench_factory()
    hashes = [hash_spec(*s) for s in SPECS[1:]]
    assert b.best_test_error(1) is None
    for s in SPECS[1:3]:
        b.query(*s)
    with pytest.raises(IncompleteSpaceError, match="lack repeats"):
        b.mark_complete(1, hashes)
    assert b.best_test_error(1) is None
    results = [b.query(*s) for s in SPECS[1:]]
    best_hash, best = b.mark_complete(1, hashes)
    assert best == pytest.approx(min(r.test_error_mean for r in results))
    assert b.best_test_error(1) == pytest.approx(best) and b.best_test_error(2) is None
    assert bench_factory(DigitsProtocol(epochs=1)).best_test_error(1) is None  # per protocol

    shipped = b.export(tmp_path / "new_dir" / "digits_space1.sqlite", 1, hashes)  # makes the folder
    fresh_counter = Counter()
    fresh = DigitsBenchmark(tmp_path / "empty.sqlite", shipped=[shipped], train_fn=fresh_counter)
    assert fresh.query(*SPECS[1]) == results[0] and not fresh_counter.calls  # answered by the shipped table
    assert fresh.best_test_error(1) == pytest.approx(best)


def test_invalid_spec_raises_before_training(bench_factory, counter: Counter) -> None:
    from bench.search.graph import InvalidSpecError

    disconnected = ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    with pytest.raises(InvalidSpecError):
        bench_factory().query(*disconnected)
    assert not counter.calls


def test_corrupt_cache_raises_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "digits.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DigitsCacheError, match="delete the file"):
        DigitsBenchmark(bad, shipped=[], train_fn=fake_train).query(*SPEC_B)


# ---- real training (tiny protocol) ----------------------------------------------------------------


def test_real_training_is_deterministic_and_side_effect_free() -> None:
    import torch

    threads = torch.get_num_threads()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = digits.train_repeat(*SPEC_A, TINY, 0)
    b = digits.train_repeat(*SPEC_A_PERMUTED, TINY, 0)  # same graph, other vertex order
    assert (a.valid_acc, a.test_acc, a.params) == (b.valid_acc, b.test_acc, b.params)
    assert 0.0 <= a.test_acc <= 1.0 and a.params > 0 and a.cpu_seconds > 0
    assert torch.get_num_threads() == threads  # one thread inside, restored after
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is untouched


def test_real_query_end_to_end(tmp_path: Path) -> None:
    b = DigitsBenchmark(tmp_path / "d.sqlite", TINY, shipped=[])
    res = b.query(*SPEC_B)
    assert len(res.test_acc) == 3 and all(0.0 <= a <= 1.0 for a in res.test_acc + res.valid_acc)
    assert b.query(*SPEC_B) == res


# ---- tabulate CLI ----------------------------------------------------------------------------------


# bench.tabulate imports torch (via bench.search.spaces): imported inside the tests below, so the spawned
# workers of the concurrency test, which import this module, start fast.


def test_tabulate_fills_marks_complete_and_exports(tmp_path: Path, monkeypatch, capsys) -> None:
    import bench.tabulate as tabulate
    import bench.truth.tabulate as tabulation
    from tests.helpers import fake_space

    monkeypatch.setattr(tabulation, "SearchSpace", fake_space(SPECS[1:]))
    counter = Counter()
    monkeypatch.setattr(digits, "train_repeat", counter)
    cache = tmp_path / "c.sqlite"
    argv = ["--benchmark", "digits", "--space", "1", "--cache", str(cache), "--no-shipped"]
    assert tabulate.main([*argv, "--limit", "2"]) == 0
    assert "2/4 models stored" in capsys.readouterr().out and len(counter.calls) == 6
    assert DigitsBenchmark(cache, shipped=[]).best_test_error(1) is None
    export = tmp_path / "digits_space1.sqlite"
    assert tabulate.main([*argv, "--export", str(export)]) == 0  # resumes: only the other two train
    out = capsys.readouterr().out
    assert "space 1 complete: 4 models" in out and len(counter.calls) == 12
    best = DigitsBenchmark(cache, shipped=[]).best_test_error(1)
    assert (
        best is not None
        and DigitsBenchmark(tmp_path / "x.sqlite", shipped=[export]).best_test_error(1) == best
    )


def test_tabulate_evaluate_protocol_prints_statistics(tmp_path: Path, monkeypatch, capsys) -> None:
    import bench.tabulate as tabulate
    import bench.truth.tabulate as tabulation
    from tests.helpers import fake_space

    monkeypatch.setattr(tabulation, "SearchSpace", fake_space(SPECS[1:]))
    monkeypatch.setattr(digits, "train_repeat", fake_train)
    argv = ["--benchmark", "digits", "--space", "1", "--cache", str(tmp_path / "c.sqlite"), "--no-shipped"]
    assert tabulate.main([*argv, "--evaluate-protocol", "4", "--estimate-spaces", "1"]) == 0
    out = capsys.readouterr().out
    assert "spread (max-min)" in out and "Spearman between repeats" in out and "core-hours" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--space", "4"], "unknown search space"),
        (["--space", "1", "--protocol", "epoch=3"], "unknown DigitsProtocol field"),
        (["--space", "1", "--jobs", "0"], "--jobs must be"),
    ],
)
def test_tabulate_usage_errors_exit_2(tmp_path: Path, capsys, extra, message) -> None:
    import bench.tabulate as tabulate

    rc = tabulate.main(["--benchmark", "digits", "--cache", str(tmp_path / "c.sqlite"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_protocol_statistics_on_synthetic_results() -> None:
    """SYNTHETIC results: three repeats that rank five models identically."""
    import bench.truth.tabulate as tabulation

    res = [
        ArchResult(str(i), (0.5 + i / 10,) * 3, (0.5 + i / 10, 0.51 + i / 10, 0.49 + i / 10))
        for i in range(5)
    ]
    s = tabulation.protocol_statistics(res, [1.0] * 15)
    assert s["test_acc_spread"] == pytest.approx(0.4)
    assert s["spearman_test_min"] == pytest.approx(1.0) and s["cpu_seconds_mean"] == 1.0


def test_shipped_space1_table_covers_the_space(tmp_path: Path, counter: Counter) -> None:
    """The repo ships space 1 tabulated under the protocol searches use (RUN_PROTOCOL, the default):
    complete, answering every query without training, and never presented as another protocol's."""
    from bench.search.spaces import SearchSpace

    path = digits.SHIPPED_DIR / "digits_space1.sqlite"
    assert path in digits.shipped_tables()
    assert RUN_PROTOCOL == DigitsProtocol() and RUN_PROTOCOL.key() != digits.PROTOCOL_1X1.key()
    b = DigitsBenchmark(tmp_path / "empty.sqlite", RUN_PROTOCOL, shipped=[path], train_fn=counter)
    specs = SearchSpace(1).unique_specs(cache_dir=tmp_path)
    assert len(specs) == 2685 and set(specs) <= b.complete_hashes()
    results = b.stored_results(sorted(specs))
    best = min(r.test_error_mean for r in results.values())
    assert b.best_test_error(1) == pytest.approx(best)
    assert 0.0 < best < 0.1  # the best digits cell errs on a few percent of the test split
    b.query(*specs[min(specs)])
    assert not counter.calls  # answered by the shipped table, nothing trained
    base = b.random_baseline(1)  # a uniformly random architecture's regret, from the whole table
    counts = SearchSpace(1).architecture_counts()  # raw cells per model: sampling is uniform over cells
    regrets = np.array([results[h].test_error_mean - best for h in sorted(counts)])
    assert base is not None and base.n_models == 2685
    assert base.mean == pytest.approx(np.average(regrets, weights=[counts[h] for h in sorted(counts)]))

    old = DigitsBenchmark(tmp_path / "empty.sqlite", digits.PROTOCOL_1X1, shipped=[path], train_fn=counter)
    assert old.best_test_error(1) is None and old.random_baseline(1) is None
    assert old.lookup(*specs[min(specs)]) is None and not old.complete_hashes()

"""bench.blackbox: encoding, oracle and clock, the four methods, resume by replay, and the CLI.

The digits benchmark's space 1 ships fully tabulated, so these runs train nothing. `SmoothTable` below is
a TEST FIXTURE (a made-up, smooth function of the cell), not a benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.blackbox import cli, records, runs
from bench.blackbox.encoding import Encoding
from bench.blackbox.oracle import TabularOracle
from bench.blackbox.runs import BlackboxRequest, ReplayMismatchError
from bench.search.spaces import PRIMITIVES, SearchSpace
from bench.truth.digits import DigitsBenchmark
from tests.blackbox.helpers import SmoothTable, shipped_digits


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> DigitsBenchmark:
    table = shipped_digits(tmp_path_factory.mktemp("digits") / "digits.sqlite")
    assert table.best_test_error(1) is not None  # the shipped table answers every query of space 1
    return table


def run_rows(method: str, table, tmp: Path, seed: int = 0, queries: int = 40, **settings) -> pd.DataFrame:
    req = BlackboxRequest(method, 1, seed, table.name, queries, tmp, dict(settings))
    outcome = runs.execute(req, table)
    assert outcome.state == "complete", outcome.reason
    return pd.read_csv(req.run_dir / records.QUERIES_CSV, dtype={"arch_hash": str, "incumbent_hash": str})


# ---- encoding -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("space", "n_params"), [(1, 4 + 3), (2, 4 + 4), (3, 5 + 5)])
def test_encoding_parameters_and_round_trip(space: int, n_params: int) -> None:
    enc = Encoding(SearchSpace(space))
    assert len(enc.params) == n_params
    assert "parents_output" in enc.params and enc.params["op_1"] == PRIMITIVES
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = enc.sample(rng)
        assert enc.decode(enc.encode(arch)) == arch
        SearchSpace(space).spec(arch)  # a valid NB-101 spec


def test_sampling_is_uniform_over_raw_architectures() -> None:
    """Every op and parent-set choice is equally likely (as SearchSpace.sample)."""
    enc = Encoding(SearchSpace(1))
    rng = np.random.default_rng(1)
    archs = [enc.sample(rng) for _ in range(3000)]
    ops = np.bincount([a.ops[0] for a in archs], minlength=3) / len(archs)
    outs = pd.Series([a.topology[-1] for a in archs]).value_counts(normalize=True)
    assert np.allclose(ops, 1 / 3, atol=0.03)
    assert len(outs) == 10 and np.allclose(outs, 0.1, atol=0.025)  # C(5, 2) output parent sets


def test_mutation_changes_one_op_or_one_parent() -> None:
    enc = Encoding(SearchSpace(3))
    rng = np.random.default_rng(2)
    kinds = {"identity": 0, "op": 0, "parents": 0}
    for _ in range(600):
        a = enc.sample(rng)
        b = enc.mutate(a, rng)
        op_diff = sum(x != y for x, y in zip(a.ops, b.ops, strict=True))
        par_diff = [set(x) ^ set(y) for x, y in zip(a.topology, b.topology, strict=True) if x != y]
        if a == b:
            kinds["identity"] += 1
        elif op_diff:
            assert op_diff == 1 and not par_diff
            kinds["op"] += 1
        else:
            assert len(par_diff) == 1 and len(par_diff[0]) == 2  # one parent dropped, one added
            kinds["parents"] += 1
    assert all(150 < n < 250 for n in kinds.values())  # 1/3 each, as NAS-Bench-1Shot1


# ---- oracle -------------------------------------------------------------------------------------
def test_oracle_one_repeat_per_query_clock_and_incumbent() -> None:
    table = SmoothTable()
    enc = Encoding(SearchSpace(1))
    oracle = TabularOracle(table, SearchSpace(1), np.random.default_rng(0), 30, table.best_test_error(1))
    rng = np.random.default_rng(0)
    for _ in range(30):
        oracle.query(enc.sample(rng))
    rows = pd.DataFrame(oracle.rows)
    assert rows["query"].tolist() == list(range(1, 31)) and oracle.exhausted
    paid = np.diff(np.concatenate([[0.0], rows["simulated_seconds"]]))
    assert set(np.round(paid, 9)) <= {10.0, 20.0, 30.0} and len(set(np.round(paid))) > 1  # one repeat each
    assert (rows["incumbent_valid_acc"] == rows["valid_acc"].cummax()).all()
    np.testing.assert_allclose(rows["test_regret"], rows["incumbent_test_error"] - table.best_test_error(1))
    with pytest.raises(RuntimeError, match="beyond the budget"):
        oracle.query(enc.sample(rng))


# ---- methods ------------------------------------------------------------------------------------
def test_re_finds_the_optimum_of_a_fixture_table(tmp_path: Path) -> None:
    rows = run_rows("re", SmoothTable(), tmp_path, queries=300, population=20, sample_size=5)
    assert rows["test_regret"].iloc[-1] == pytest.approx(0.0, abs=1e-12)
    # ... and random search with the same budget does not (the fixture is not trivial).
    rs = run_rows("rs", SmoothTable(), tmp_path, queries=300)
    assert rs["test_regret"].iloc[-1] > 0


@pytest.mark.parametrize("method", ["tpe", "bohb-repeats"])
def test_optuna_methods_are_reproducible_by_seed(
    method: str, digits: DigitsBenchmark, tmp_path: Path
) -> None:
    a = run_rows(method, digits, tmp_path / "a", seed=3, queries=25, n_startup_trials=5)
    b = run_rows(method, digits, tmp_path / "b", seed=3, queries=25, n_startup_trials=5)
    c = run_rows(method, digits, tmp_path / "c", seed=4, queries=25, n_startup_trials=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a["arch_hash"].equals(c["arch_hash"])
    assert (a["benchmark"] == "digits").all() and (a["method"] == method).all()


def test_bohb_promotions_pay_for_the_other_repeats(digits: DigitsBenchmark, tmp_path: Path) -> None:
    rows = run_rows("bohb-repeats", digits, tmp_path, seed=0, queries=60, n_startup_trials=5)
    assert set(rows["repeats"]) == {1, 3}
    full = rows.index[rows["repeats"] == 3]
    assert 0 < len(full) < len(rows) / 2  # Hyperband pruned some, promoted some
    clock = np.concatenate([[0.0], rows["simulated_seconds"]])  # clock[i] = before row i
    stored = digits.stored_results(list(rows.loc[full, "arch_hash"]))
    for i in full:
        low = rows.loc[i - 1]
        assert low["repeats"] == 1 and low["arch_hash"] == rows.at[i, "arch_hash"]
        result = stored[rows.at[i, "arch_hash"]]
        # one repeat at the low fidelity, the two others at the promotion: all three paid once
        assert clock[i + 1] - clock[i - 1] == pytest.approx(sum(result.train_time))
        assert clock[i] - clock[i - 1] in [pytest.approx(t) for t in result.train_time]
        assert rows.at[i, "valid_acc"] == pytest.approx(np.mean(result.valid_acc))
        assert low["valid_acc"] in [pytest.approx(v) for v in result.valid_acc]


# ---- resume -------------------------------------------------------------------------------------
def test_interrupted_run_resumes_to_the_rows_of_an_uninterrupted_one(
    digits: DigitsBenchmark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = run_rows("re", digits, tmp_path / "whole", queries=45, population=10)
    req = BlackboxRequest("re", 1, 0, "digits", 45, tmp_path / "cut", {"population": 10})
    original = TabularOracle.observe

    def stop_at_33(self, *args, **kwargs):
        if self.queries == 33:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(TabularOracle, "observe", stop_at_33)
    with pytest.raises(KeyboardInterrupt):
        runs.execute(req, digits, flush_every=10)
    assert len(records.stored_lines(req.run_dir / records.QUERIES_CSV)) == 33
    assert "interrupted" in (req.run_dir / "status.json").read_text()
    monkeypatch.setattr(TabularOracle, "observe", original)
    assert runs.execute(req, digits, flush_every=10).state == "complete"
    assert (req.run_dir / records.QUERIES_CSV).read_text() == (
        tmp_path / "whole" / "digits/space1/blackbox/re/seed0" / records.QUERIES_CSV
    ).read_text()
    assert len(whole) == 45
    assert runs.execute(req, digits).state == "skipped"
    # more queries continue the complete run
    longer = BlackboxRequest("re", 1, 0, "digits", 50, tmp_path / "cut", {"population": 10})
    assert runs.execute(longer, digits).queries == 50


def test_a_stored_run_that_the_seed_does_not_reproduce_is_refused(
    digits: DigitsBenchmark, tmp_path: Path
) -> None:
    run_rows("rs", digits, tmp_path, queries=20)
    csv = tmp_path / "digits/space1/blackbox/rs/seed0" / records.QUERIES_CSV
    lines = csv.read_text().splitlines()
    lines[5] = lines[5].replace("digits,1,rs,0,5,", "digits,1,rs,0,5,1")  # a tampered row
    tampered = "\n".join(lines) + "\n"
    csv.write_text(tampered)
    longer = BlackboxRequest("rs", 1, 0, "digits", 30, tmp_path)
    with pytest.raises(ReplayMismatchError, match="row 5 differs"):
        runs.execute(longer, digits)
    assert csv.read_text() == tampered  # nothing overwritten


# ---- CLI ----------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, digits: DigitsBenchmark) -> Path:
    from bench.runs import parts

    monkeypatch.setattr(parts, "open_table", lambda benchmark, paths: digits)
    return tmp_path / "results"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


BAD = [
    (["--method", "nope"], "unknown black-box method 'nope'"),
    (["--space", "4"], "choose 1, 2 or 3"),
    (["--seeds", "5-0"], "runs backwards"),
    (["--max-queries", "0"], "must be at least 1"),
    (["--space", "2"], "knows no optimum of space 2"),
    (["--method", "tpe", "--set", "population=5"], "no method of --method tpe has it"),
    (["--method", "re", "--set", "population=x"], "expected an int"),
    (["--jobs", "0"], "must be at least 1"),
    (["--method", "hb", "--set", "reduction_factor=1"], "reduction_factor=1: must be >= 2"),
    (["--method", "bohb", "--set", "random_fraction=2"], "random_fraction=2.0: must be in [0, 1]"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_input_exits_2_and_touches_nothing(cli_env: Path, capsys, extra: list[str], message: str) -> None:
    base = [
        "--benchmark",
        "digits",
        "--out",
        str(cli_env),
        "--max-queries",
        "5",
        "--jobs",
        "1",
        "--no-progress",
    ]
    assert cli.main([*base, "--method", "rs"]) == 0
    before = snapshot(cli_env)
    capsys.readouterr()
    assert cli.main([*base, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert snapshot(cli_env) == before


def test_cli_grid_writes_every_run_and_other_settings_are_refused(cli_env: Path, capsys) -> None:
    base = ["--benchmark", "digits", "--out", str(cli_env), "--jobs", "1", "--no-progress", "--seeds", "0-1"]
    assert cli.main([*base, "--method", "rs,re", "--max-queries", "12", "--set", "population=4"]) == 0
    out = capsys.readouterr().out
    assert out.count("| complete | 12 |") == 4
    frame = records.load(cli_env)
    assert sorted(frame.groupby(["method", "seed"]).size().to_dict().items()) == [
        (("re", 0), 12), (("re", 1), 12), (("rs", 0), 12), (("rs", 1), 12)
    ]  # fmt: skip
    assert cli.main([*base, "--method", "re", "--max-queries", "12", "--set", "population=5"]) == 2
    assert "other settings (settings)" in capsys.readouterr().err
    assert cli.main([*base, "--method", "re", "--max-queries", "12", "--set", "population=5", "--force"]) == 0
    assert (cli_env / ".replaced").is_dir()

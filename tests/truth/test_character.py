"""A table's NAS-Bench-101 character (`--report`) and the random-sampling regret baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.truth.base import ArchResult
from bench.truth.character import (
    TARGETS,
    CharacterError,
    character_of_results,
    nb101_reference,
    random_baseline,
    table_character,
)
from bench.truth.digits import DigitsBenchmark, DigitsProtocol, RepeatResult
from tests.helpers import fake_space

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
SAMPLE = Path(__file__).parents[1] / "assets" / "nb101_sample_1k.json"

# Hand-written specs with 0, 1, 1, 2 and 3 conv3x3 vertices.
SPECS = [
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"]),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"]),
    ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C1, C3, "output"]),
    ([[0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, C3, "output"]),
    (
        [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
        ["input", C3, C3, C3, "output"],
    ),
]


def fixture_trainer(matrix, ops, protocol, repeat) -> RepeatResult:
    """STUB trainer, FIXTURE numbers (no training): accuracy and parameters grow with the conv3x3 count,
    the repeats shift every model alike, CPU time is 2 s."""
    n3, n1 = list(ops).count(C3), list(ops).count(C1)
    acc = 0.80 + 0.05 * n3 + 0.01 * n1 - 0.002 * repeat
    return RepeatResult(acc, acc, 1.0, 2.0, 1000 * (1 + n3) + 10 * n1)


def test_nb101_reference_is_computed_from_the_real_sample() -> None:
    ref = nb101_reference(SAMPLE)
    assert ref.n_models == 1000 and ref.repeat_spearman is None
    assert ref.spearman_params == pytest.approx(0.48, abs=0.005)
    assert ref.spearman_conv3x3 == pytest.approx(0.525, abs=0.005)
    assert (100 * ref.p5, 100 * ref.p50, 100 * ref.p95) == pytest.approx((87.2, 91.7, 93.9), abs=0.05)
    # NB-101 itself meets the bounds it can be measured on.
    assert ref.meets("spearman_params") and ref.meets("spread_5_95") and ref.meets("repeat_spearman") is None


def test_character_of_fixture_results() -> None:
    """FIXTURE results: five models, accuracy rising with parameters and conv3x3 count."""
    results = [fixture_trainer(m, o, None, 0) for m, o in SPECS]
    arch = [
        ArchResult(str(i), (r.valid_acc,) * 3, (a, a + 0.001, a - 0.001), (), r.params)
        for i, (r, a) in enumerate(zip(results, [r.test_acc for r in results], strict=True))
    ]
    c = character_of_results(arch, [o for _, o in SPECS], cpu_seconds=[2.0, 4.0])
    assert c.n_models == 5 and c.repeat_spearman == pytest.approx(1.0)
    assert c.repeat_spearman_min == pytest.approx(1.0)
    assert c.spearman_params == pytest.approx(1.0) and c.spearman_conv3x3 > 0.9
    accs = [r.test_acc for r in results]
    assert (c.p5, c.p50, c.p95) == pytest.approx(tuple(np.percentile(accs, [5, 50, 95])))
    assert c.cpu_seconds == 3.0 and c.meets_all() == (c.spread_5_95 <= TARGETS["spread_5_95"][1])
    with pytest.raises(CharacterError, match="at least 3"):
        character_of_results(arch[:2], [o for _, o in SPECS[:2]])


def test_report_of_a_partial_table(tmp_path: Path, monkeypatch, capsys) -> None:
    """`--report` on a table of FIXTURE numbers written here: 5 of a 5-model space stored."""
    import bench.tabulate as cli
    import bench.truth.tabulate as tabulation

    space = fake_space(SPECS)
    monkeypatch.setattr(tabulation, "SearchSpace", space)
    cache = tmp_path / "c.sqlite"
    bench = DigitsBenchmark(cache, DigitsProtocol(), shipped=[], train_fn=fixture_trainer)
    for s in SPECS[:4]:
        bench.query(*s)
    assert table_character(bench, space(1).unique_specs()).n_models == 4
    argv = ["--benchmark", "digits", "--space", "1", "--cache", str(cache), "--no-shipped", "--report"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "4 of 5 models stored" in out
    params_line = next(line for line in out.splitlines() if line.startswith("Spearman(accuracy, parameters)"))
    assert params_line.split()[2:4] == ["1.000", "0.481"]  # this table, then NB-101's
    assert "87.2 / 91.7 / 93.9" in out and "CPU seconds per training" in out and "2.00" in out
    assert not list(tmp_path.glob("*.tfrecord"))  # nothing but the cache was written
    first4 = tabulation.tabulation_order(space(1).unique_specs())[:4]
    stored = sum(h in bench.complete_hashes() for h in first4)  # the unstored model is among them
    assert cli.main([*argv, "--limit", "4"]) == 0  # the first 4 of the tabulation order only
    out = capsys.readouterr().out
    assert stored == 3 and "3 of 5 models stored (among the first 4 of the tabulation order)" in out

    few = DigitsBenchmark(tmp_path / "few.sqlite", DigitsProtocol(), shipped=[], train_fn=fixture_trainer)
    few.query(*SPECS[0])
    rc = cli.main([*argv[:4], "--cache", str(tmp_path / "few.sqlite"), "--report"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs at least 3" in err and "Traceback" not in err


def test_random_baseline_on_fixture_errors() -> None:
    """FIXTURE errors of a 'full table' of 11 models: 0.10, 0.11, ..., 0.20."""
    errors = [0.10 + 0.01 * i for i in range(11)]
    b = random_baseline(errors)
    assert b.n_models == 11 and b.mean == pytest.approx(0.05) and b.median == pytest.approx(0.05)
    assert (b.p10, b.p90) == pytest.approx((0.01, 0.09))
    assert random_baseline(errors, best_test_error=0.05).mean == pytest.approx(0.10)  # NB-101's constant
    # Weighted by raw-architecture counts: the same as the expanded sample.
    counts = [3, 1, 1, 5, 1, 1, 1, 1, 2, 1, 1]
    w = random_baseline(errors, counts=counts)
    expanded = np.repeat(np.array(errors) - 0.10, counts)
    assert w.n_models == 11 and w.n_architectures == 18 and w.mean == pytest.approx(expanded.mean())
    want = np.percentile(expanded, [10, 50, 90], method="inverted_cdf")
    assert (w.p10, w.median, w.p90) == pytest.approx(tuple(want))
    with pytest.raises(CharacterError, match="every model"):
        random_baseline([0.1, float("nan")])


def test_tables_give_their_random_baseline(tmp_path: Path, monkeypatch) -> None:
    """Digits: only once the space is complete; NB-101: against its best-error constant (FIXTURE values)."""
    import bench.search.spaces as spaces
    from bench.truth.fixtures import metrics_from_final, records_for_spec, write_tfrecord
    from bench.truth.nb101 import NB101Table

    monkeypatch.setattr(spaces, "SearchSpace", fake_space(SPECS[:3], best_test_error=0.01))
    bench = DigitsBenchmark(tmp_path / "c.sqlite", DigitsProtocol(), shipped=[], train_fn=fixture_trainer)
    hashes = [bench.query(*s).arch_hash for s in SPECS[:3]]
    assert bench.random_baseline(1) is None  # not marked complete
    bench.mark_complete(1, hashes)
    space = spaces.SearchSpace(1)
    weight = space.architecture_counts()
    errors = {r.arch_hash: r.test_error_mean for r in (bench.query(*s) for s in SPECS[:3])}
    b = bench.random_baseline(1)
    want = np.average([errors[h] for h in weight], weights=list(weight.values())) - min(errors.values())
    assert b is not None and b.n_models == 3 and b.n_architectures == 6 and b.mean == pytest.approx(want)

    path = tmp_path / "x.tfrecord"
    accs = [0.90, 0.80]
    write_tfrecord(path, [r for s, a in zip(SPECS, accs, strict=False) for r in records_for_spec(
        *s, [metrics_from_final(a, a, 1.0, 100)] * 3)])  # fmt: skip
    table = NB101Table.load(path)
    monkeypatch.setattr(spaces, "SearchSpace", fake_space(SPECS[:2], best_test_error=0.05))
    nb = table.random_baseline(1)
    assert nb is not None and nb.mean == pytest.approx((0.10 + 2 * 0.20) / 3 - 0.05)  # weights 1, 2
    monkeypatch.setattr(spaces, "SearchSpace", fake_space(SPECS[:3]))
    assert table.random_baseline(1) is None  # the file lacks a model of the space

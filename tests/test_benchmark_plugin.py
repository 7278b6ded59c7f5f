"""A benchmark is one plug-in module: a third table, defined here and registered by name, runs through a
search (bench.run), a black-box run (bench.blackbox) and a figure (analysis.regret) without any other
module knowing it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench import run
from bench.benchmarks import Benchmark, available, choices, get_benchmark, register_benchmark, resolve
from bench.benchmarks import registry as benchmark_registry
from bench.blackbox import cli as blackbox_cli
from bench.data.splits import SearchData
from bench.errors import HarnessError
from bench.search.graph import hash_spec
from bench.truth.base import ArchResult, GroundTruth, UnknownBudgetError

TOY_NOTE = "TEST FIXTURE toy table: accuracy is a function of the cell's hash, not a measurement"


class ToyTable(GroundTruth):
    """TEST FIXTURE: accuracy a deterministic function of the NB-101 hash, two budgets, two repeats."""

    name = "toy"
    budgets = (4, 12)

    def query(self, matrix: np.ndarray, ops: Sequence[str], budget: int | None = None) -> ArchResult:
        self.check_budget(budget)
        h = hash_spec(matrix, ops)
        acc = 0.5 + 0.4 * int(h[:6], 16) / 16**6 + (0.05 if budget == 12 else 0.0)
        return ArchResult(h, (acc, acc + 0.01), (acc - 0.01, acc), (2.0, 3.0), 100)

    def best_test_error(self, space: int) -> float | None:
        return 0.0  # a bound: the toy's optimum is not enumerated


class Toy(Benchmark):
    title = "toy test table — not a benchmark"
    caveat = "test fixture"
    budgets = ToyTable.budgets
    repeats = 2

    def open_table(self, paths: Any) -> GroundTruth:
        return ToyTable()

    def search_data(self, cfg: Any, paths: Any) -> SearchData:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 1, 8, 8, generator=g)
        y = torch.randint(0, 10, (64,), generator=g)
        return SearchData("toy", x[:32], y[:32], x[32:], y[32:], num_classes=10, in_channels=1)

    def adjustments(self, cfg: Any) -> dict[str, tuple[Any, str]]:
        return {"augment": (False, "toy images are noise")} if cfg.augment else {}

    def run_note(self, best_test_error: float | None) -> str:
        return TOY_NOTE

    def blackbox_note(self) -> str:
        return TOY_NOTE


@pytest.fixture
def toy() -> Iterator[str]:
    register_benchmark("toy")(Toy)
    try:
        yield "toy"
    finally:
        benchmark_registry._REGISTRY.pop("toy", None)


def test_registry_names_the_shipped_benchmarks() -> None:
    assert {"nb101", "digits"} <= set(available())
    assert choices()[0] == "auto"
    assert get_benchmark("nb101").budgets == (108,) and get_benchmark("nb101").repeats == 3
    with pytest.raises(HarnessError, match="unknown benchmark 'nope'; choose one of: "):
        resolve("nope")


def test_auto_never_picks_a_benchmark_without_priority(toy: str, tmp_path: Path) -> None:
    name, _ = resolve("auto", tmp_path / "empty")  # nothing installed there
    assert name == "digits"
    assert resolve(toy)[0] == toy and toy in run.build_parser().format_help()


def test_a_table_holds_the_budgets_it_names() -> None:
    table = ToyTable()
    matrix = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    ops = ["input", "conv3x3-bn-relu", "output"]
    assert table.query(matrix, ops, 12).valid_acc[0] > table.query(matrix, ops).valid_acc[0]
    with pytest.raises(UnknownBudgetError, match="budget 7: the 'toy' table holds 4, 12"):
        table.query(matrix, ops, 7)


def test_a_registered_table_runs_search_blackbox_and_figure(toy: str, tmp_path: Path) -> None:
    from analysis import regret
    from bench import results

    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--space", "1", "--seeds", "0", "--epochs", "2", "--benchmark", toy,
            "--out", str(out), "--no-progress", "--jobs", "1", "--set", "batch_size=16",
            "--set", "init_channels=2", "--set", "cells_per_stack=1", "--set", "hessian=false"]  # fmt: skip
    assert run.main(argv) == 0
    [run_dir] = results.find_runs(out)
    assert run_dir.relative_to(out).parts[0] == toy
    record = json.loads((run_dir / results.CONFIG_JSON).read_text())
    assert record["benchmark_note"] == TOY_NOTE
    assert record["config"]["benchmark_overrides"]["augment"].endswith("toy images are noise")
    rows = results.read_epochs(run_dir / results.EPOCHS_CSV)
    assert len(rows) == 2 and float(rows[-1]["test_regret"]) > 0
    # the toy trains each architecture twice: two per-repeat columns each, no NaN third one
    assert [c for c in rows[-1] if c.startswith(("valid_acc_r", "test_acc_r"))] == list(
        results.repeat_columns(2)
    )

    bb = ["--method", "rs", "--space", "1", "--seeds", "0", "--max-queries", "5", "--benchmark", toy,
          "--out", str(out), "--jobs", "1", "--no-progress"]  # fmt: skip
    assert blackbox_cli.main(bb) == 0
    queries = out / toy / "space1" / "blackbox" / "rs" / "seed0" / "queries.csv"
    assert queries.exists()

    figures = tmp_path / "figures"
    assert regret.main([str(out), "-o", str(figures)]) == 0
    assert any(figures.iterdir())

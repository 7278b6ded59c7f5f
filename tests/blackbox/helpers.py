"""Helpers of the black-box tests: a TEST FIXTURE table and the shipped digits table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.search.graph import hash_spec, prune
from bench.search.spaces import SearchSpace
from bench.truth.base import ArchResult, GroundTruth
from bench.truth.digits import DigitsBenchmark


class SmoothTable(GroundTruth):
    """TEST FIXTURE, not a benchmark: accuracy grows with the number of conv3x3 vertices and edges of the
    pruned cell, so the optimum is known and a hill climber can reach it. Repeats differ by 0.001."""

    name = "fixture"

    def __init__(self, space: int = 1) -> None:
        self._best = min(self._test_error(m, o) for m, o in SearchSpace(space).unique_specs().values())

    @staticmethod
    def _score(matrix: np.ndarray, ops: Sequence[str]) -> float:
        m, o = prune(matrix, ops)
        return 0.5 + 0.1 * sum(op == "conv3x3-bn-relu" for op in o) + 0.01 * int(np.sum(m))

    def _test_error(self, matrix: np.ndarray, ops: Sequence[str]) -> float:
        return 1.0 - self._score(matrix, ops)

    def query(self, matrix: np.ndarray, ops: Sequence[str]) -> ArchResult:
        s = self._score(matrix, ops)
        return ArchResult(hash_spec(matrix, ops), (s, s - 0.001, s + 0.001), (s,) * 3, (10.0, 20.0, 30.0))

    def best_test_error(self, space: int) -> float:
        return self._best


def shipped_digits(cache_path: Path) -> DigitsBenchmark:
    """The embedded benchmark under the protocol searches use, whose space-1 table ships complete (so
    nothing trains); a private cache keeps tests off the user's."""
    from bench.truth.digits_protocol import RUN_PROTOCOL

    return DigitsBenchmark(cache_path=cache_path, protocol=RUN_PROTOCOL)


class LadderTable(SmoothTable):
    """TEST FIXTURE, not a benchmark: SmoothTable at four epoch budgets, standard first as NB-101's
    (108, 4, 12, 36). A shorter budget loses accuracy in proportion and a hash-driven wobble of up to
    0.03 reorders close cells, so accuracies are correlated across budgets but not identical in rank.
    Repeat r trains budget * (1, 1.5, 2)[r] seconds, so a row's cost names its budget and its repeat."""

    name = "ladder"
    budgets = (108, 4, 12, 36)
    SECONDS_PER_EPOCH = (1.0, 1.5, 2.0)

    def query(self, matrix: np.ndarray, ops: Sequence[str], budget: int | None = None) -> ArchResult:
        self.check_budget(budget)
        b = 108 if budget is None else budget
        full = super().query(matrix, ops)
        shift = 0.0 if b == 108 else 0.1 * (1 - b / 108) + 0.03 * int(full.arch_hash[:4], 16) / 16**4
        valid = tuple(v - shift for v in full.valid_acc)
        test = tuple(t - shift for t in full.test_acc)
        return ArchResult(full.arch_hash, valid, test, tuple(b * k for k in self.SECONDS_PER_EPOCH))

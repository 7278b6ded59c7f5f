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

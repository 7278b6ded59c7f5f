"""Shared fixtures: a labelled fixture ground truth and tiny search data, so trainer tests stay fast."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from bench.data.splits import SearchData
from bench.search.graph import hash_spec
from bench.truth.base import ArchResult

# Tiny tensors: one intra-op thread avoids OpenMP spin-wait overhead that dominates on 2 busy cores.
torch.set_num_threads(1)


class FixtureTable:
    """TEST FIXTURE, not a benchmark: accuracies are a deterministic function of the NB-101 hash."""

    name = "fixture"

    def __init__(self, best_test_error: float | None = 0.0) -> None:
        self._best = best_test_error
        self.queries = 0

    def query(self, matrix: np.ndarray, ops: Sequence[str]) -> ArchResult:
        self.queries += 1
        h = hash_spec(matrix, ops)
        base = int(h[:6], 16) / 16**6
        return ArchResult(
            h, (base, base + 0.001, base + 0.002), (base, base - 0.001, base + 0.001), (1.0, 1.0, 1.0), 7
        )

    def best_test_error(self, space: int) -> float | None:
        return self._best


@pytest.fixture
def fixture_table() -> FixtureTable:
    return FixtureTable()


def make_toy_data() -> SearchData:
    """TEST FIXTURE: random 8x8 single-channel images, enough to exercise every code path in seconds."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    return SearchData("toy-fixture", x[:64], y[:64], x[64:], y[64:], num_classes=10, in_channels=1)


@pytest.fixture(scope="session")
def toy_data() -> SearchData:
    return make_toy_data()

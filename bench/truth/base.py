"""The one small interface every ground-truth table shares.

The trainer only ever calls `table.query(matrix, ops)` and reads an `ArchResult`, so it does not care
whether the answer comes from NAS-Bench-101 or from the embedded digits benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ArchResult:
    """Ground truth of one architecture: every training repeat, never one picked at random."""

    arch_hash: str
    valid_acc: tuple[float, ...]  # one per repeat, fractions in [0, 1]
    test_acc: tuple[float, ...]
    train_time: tuple[float, ...] = ()  # seconds, one per repeat (NaN where unknown)
    params: int | None = None

    @property
    def valid_acc_mean(self) -> float:
        return float(np.mean(self.valid_acc))

    @property
    def test_acc_mean(self) -> float:
        return float(np.mean(self.test_acc))

    @property
    def valid_error_mean(self) -> float:
        return 1.0 - self.valid_acc_mean

    @property
    def test_error_mean(self) -> float:
        return 1.0 - self.test_acc_mean


@runtime_checkable
class GroundTruth(Protocol):
    """A tabular (or lazily tabulated) benchmark of NAS-Bench-101 cells.

    The real tables also offer `random_baseline(space) -> bench.truth.character.RandomBaseline | None`
    (the regret of a uniformly random model of a fully known space); optional, so stand-in tables need
    not implement it: callers use getattr.
    """

    name: str

    def query(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> ArchResult:
        """All repeats of one cell spec (raw: pruned and hashed by the table)."""
        ...

    def best_test_error(self, space: int) -> float | None:
        """Lowest mean test error in search space `space`, or None when not (yet) known."""
        ...

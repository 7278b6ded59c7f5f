"""The one small interface every ground-truth table shares.

The trainer only ever calls the methods of `GroundTruth` and reads an `ArchResult`, so it does not care
whether the answer comes from NAS-Bench-101 or from the embedded digits benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import HarnessError

if TYPE_CHECKING:
    from bench.truth.character import RandomBaseline


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


class UnknownBudgetError(HarnessError, ValueError):
    """A training budget the table does not hold."""


class GroundTruth:
    """A tabular (or lazily tabulated) benchmark of NAS-Bench-101 cells.

    Subclasses implement `query`; the other questions have answers "not known" by default, so a small
    stand-in table need only answer queries. `budgets` lists the training budgets (epochs) the table
    holds, the first being the one a query without `budget` gets: NAS-Bench-101's 108 epochs.
    """

    name: str = ""
    budgets: tuple[int, ...] = ()  # () : one budget, never named

    def query(
        self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str], budget: int | None = None
    ) -> ArchResult:
        """All repeats of one cell spec (raw: pruned and hashed by the table) at `budget` epochs
        (None: the table's standard budget)."""
        raise NotImplementedError

    def check_budget(self, budget: int | None) -> None:
        """Raise UnknownBudgetError unless the table holds `budget` (None: its standard budget)."""
        if budget is not None and budget not in self.budgets:
            held = ", ".join(map(str, self.budgets)) or "only its one budget (pass none)"
            raise UnknownBudgetError(f"budget {budget}: the {self.name!r} table holds {held}")

    def best_test_error(self, space: int) -> float | None:
        """Lowest mean test error in search space `space`, or None when not (yet) known."""
        return None

    def tabulated(self, space: int, budget: int | None = None) -> bool:
        """Whether every model of `space` is held at `budget` (None: the standard budget), so a query
        never has to train one. A published table holds everything; a lazily trained one says."""
        self.check_budget(budget)
        return True

    def best_valid_error(self, space: int) -> float | None:
        """Lowest mean validation error in `space` (the HPO objective's reference), or None."""
        return None

    def random_baseline(self, space: int) -> RandomBaseline | None:
        """The regret of a uniformly random model of a fully known space, or None."""
        return None

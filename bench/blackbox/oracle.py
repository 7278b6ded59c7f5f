"""A tabular benchmark seen through a black-box optimizer's eyes, on a simulated clock.

A query is answered the way the NAS-Bench-101 API answers it: the accuracies of ONE training repeat,
chosen at random (seeded), and the clock advances by that repeat's training time as the table records
it (NB-101: TPU seconds at 108 epochs; digits: the CPU seconds its protocol took). Nothing is
trained: the table answers from what it holds.

The oracle also keeps the history's incumbent, the architecture with the best validation accuracy
observed, and every row records the incumbent's test regret: the mean test error of ALL its repeats
minus the space's best test error (the selection uses validation data only; the test error is never
shown to the method).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.errors import HarnessError
from bench.search.spaces import Architecture, SearchSpace
from bench.truth.base import ArchResult, GroundTruth


class OracleError(HarnessError):
    """The table cannot serve a black-box run (e.g. it records no training times)."""


@dataclass(frozen=True)
class Evaluation:
    """What one query returned: accuracies over `repeats` and the simulated seconds it cost."""

    arch: Architecture
    result: ArchResult
    repeats: tuple[int, ...]
    valid_acc: float
    test_acc: float
    seconds: float

    @property
    def budget(self) -> int:
        return len(self.repeats)


class TabularOracle:
    """Answers queries from `table` over search space `space` until `max_queries` are spent."""

    def __init__(
        self,
        table: GroundTruth,
        space: SearchSpace,
        rng: np.random.Generator,
        max_queries: int,
        best_test_error: float,
        identity: dict[str, Any] | None = None,
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.table = table
        self.space = space
        self.rng = rng  # picks the repeat of each query; the methods have their own streams
        self.max_queries = max_queries
        self.best_test_error = best_test_error
        self.identity = dict(identity or {})
        self.on_row = on_row
        self.rows: list[dict[str, Any]] = []
        self.clock = 0.0
        self._cache: dict[Architecture, ArchResult] = {}
        self._incumbent: Evaluation | None = None

    @property
    def queries(self) -> int:
        return len(self.rows)

    @property
    def exhausted(self) -> bool:
        return self.queries >= self.max_queries

    def lookup(self, arch: Architecture) -> ArchResult:
        """Every repeat of `arch` (cached: a table lookup hashes the cell)."""
        result = self._cache.get(arch)
        if result is None:
            result = self.table.query(*self.space.spec(arch))
            self._cache[arch] = result
        return result

    def n_repeats(self, arch: Architecture) -> int:
        return len(self.lookup(arch).valid_acc)

    def query(self, arch: Architecture) -> Evaluation:
        """One randomly chosen repeat, as the NB-101 API answers a query."""
        result = self.lookup(arch)
        repeat = int(self.rng.integers(len(result.valid_acc)))
        return self.observe(arch, (repeat,))

    def observe(self, arch: Architecture, repeats: Sequence[int], paid: Sequence[int] = ()) -> Evaluation:
        """The mean accuracies over `repeats`; the clock advances by the training time of every repeat
        among them not already `paid` for (a multi-fidelity method continuing an evaluation)."""
        if self.exhausted:
            raise RuntimeError(f"query {self.queries + 1} beyond the budget of {self.max_queries}")
        result = self.lookup(arch)
        repeats = tuple(repeats)
        cost = 0.0
        for r in repeats:
            if r in paid:
                continue
            t = result.train_time[r] if r < len(result.train_time) else math.nan
            if not math.isfinite(t):
                raise OracleError(
                    f"the {self.table.name} table records no training time for repeat {r} of "
                    f"{result.arch_hash}; the simulated clock needs one for every repeat"
                )
            cost += t
        ev = Evaluation(
            arch=arch,
            result=result,
            repeats=repeats,
            valid_acc=float(np.mean([result.valid_acc[r] for r in repeats])),
            test_acc=float(np.mean([result.test_acc[r] for r in repeats])),
            seconds=cost,
        )
        self.clock += cost
        if self._incumbent is None or ev.valid_acc > self._incumbent.valid_acc:
            self._incumbent = ev  # ties keep the earlier one
        inc = self._incumbent
        row = {
            **self.identity,
            "query": self.queries + 1,
            "simulated_seconds": self.clock,
            "arch_hash": result.arch_hash,
            "budget": ev.budget,
            "valid_acc": ev.valid_acc,
            "test_acc": ev.test_acc,
            "incumbent_hash": inc.result.arch_hash,
            "incumbent_valid_acc": inc.valid_acc,
            "incumbent_test_error": inc.result.test_error_mean,
            "test_regret": inc.result.test_error_mean - self.best_test_error,
        }
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)
        return ev

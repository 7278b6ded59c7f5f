"""A tabular benchmark seen through a black-box optimizer's eyes, on a simulated clock.

A query is answered the way the NAS-Bench-101 API answers it: the accuracies of ONE training repeat,
chosen at random (seeded), at one of the table's training budgets (epochs; default: the table's
standard budget, its first), and the clock advances by that repeat's training time at that budget as
the table records it (NB-101: TPU seconds; digits: the CPU seconds its protocol took). Every budget is
a training of its own (NB-101's 4, 12, 36 and 108 epochs each have their own schedule), so a query at a
higher budget pays its full time, never the difference. Nothing is trained: the table answers from
what it holds.

The oracle also keeps the history's incumbent, the architecture with the best validation accuracy
observed AT THE STANDARD BUDGET (accuracies after shorter trainings are not comparable with it), and
every row records the incumbent's test regret: the mean test error of ALL its repeats at the standard
budget minus the space's best test error (the selection uses validation data only; the test error is
never shown to the method). Until a standard-budget evaluation exists (Hyperband's first brackets) there
is no incumbent: its columns and the regret are empty.
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
    """What one query returned: accuracies over `repeats` at `budget` epochs (None: a table that names
    no budget) and the simulated seconds it cost."""

    arch: Architecture
    result: ArchResult
    repeats: tuple[int, ...]
    valid_acc: float
    test_acc: float
    seconds: float
    budget: int | None = None


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
        self._cache: dict[tuple[Architecture, int | None], ArchResult] = {}
        self._incumbent: Evaluation | None = None

    @property
    def standard_budget(self) -> int | None:
        """The budget a query without one gets (the table's first; None: a table that names none)."""
        return self.table.budgets[0] if self.table.budgets else None

    @property
    def budget_ladder(self) -> tuple[int, ...]:
        """The table's budgets, ascending (a multi-fidelity method's rungs)."""
        return tuple(sorted(self.table.budgets))

    @property
    def queries(self) -> int:
        return len(self.rows)

    @property
    def exhausted(self) -> bool:
        return self.queries >= self.max_queries

    def is_standard(self, budget: int | None) -> bool:
        return budget is None or budget == self.standard_budget

    def lookup(self, arch: Architecture, budget: int | None = None) -> ArchResult:
        """Every repeat of `arch` at `budget` (cached: a table lookup hashes the cell)."""
        if self.is_standard(budget):
            budget = None  # one cache entry, and stand-in tables that take no budget keep working
        result = self._cache.get((arch, budget))
        if result is None:
            spec = self.space.spec(arch)
            result = self.table.query(*spec) if budget is None else self.table.query(*spec, budget=budget)
            self._cache[(arch, budget)] = result
        return result

    def n_repeats(self, arch: Architecture) -> int:
        return len(self.lookup(arch).valid_acc)

    def query(self, arch: Architecture, budget: int | None = None) -> Evaluation:
        """One randomly chosen repeat at `budget`, as the NB-101 API answers a query."""
        result = self.lookup(arch, budget)
        repeat = int(self.rng.integers(len(result.valid_acc)))
        return self.observe(arch, (repeat,), budget=budget)

    def observe(
        self, arch: Architecture, repeats: Sequence[int], paid: Sequence[int] = (), budget: int | None = None
    ) -> Evaluation:
        """The mean accuracies over `repeats` at `budget`; the clock advances by the training time of
        every repeat among them not already `paid` for (a method continuing an evaluation over repeats)."""
        if self.exhausted:
            raise RuntimeError(f"query {self.queries + 1} beyond the budget of {self.max_queries}")
        if self.is_standard(budget):
            budget = None
        result = self.lookup(arch, budget)
        repeats = tuple(repeats)
        cost = 0.0
        for r in repeats:
            if r in paid:
                continue
            t = result.train_time[r] if r < len(result.train_time) else math.nan
            if not math.isfinite(t):
                at = "" if budget is None else f" at budget {budget}"
                raise OracleError(
                    f"the {self.table.name} table records no training time for repeat {r} of "
                    f"{result.arch_hash}{at}; the simulated clock needs one for every repeat"
                )
            cost += t
        ev = Evaluation(
            arch=arch,
            result=result,
            repeats=repeats,
            valid_acc=float(np.mean([result.valid_acc[r] for r in repeats])),
            test_acc=float(np.mean([result.test_acc[r] for r in repeats])),
            seconds=cost,
            budget=self.standard_budget if budget is None else budget,
        )
        self.clock += cost
        if budget is None and (self._incumbent is None or ev.valid_acc > self._incumbent.valid_acc):
            self._incumbent = ev  # ties keep the earlier one
        self._record(ev)
        return ev

    def _record(self, ev: Evaluation) -> None:
        inc = self._incumbent
        row = {
            **self.identity,
            "query": self.queries + 1,
            "simulated_seconds": self.clock,
            "arch_hash": ev.result.arch_hash,
            "budget": ev.budget,
            "repeats": len(ev.repeats),
            "valid_acc": ev.valid_acc,
            "test_acc": ev.test_acc,
            "incumbent_hash": None if inc is None else inc.result.arch_hash,
            "incumbent_valid_acc": math.nan if inc is None else inc.valid_acc,
            "incumbent_test_error": math.nan if inc is None else inc.result.test_error_mean,
            "test_regret": math.nan if inc is None else inc.result.test_error_mean - self.best_test_error,
        }
        self.rows.append(row)
        if self.on_row is not None:
            self.on_row(row)

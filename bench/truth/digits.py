"""The embedded ground truth: NAS-Bench-101 cells trained on scikit-learn's 8x8 digits, cached in SQLite.

Runs anywhere with no download. A queried cell is trained under one fixed, small protocol
(`DigitsProtocol`, bench.truth.digits_protocol) three times with seeds that depend only on the repeat,
and every repeat is stored in an SQLite cache shared by all processes on the machine
(bench.truth.digits_store), so each (protocol, architecture, repeat) trains once ever. Tables shipped
with the package (bench/truth/shipped) are consulted first; they answer only for the protocol they were
tabulated under (every row carries its protocol's key).

Isomorphic specs share a hash, so the network that is trained is built from a canonical vertex order of
the pruned spec: the stored numbers never depend on which of the equivalent specs was queried first.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.data.digits import load_digits_splits, split_indices
from bench.search.graph import hash_pruned, hash_spec
from bench.truth.base import ArchResult, GroundTruth
from bench.truth.character import RandomBaseline, random_baseline
from bench.truth.digits_protocol import (
    BUDGETS,
    FULL_BUDGET,
    PROTOCOL_1X1,
    DigitsError,
    DigitsProtocol,
    ProtocolError,
    RepeatResult,
    TrainFn,
    at_budget,
    canonical_spec,
    train_repeat,
)
from bench.truth.digits_store import (
    SHIPPED_DIR,
    DigitsCacheError,
    DigitsStore,
    default_cache_path,
    shipped_tables,
)

log = logging.getLogger(__name__)

__all__ = [
    "PROTOCOL_1X1",
    "SHIPPED_DIR",
    "DigitsBenchmark",
    "DigitsCacheError",
    "DigitsError",
    "DigitsProtocol",
    "IncompleteSpaceError",
    "ProtocolError",
    "RepeatResult",
    "canonical_spec",
    "default_cache_path",
    "load_digits_splits",
    "shipped_tables",
    "split_indices",
    "train_repeat",
]


class IncompleteSpaceError(DigitsError):
    """A space was to be marked complete while some of its models still lack repeats."""


def _seconds(value: float | None) -> float:
    return float(value) if value is not None else float("nan")


class DigitsBenchmark(GroundTruth):
    """Lazily tabulated NAS-Bench-101 on 8x8 digits (implements `bench.truth.base.GroundTruth`)."""

    name = "digits"

    def __init__(
        self,
        cache_path: str | os.PathLike | None = None,
        protocol: DigitsProtocol | None = None,
        *,
        shipped: Sequence[str | os.PathLike] | None = None,
        train_fn: TrainFn | None = None,
        stale_after_s: float = 1800.0,
        poll_interval_s: float = 0.2,
        busy_timeout_s: float = 600.0,
    ) -> None:
        protocol = protocol if protocol is not None else DigitsProtocol()
        self.protocol = protocol
        self.key = protocol.key()
        self.cache_path = Path(cache_path) if cache_path is not None else default_cache_path()
        self.shipped = [Path(p) for p in shipped] if shipped is not None else shipped_tables()
        self._train_fn = train_fn
        self.poll_interval_s = poll_interval_s
        self._store_args = {"stale_after_s": stale_after_s, "busy_timeout_s": busy_timeout_s}
        self._at: dict[int, DigitsBenchmark] = {}  # the shorter budgets' tables, opened when queried
        self.store = DigitsStore(
            self.cache_path,
            self.key,
            protocol.to_json(),
            self.shipped,
            stale_after_s=stale_after_s,
            busy_timeout_s=busy_timeout_s,
        )

    def __repr__(self) -> str:
        return f"DigitsBenchmark(cache_path={str(self.cache_path)!r}, protocol_key={self.key!r})"

    # -- reading ---------------------------------------------------------------------------------------
    def _result(self, arch_hash: str, rows: dict[int, tuple]) -> ArchResult:
        ordered = [rows[r] for r in range(self.protocol.repeats)]
        return ArchResult(
            arch_hash=arch_hash,
            valid_acc=tuple(float(r[1]) for r in ordered),
            test_acc=tuple(float(r[2]) for r in ordered),
            # CPU seconds of the (single-threaded) training: its cost, free of the wall-clock stalls of a
            # shared machine (1.5 % of the shipped table's repeats waited > 3x their CPU time).
            train_time=tuple(_seconds(r[4] if r[4] is not None else r[3]) for r in ordered),
            params=int(ordered[0][5]) if ordered[0][5] is not None else None,
        )

    def lookup(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> ArchResult | None:
        """The stored result of a spec, or None when some repeat is missing; never trains."""
        arch_hash = hash_spec(matrix, ops)
        rows = self.store.shipped_rows(arch_hash)
        if len(rows) < self.protocol.repeats:
            with self.store.connection() as conn:
                for r, row in self.store.cached_rows(conn, arch_hash).items():
                    rows.setdefault(r, row)
        if all(r in rows for r in range(self.protocol.repeats)):
            return self._result(arch_hash, rows)
        return None

    def all_rows(self) -> dict[str, dict[int, tuple]]:
        """Every stored repeat of this protocol: hash -> repeat -> row (shipped tables win); a row is
        (repeat, valid_acc, test_acc, train_seconds, cpu_seconds, params)."""
        return self.store.all_rows(self.protocol.repeats)

    def complete_hashes(self) -> set[str]:
        """Hashes with every repeat stored (shipped tables and cache), for resumable tabulation."""
        return {h for h, reps in self.all_rows().items() if len(reps) == self.protocol.repeats}

    def stored_results(self, hashes: Sequence[str] | None = None) -> dict[str, ArchResult]:
        """The complete results among `hashes` (default: all), without training anything."""
        rows = self.all_rows()
        wanted = rows.keys() if hashes is None else [h for h in hashes if h in rows]
        return {h: self._result(h, rows[h]) for h in wanted if len(rows[h]) == self.protocol.repeats}

    # -- the GroundTruth interface ---------------------------------------------------------------------
    @property
    def budgets(self) -> tuple[int, ...]:  # type: ignore[override]
        """NB-101-equivalent epochs: the full protocol (108) first, then the shorter trainings."""
        if self.protocol.steps is not None:
            return ()  # a protocol already cut to one budget holds only itself
        return BUDGETS

    def at(self, budget: int) -> DigitsBenchmark:
        """The table of one budget: this protocol trained for budget/108 of its steps, in the same cache
        (its own protocol key, so budgets never mix)."""
        self.check_budget(budget)
        if budget == FULL_BUDGET:
            return self
        table = self._at.get(budget)
        if table is None:
            table = DigitsBenchmark(
                self.cache_path,
                at_budget(self.protocol, budget),
                shipped=self.shipped,
                train_fn=self._train_fn,
                poll_interval_s=self.poll_interval_s,
                **self._store_args,
            )
            self._at[budget] = table
        return table

    def query(
        self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str], budget: int | None = None
    ) -> ArchResult:
        """All repeats of a spec at `budget` (None: the full protocol); trains (once ever, across
        processes) whatever repeat is missing."""
        if budget is not None and budget != FULL_BUDGET:
            return self.at(budget).query(matrix, ops)
        self.check_budget(budget)
        cm, cops = canonical_spec(matrix, ops)
        arch_hash = hash_pruned(cm, cops)
        store = self.store
        rows = store.shipped_rows(arch_hash)
        repeats = range(self.protocol.repeats)
        if all(r in rows for r in repeats):
            return self._result(arch_hash, rows)
        with store.connection() as conn:
            while True:
                for r, row in store.cached_rows(conn, arch_hash).items():
                    rows.setdefault(r, row)
                missing = [r for r in repeats if r not in rows]
                if not missing:
                    return self._result(arch_hash, rows)
                trained = False
                for r in missing:
                    if store.claim(conn, arch_hash, r):
                        rows[r] = self._train_and_store(conn, arch_hash, cm, cops, r)
                        trained = True
                        break  # re-read: others may have finished repeats meanwhile
                if not trained:
                    store.reclaim_stale(conn, arch_hash, missing)
                    time.sleep(self.poll_interval_s)

    def _train_and_store(
        self, conn: sqlite3.Connection, arch_hash: str, matrix: np.ndarray, ops: list[str], repeat: int
    ) -> tuple:
        # The module-level name, looked up at call time: tests replace it.
        train = self._train_fn if self._train_fn is not None else train_repeat
        try:
            log.debug("training digits %s repeat %d", arch_hash, repeat)
            res = train(matrix, ops, self.protocol, repeat)
        except BaseException:
            self.store.release(conn, arch_hash, repeat)
            raise
        row = (repeat, res.valid_acc, res.test_acc, res.train_seconds, res.cpu_seconds, res.params)
        return self.store.store_result(conn, arch_hash, matrix, ops, row)

    def best_test_error(self, space: int) -> float | None:
        """Lowest mean test error over all unique models of `space`, once the space is fully tabulated."""
        row = self.store.space_row(space)
        return None if row is None else float(row[2])

    def tabulated(self, space: int, budget: int | None = None) -> bool:
        """Whether `space` is marked complete at `budget` (shipped or tabulated here)."""
        table = self if budget is None else self.at(budget)
        return table.best_test_error(space) is not None

    def best_valid_error(self, space: int) -> float | None:
        row = self.store.space_row(space)
        return None if row is None or row[3] is None else float(row[3])

    def random_baseline(self, space: int) -> RandomBaseline | None:
        """Test regret of a uniformly random architecture of `space` (None until it is fully tabulated)."""
        best = self.best_test_error(space)
        if best is None:
            return None
        from bench.search.spaces import SearchSpace  # lazy: spaces imports torch

        counts = SearchSpace(space).architecture_counts()
        hashes = sorted(counts)
        results = self.stored_results(hashes)
        if len(results) < len(hashes):
            return None
        errors = [results[h].test_error_mean for h in hashes]
        return random_baseline(errors, best, [counts[h] for h in hashes])

    def mark_complete(self, space: int, hashes: Sequence[str]) -> tuple[str, float]:
        """Record that every model of `space` is tabulated; returns (best hash, best mean test error)."""
        results = self.stored_results(hashes)
        missing = len(set(hashes)) - len(results)
        if missing or not results:
            raise IncompleteSpaceError(
                f"{missing} of {len(set(hashes))} models of space {space} lack repeats; "
                f"run `python -m bench.tabulate --benchmark digits --space {space}` first"
            )
        # Ties on the mean test error go to the better validation error, then to the hash: deterministic.
        err, verr, best = min((r.test_error_mean, r.valid_error_mean, h) for h, r in results.items())
        self.store.mark_space(space, len(results), best, err, verr)
        return best, err

    # -- export ----------------------------------------------------------------------------------------
    def export(self, path: str | os.PathLike, space: int, hashes: Sequence[str]) -> Path:
        """Write a compact, read-only-friendly copy of one complete space (to ship in bench/truth/shipped)."""
        if self.store.space_row(space) is None:
            raise IncompleteSpaceError(
                f"space {space} is not marked complete in {self.cache_path}; tabulate it before exporting"
            )
        return self.store.export(Path(path), space, hashes)

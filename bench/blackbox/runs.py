"""One black-box run (method x space x seed): settings, results directory, run and resume.

A run is a deterministic function of its seed and settings, and querying a table costs next to
nothing, so resuming is replaying: the method runs again from the start, every row it produces is
checked against the stored queries.csv (a difference means the stored run came from other code or
another table, and nothing is overwritten), and once past the stored rows the CSV is rewritten
atomically every `flush_every` queries. A run killed at any moment therefore keeps its rows, and a
rerun ends with exactly the rows of an uninterrupted run. Asking for more queries than a finished run
holds continues it.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import results
from bench.blackbox import records
from bench.blackbox.encoding import Encoding
from bench.blackbox.methods import METHODS, Method
from bench.blackbox.oracle import TabularOracle
from bench.errors import ConfigError, HarnessError, UsageError
from bench.search.spaces import SearchSpace
from bench.settings import field_types, parse_value
from bench.truth.base import GroundTruth

log = logging.getLogger(__name__)

FLUSH_EVERY = 50


class UnknownMethodError(HarnessError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class UntabulatedSpaceError(HarnessError):
    """The table knows no optimum for the space, so no regret can be computed."""


class ReplayMismatchError(HarnessError):
    """A stored run is not what its seed and settings produce now."""


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UnknownMethodError(f"unknown black-box method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


def setting_names(method: str) -> list[str]:
    return [f.name for f in dataclasses.fields(get_method(method).Settings)]


def build_settings(method: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The method's settings dataclass with `overrides` (strings as from --set, or values) applied."""
    cls = get_method(method).Settings
    types = field_types(cls)
    values = {}
    for key, value in (overrides or {}).items():
        if key not in types:
            known = ", ".join(types) or "none"
            raise ConfigError(
                f"--set {key}: unknown setting for black-box method {method} (its settings: {known})"
            )
        values[key] = parse_value(key, value, types[key]) if isinstance(value, str) else value
    return cls(**values)


@dataclass
class BlackboxRequest:
    """One run: what it is, how long it runs, where it writes (picklable for worker processes)."""

    method: str
    space: int
    seed: int
    benchmark: str
    max_queries: int
    out_root: Path
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of the method's defaults

    def __post_init__(self) -> None:
        SearchSpace(self.space)  # UnknownSpaceError names the valid ones
        build_settings(self.method, self.settings)  # unknown method / setting -> HarnessError
        if self.max_queries < 1:
            raise UsageError(f"--max-queries {self.max_queries}: must be at least 1")

    @property
    def run_dir(self) -> Path:
        return records.run_dir(self.out_root, self.benchmark, self.space, self.method, self.seed)

    def config(self) -> dict[str, Any]:
        """What identifies the run in config.json (all settings, defaults included)."""
        return {
            "method": self.method,
            "space": self.space,
            "seed": self.seed,
            "benchmark": self.benchmark,
            "max_queries": self.max_queries,
            "settings": dataclasses.asdict(build_settings(self.method, self.settings)),
        }


@dataclass
class BlackboxOutcome:
    run_dir: Path
    state: str  # complete | skipped | failed
    queries: int
    last_row: dict[str, Any] | None
    reason: str = ""


# ---- checks ---------------------------------------------------------------------------------------
def best_test_error(table: GroundTruth, space: int) -> float:
    """The space's optimum, which regret needs; an error with the fix when the table has none."""
    best = table.best_test_error(space)
    if best is None:
        raise UntabulatedSpaceError(
            f"the {table.name} table knows no optimum of space {space} (not fully tabulated), so no regret "
            f"can be computed and every query of an untabulated cell would train it; tabulate it first: "
            f"python -m bench.tabulate --benchmark {table.name} --space {space}"
        )
    return float(best)


def check_budgets(method: str, table: GroundTruth, space: int) -> None:
    """Refuse a method over epoch budgets on a table that holds one budget, naming the alternatives,
    or on a lazily trained table whose shorter budgets are not tabulated for the space (every query of
    an untabulated cell would train it)."""
    if not get_method(method).needs_budgets:
        return
    if len(table.budgets) > 1:
        lacking = [b for b in table.budgets if not table.tabulated(space, b)]
        if lacking:
            raise UntabulatedSpaceError(
                f"--method {method} queries every budget, but the {table.name} table of space {space} is not "
                f"tabulated at budget {', '.join(map(str, lacking))}; tabulate it first: "
                + "; ".join(
                    f"python -m bench.tabulate --benchmark {table.name} --space {space} --budget {b}"
                    for b in lacking
                )
            )
        return
    from bench.benchmarks import get_benchmark, with_budgets

    held = ", ".join(map(str, table.budgets)) or "one unnamed"
    several = with_budgets()
    alternatives = "--method bohb-repeats (training repeats as the fidelity)" + "".join(
        f" or --benchmark {n} (budgets {', '.join(map(str, get_benchmark(n).budgets))})" for n in several
    )
    raise UsageError(
        f"--method {method} runs Hyperband over training budgets (epochs), but the {table.name} table "
        f"holds one budget ({held}); use {alternatives}"
    )


def check_compatible(request: BlackboxRequest) -> None:
    """Refuse a results directory written by another results version or with other settings (a larger
    --max-queries is fine: the run continues), or in the older queries.csv layout unless it is complete
    and of the same method (then it is skipped: its rows stay valid, but a replay cannot continue them)."""
    existing = results.existing_config(request.run_dir)
    if existing is None:
        return
    old = dict(existing.get("blackbox") or {})
    new = request.config()
    if existing.get(records.LAYOUT_KEY, 1) != records.QUERIES_LAYOUT:
        old_method = records.LAYOUT_1_METHODS.get(old.get("method"), old.get("method"))
        stored = len(records.stored_lines(request.run_dir / records.QUERIES_CSV))
        if old_method != request.method or stored < request.max_queries:
            raise UsageError(
                f"{request.run_dir} holds a {old_method} run in the older queries.csv layout (`budget` "
                "counted repeats); analyses read it as it is, but it cannot be continued or replaced in "
                "place: use another --out or --force"
            )
    old.pop("max_queries", None)
    new.pop("max_queries", None)
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UsageError(
            f"{request.run_dir} holds a black-box run with other settings ({', '.join(diff)}); "
            "use another --out or --force"
        )


def benchmark_note(name: str) -> str:
    from bench.benchmarks import UnknownBenchmarkError, get_benchmark

    try:
        return get_benchmark(name).blackbox_note()
    except UnknownBenchmarkError:  # a stand-in table (tests)
        return f"ground truth '{name}'"


def config_record(request: BlackboxRequest, table: GroundTruth, best: float) -> dict[str, Any]:
    import optuna

    return {
        "results_version": results.RESULTS_VERSION,
        records.LAYOUT_KEY: records.QUERIES_LAYOUT,
        "blackbox": request.config(),
        "best_test_error": best,
        "benchmark_note": benchmark_note(table.name),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "optuna": optuna.__version__,
            "harness": results.harness_version(),
        },
        "git_revision": results.git_revision(),
    }


def _mark(run_dir: Path, state: str, queries: int, max_queries: int, reason: str = "") -> None:
    results.write_status(run_dir, state, reason, queries_done=queries, queries=max_queries)


# ---- running --------------------------------------------------------------------------------------
def execute(
    request: BlackboxRequest,
    table: GroundTruth,
    progress: bool = False,
    flush_every: int = FLUSH_EVERY,
) -> BlackboxOutcome:
    """Run, continue or skip one request. A failing run is marked failed (its rows kept), not raised;
    bad input (other settings on disk, a space without optimum) raises a HarnessError before anything
    is written."""
    from tqdm import tqdm

    run_dir = request.run_dir
    csv = run_dir / records.QUERIES_CSV
    check_compatible(request)
    stored = records.stored_lines(csv)
    if len(stored) >= request.max_queries:
        log.info("already holds %d queries, skipping: %s", len(stored), run_dir)
        last = records.last_row(csv)
        return BlackboxOutcome(run_dir, "skipped", len(stored), last, "already complete")
    check_budgets(request.method, table, request.space)
    best = best_test_error(table, request.space)
    space = SearchSpace(request.space)
    method = get_method(request.method)
    settings = build_settings(request.method, request.settings)
    oracle_seq, method_seq = np.random.SeedSequence(request.seed).spawn(2)
    identity = {
        "benchmark": table.name,
        "space": request.space,
        "method": request.method,
        "seed": request.seed,
    }
    name = f"{request.method} s{request.space} seed{request.seed}"
    bar = tqdm(total=request.max_queries, desc=name, unit="q", disable=not progress, leave=True)
    state = {"written": len(stored), "config": False}

    def save() -> None:
        if not state["config"]:
            run_dir.mkdir(parents=True, exist_ok=True)
            results.write_json(run_dir / results.CONFIG_JSON, config_record(request, table, best))
            state["config"] = True
        if len(oracle.rows) > state["written"]:
            records.write_rows(csv, oracle.rows)
            state["written"] = len(oracle.rows)

    def on_row(row: dict[str, Any]) -> None:
        i = len(oracle.rows)
        if i <= len(stored):
            line = records.csv_text([row]).splitlines()[1]
            if line != stored[i - 1]:
                raise ReplayMismatchError(
                    f"{csv} row {i} differs from what seed {request.seed} gives now ({stored[i - 1]!r} "
                    f"stored, {line!r} replayed): written by other code or with another table; use "
                    "another --out or --force"
                )
        elif (i - len(stored)) % flush_every == 0:
            save()
        bar.update(1)
        bar.set_postfix(regret=f"{row['test_regret']:.4f}", t=f"{row['simulated_seconds']:.0f}s")

    oracle = TabularOracle(
        table, space, np.random.default_rng(oracle_seq), request.max_queries, best, identity, on_row
    )
    if stored:
        log.info(
            "%s: replaying %d stored queries, then continuing to %d", name, len(stored), request.max_queries
        )
    try:
        method.run(oracle, Encoding(space), np.random.default_rng(method_seq), settings)
        save()
        _mark(run_dir, "complete", len(oracle.rows), request.max_queries)
        return BlackboxOutcome(run_dir, "complete", len(oracle.rows), oracle.rows[-1])
    except ReplayMismatchError:
        raise
    except KeyboardInterrupt:
        if state["config"] or len(oracle.rows) > len(stored):
            save()
            _mark(run_dir, "interrupted", len(oracle.rows), request.max_queries, "stopped by the user")
        raise
    except Exception as exc:  # one failed run must not stop a grid
        reason = f"{type(exc).__name__}: {exc}"
        log.error("%s failed: %s", name, reason)
        if len(oracle.rows) > len(stored):
            save()
        if run_dir.exists():
            _mark(run_dir, "failed", max(len(oracle.rows), len(stored)), request.max_queries, reason)
        return BlackboxOutcome(
            run_dir, "failed", len(oracle.rows), oracle.rows[-1] if oracle.rows else None, reason
        )
    finally:
        bar.close()

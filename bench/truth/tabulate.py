"""Filling a lazily tabulated ground truth for a whole search space, and judging its training protocol.

Filling is resumable (stored repeats are skipped) and parallel (one process per job, one thread each);
models are trained in one fixed pseudo-random order, so any prefix (`limit`) is a uniform sample of the
space. When every unique model of the space is stored, the space is marked complete: from then on
`best_test_error(space)` answers and regret works. The command line is `python -m bench.tabulate`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.search.spaces import SearchSpace
from bench.truth.base import ArchResult
from bench.truth.budget_character import (
    format_budget_character,
    nb101_budget_reference,
    stored_at_budgets,
    table_budget_character,
)
from bench.truth.character import NB101_SAMPLE, format_character, nb101_reference, table_character
from bench.truth.digits import DigitsBenchmark, DigitsError, DigitsProtocol

log = logging.getLogger(__name__)

ORDER_SEED = 0  # the fixed order in which models are tabulated: a limit then gives a uniform sample


class TabulationError(DigitsError, ValueError):
    """A tabulation request that cannot work (e.g. a sample larger than the space)."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """What a worker process needs to rebuild the benchmark (picklable, no open connections)."""

    cache_path: Path
    protocol: DigitsProtocol
    shipped: tuple[Path, ...]

    def open(self) -> DigitsBenchmark:
        return DigitsBenchmark(self.cache_path, self.protocol, shipped=self.shipped)


def _query_one(
    spec: BenchmarkSpec, arch_hash: str, matrix: np.ndarray, ops: list[str]
) -> tuple[str, ArchResult]:
    return arch_hash, spec.open().query(matrix, ops)


def tabulation_order(specs: dict[str, tuple[np.ndarray, list[str]]], seed: int = ORDER_SEED) -> list[str]:
    """The hashes of a space in a fixed pseudo-random order (independent of dict order)."""
    hashes = sorted(specs)
    return [hashes[i] for i in np.random.default_rng(seed).permutation(len(hashes))]


def run_queries(
    spec: BenchmarkSpec, items: Sequence[tuple[str, np.ndarray, list[str]]], jobs: int, desc: str
) -> dict[str, ArchResult]:
    """Query every item, `jobs` processes at a time, with a progress bar."""
    from tqdm import tqdm

    out: dict[str, ArchResult] = {}
    if not items:
        return out
    bar = tqdm(total=len(items), desc=desc, unit="arch", dynamic_ncols=True)
    try:
        if jobs == 1:
            bench = spec.open()
            for h, m, o in items:
                out[h] = bench.query(m, o)
                bar.update()
        else:
            from joblib import Parallel, delayed

            it: Iterator[tuple[str, ArchResult]] = Parallel(n_jobs=jobs, return_as="generator_unordered")(
                delayed(_query_one)(spec, h, m, o) for h, m, o in items
            )
            for h, res in it:
                out[h] = res
                bar.update()
    finally:
        bar.close()
    return out


# ---- protocol evaluation ---------------------------------------------------------------------------


def protocol_statistics(results: Sequence[ArchResult], cpu_seconds: Sequence[float] = ()) -> dict[str, float]:
    """Does the protocol discriminate? Spread of mean test accuracy and rank agreement of the repeats."""
    from scipy.stats import spearmanr

    test = np.array([r.test_acc for r in results], dtype=float)
    valid = np.array([r.valid_acc for r in results], dtype=float)
    mean_test = test.mean(axis=1)
    n_rep = test.shape[1]
    pairs = [(i, j) for i in range(n_rep) for j in range(i + 1, n_rep)]
    rho_test = [float(spearmanr(test[:, i], test[:, j])[0]) for i, j in pairs]
    rho_valid = [float(spearmanr(valid[:, i], valid[:, j])[0]) for i, j in pairs]
    wall = np.array([t for r in results for t in r.train_time], dtype=float)
    params = np.array([r.params for r in results if r.params is not None], dtype=float)
    stats = {
        "n_models": float(len(results)),
        "test_acc_mean": float(mean_test.mean()),
        "test_acc_min": float(mean_test.min()),
        "test_acc_max": float(mean_test.max()),
        "test_acc_spread": float(mean_test.max() - mean_test.min()),
        "test_acc_std": float(mean_test.std(ddof=1)) if len(results) > 1 else 0.0,
        "test_acc_iqr": float(np.subtract(*np.percentile(mean_test, [75, 25]))),
        "repeat_std_mean": float(test.std(axis=1, ddof=1).mean()) if n_rep > 1 else 0.0,
        "spearman_test_min": min(rho_test) if rho_test else float("nan"),
        "spearman_test_mean": float(np.mean(rho_test)) if rho_test else float("nan"),
        "spearman_valid_mean": float(np.mean(rho_valid)) if rho_valid else float("nan"),
        "spearman_valid_vs_test": float(spearmanr(valid.mean(axis=1), mean_test)[0]),
        "train_seconds_mean": float(np.nanmean(wall)) if wall.size else float("nan"),
        "train_seconds_max": float(np.nanmax(wall)) if wall.size else float("nan"),
        "params_min": float(params.min()) if params.size else float("nan"),
        "params_max": float(params.max()) if params.size else float("nan"),
    }
    cpu = np.array([c for c in cpu_seconds if c is not None], dtype=float)
    stats["cpu_seconds_mean"] = float(cpu.mean()) if cpu.size else float("nan")
    stats["cpu_seconds_max"] = float(cpu.max()) if cpu.size else float("nan")
    for i, (a, b) in enumerate(pairs):
        stats[f"spearman_test_r{a}_r{b}"] = rho_test[i]
    return stats


def format_statistics(stats: dict[str, float], protocol: DigitsProtocol) -> str:
    s = stats
    lines = [
        f"protocol {protocol.key()}: {protocol.to_json()}",
        f"models: {int(s['n_models'])} (unique NB-101 models of the space, uniform sample)",
        f"mean test accuracy over repeats: mean {s['test_acc_mean']:.4f}  min {s['test_acc_min']:.4f}  "
        f"max {s['test_acc_max']:.4f}",
        f"  spread (max-min) {100 * s['test_acc_spread']:.2f} points  "
        f"std {100 * s['test_acc_std']:.2f} points  IQR {100 * s['test_acc_iqr']:.2f} points",
        f"  repeat-to-repeat std within a model (mean) {100 * s['repeat_std_mean']:.2f} points",
        "Spearman between repeats (test): "
        + "  ".join(
            f"{k[len('spearman_test_') :]} {v:.3f}" for k, v in s.items() if k.startswith("spearman_test_r")
        )
        + f"  (valid, mean of pairs: {s['spearman_valid_mean']:.3f})",
        f"Spearman mean valid vs mean test: {s['spearman_valid_vs_test']:.3f}",
        f"per repeat: training wall {s['train_seconds_mean']:.2f} s (max {s['train_seconds_max']:.2f}), "
        f"whole-repeat CPU {s['cpu_seconds_mean']:.2f} s (max {s['cpu_seconds_max']:.2f}); "
        f"params {int(s['params_min'])}..{int(s['params_max'])}",
    ]
    return "\n".join(lines)


def estimate_lines(cpu_per_repeat: float, repeats: int, spaces: Sequence[int]) -> list[str]:
    """CPU-hours to tabulate each space, from the measured per-repeat cost."""
    out = []
    for k in spaces:
        n = len(SearchSpace(k).unique_specs())
        total = n * repeats * cpu_per_repeat
        out.append(
            f"space {k}: {n:,} unique models x {repeats} repeats x {cpu_per_repeat:.2f} s = "
            f"{total / 3600:.2f} core-hours ({total / 3600 / 2:.2f} h on 2 free cores)"
        )
    return out


def evaluate_protocol(spec: BenchmarkSpec, space: int, n: int, jobs: int, seed: int) -> dict[str, float]:
    """Train (or read) `n` models of `space` sampled with `seed` and return protocol_statistics."""
    specs = SearchSpace(space).unique_specs()
    if n > len(specs):
        raise TabulationError(
            f"a sample of {n} models exceeds the {len(specs)} unique models of space {space}; ask for fewer"
        )
    rng = np.random.default_rng(seed)
    hashes = sorted(specs)
    chosen = [hashes[i] for i in rng.choice(len(hashes), size=n, replace=False)]
    items = [(h, *specs[h]) for h in chosen]
    results = run_queries(spec, items, jobs, desc=f"digits space {space} protocol sample")
    rows = spec.open().all_rows()
    cpu = [rows[h][r][4] for h in chosen for r in rows[h]]
    return protocol_statistics([results[h] for h in chosen], cpu)


# ---- filling a space -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tabulation:
    """Where a space stands after `tabulate_space`; `best_*` only once it is complete."""

    space: int
    n_models: int
    n_stored: int
    best_hash: str | None = None
    best_test_error: float | None = None
    best_result: ArchResult | None = None
    best_spec: tuple[np.ndarray, list[str]] | None = None

    @property
    def complete(self) -> bool:
        return self.best_hash is not None


def tabulate_space(spec: BenchmarkSpec, space: int, jobs: int, limit: int | None) -> Tabulation:
    """Store every unique model of `space` (the first `limit` of the fixed order); mark it complete when
    nothing is missing."""
    specs = SearchSpace(space).unique_specs()
    order = tabulation_order(specs)
    bench = spec.open()
    done = bench.complete_hashes()
    todo = [h for h in order if h not in done]
    stored = len(order) - len(todo)
    if limit is not None:
        todo = todo[: max(0, limit - stored)]
    log.info("space %d: %d unique models, %d stored, %d to train now", space, len(order), stored, len(todo))
    t0 = time.perf_counter()
    run_queries(spec, [(h, *specs[h]) for h in todo], jobs, desc=f"digits space {space}")
    if todo:
        log.info("trained %d models in %.0f s", len(todo), time.perf_counter() - t0)
    missing = len(set(order) - bench.complete_hashes())
    if missing:
        return Tabulation(space, len(order), len(order) - missing)
    best_hash, best_err = bench.mark_complete(space, order)
    res = bench.stored_results([best_hash])[best_hash]
    return Tabulation(space, len(order), len(order), best_hash, best_err, res, specs[best_hash])


def export_space(bench: DigitsBenchmark, space: int, path: Path) -> Path:
    """Write the complete table of `space` to `path` (a file to ship in bench/truth/shipped)."""
    return bench.export(path, space, sorted(SearchSpace(space).unique_specs()))


def space_report(
    bench: DigitsBenchmark, space: int, reference: Path | None = NB101_SAMPLE, limit: int | None = None
) -> str:
    """The NAS-Bench-101 character of the stored part of `space`'s table, beside NAS-Bench-101's own
    (computed from the sample at `reference`; omitted, with a warning, when it cannot be read). With
    `limit`, only the first `limit` models of the tabulation order count: protocols tabulated that far
    are compared on the same uniform sample."""
    specs = SearchSpace(space).unique_specs()
    n_space = len(specs)
    if limit is not None:
        specs = {h: specs[h] for h in tabulation_order(specs)[:limit]}
    ours = table_character(bench, specs)
    ref = None
    if reference is not None:
        try:
            ref = nb101_reference(reference)
        except OSError as exc:
            log.warning("no NAS-Bench-101 reference values (%s)", exc)
    sample = "" if limit is None else f" (among the first {limit} of the tabulation order)"
    title = (
        f"digits space {space}, protocol {bench.key}: {ours.n_models} of {n_space} models stored{sample}\n"
        f"{bench.protocol.to_json()}"
    )
    return format_character(ours, ref, title)


def budget_report(bench: DigitsBenchmark, space: int, reference: Path | None = NB101_SAMPLE) -> str:
    """Spearman between the budgets of `space`'s table (models stored at every budget) and each budget's
    accuracy, beside NAS-Bench-101's from the sample at `reference` (omitted when it cannot be read)."""
    specs = SearchSpace(space).unique_specs()
    budgets = sorted(bench.budgets)
    stored = stored_at_budgets(bench, specs, budgets)
    columns = {
        "digits, repeat 0": table_budget_character(stored, repeat=0),
        "digits, mean of 3": table_budget_character(stored, repeat=None),
    }
    if reference is not None:
        try:
            columns["NAS-Bench-101 (sample)"] = nb101_budget_reference(reference)
        except OSError as exc:
            log.warning("no NAS-Bench-101 reference values (%s)", exc)
    title = (
        f"digits space {space}: budgets {', '.join(map(str, budgets))} (NB-101-equivalent epochs; each its "
        f"own training), {columns['digits, repeat 0'].n_models} of {len(specs)} models stored at every budget"
    )
    return format_budget_character(columns, title)

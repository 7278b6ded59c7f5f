"""Fill a lazily tabulated ground truth for a whole search space, or judge its training protocol.

    python -m bench.tabulate --benchmark digits --space 1 [--jobs N] [--limit M]
    python -m bench.tabulate --benchmark digits --space 1 --evaluate-protocol 100

Filling is resumable (cached repeats are skipped) and parallel (one process per job, one thread each).
When every unique model of the space is stored, the space is marked complete and its optimum printed;
from then on `best_test_error(space)` answers and regret works.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.search.spaces import SearchSpace, UnknownSpaceError
from bench.truth.base import ArchResult
from bench.truth.digits import DigitsBenchmark, DigitsError, DigitsProtocol

log = logging.getLogger(__name__)

ORDER_SEED = 0  # the fixed order in which models are tabulated: --limit then gives a uniform sample


class TabulateUsageError(UsageError):
    """A command-line argument that cannot work."""


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


def evaluate_protocol(
    spec: BenchmarkSpec, space: int, n: int, jobs: int, seed: int, estimate_spaces: Sequence[int]
) -> dict[str, float]:
    specs = SearchSpace(space).unique_specs()
    if n > len(specs):
        raise TabulateUsageError(
            f"--evaluate-protocol {n} exceeds the {len(specs)} unique models of space {space}"
        )
    rng = np.random.default_rng(seed)
    hashes = sorted(specs)
    chosen = [hashes[i] for i in rng.choice(len(hashes), size=n, replace=False)]
    items = [(h, *specs[h]) for h in chosen]
    results = run_queries(spec, items, jobs, desc=f"digits space {space} protocol sample")
    rows = spec.open().all_rows()
    cpu = [rows[h][r][4] for h in chosen for r in rows[h]]
    stats = protocol_statistics([results[h] for h in chosen], cpu)
    print(format_statistics(stats, spec.protocol))
    if math.isfinite(stats["cpu_seconds_mean"]) and estimate_spaces:
        print("tabulation estimates (CPU time per repeat as measured here; a shared machine is slower):")
        for line in estimate_lines(stats["cpu_seconds_mean"], spec.protocol.repeats, estimate_spaces):
            print("  " + line)
    return stats


# ---- filling a space -------------------------------------------------------------------------------


def tabulate_space(spec: BenchmarkSpec, space: int, jobs: int, limit: int | None) -> tuple[str, float] | None:
    """Store every unique model of `space`; mark it complete when nothing is missing."""
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
        print(
            f"space {space}: {len(order) - missing}/{len(order)} models stored; "
            "rerun without --limit to finish"
        )
        return None
    best_hash, best_err = bench.mark_complete(space, order)
    res = bench.stored_results([best_hash])[best_hash]
    m, o = specs[best_hash]
    print(
        f"space {space} complete: {len(order)} models. Optimum {best_hash}: mean test error {best_err:.4f} "
        f"(test acc {res.test_acc}, valid acc {res.valid_acc})\n  matrix {np.asarray(m).tolist()}\n  ops {o}"
    )
    return best_hash, best_err


# ---- CLI -------------------------------------------------------------------------------------------


def _parse_overrides(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise TabulateUsageError(f"--protocol expects FIELD=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.tabulate",
        description="Tabulate a lazily trained ground truth for a search space.",
    )
    p.add_argument("--benchmark", required=True, choices=["digits", "nb101"])
    p.add_argument("--space", type=int, required=True, help="search space 1, 2 or 3")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each trains on one core)")
    p.add_argument("--limit", type=int, default=None, help="stop after this many models are stored")
    p.add_argument("--cache", type=Path, default=None, help="SQLite cache (default: user cache dir)")
    p.add_argument("--no-shipped", action="store_true", help="ignore the tables shipped in bench/data")
    p.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a DigitsProtocol field",
    )
    p.add_argument(
        "--evaluate-protocol",
        type=int,
        default=None,
        metavar="N",
        help="train N sampled models and print spread, repeat rank agreement and cost instead of tabulating",
    )
    p.add_argument("--sample-seed", type=int, default=0, help="seed of the --evaluate-protocol sample")
    p.add_argument(
        "--estimate-spaces",
        default="1,2",
        help="spaces to estimate full tabulation time for (comma list, '' none)",
    )
    p.add_argument("--export", type=Path, default=None, help="after completion, write the space's table here")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        if args.benchmark == "nb101":
            raise TabulateUsageError(
                "nb101 is already a complete table; tabulate only applies to --benchmark digits"
            )
        SearchSpace(args.space)
        if args.jobs < 1:
            raise TabulateUsageError(f"--jobs must be >= 1, got {args.jobs}")
        if args.limit is not None and args.limit < 0:
            raise TabulateUsageError(f"--limit must be >= 0, got {args.limit}")
        protocol = DigitsProtocol.with_overrides(DigitsProtocol(), _parse_overrides(args.protocol))
        bench = DigitsBenchmark(args.cache, protocol, shipped=[] if args.no_shipped else None)
        spec = BenchmarkSpec(bench.cache_path, protocol, tuple(bench.shipped))
        print(f"digits cache: {bench.cache_path} (protocol {protocol.key()})", file=sys.stderr)
        if args.evaluate_protocol is not None:
            estimate = [int(x) for x in args.estimate_spaces.split(",") if x.strip()]
            evaluate_protocol(spec, args.space, args.evaluate_protocol, args.jobs, args.sample_seed, estimate)
            return 0
        best = tabulate_space(spec, args.space, args.jobs, args.limit)
        if best is not None and args.export is not None:
            specs = SearchSpace(args.space).unique_specs()
            path = bench.export(args.export, args.space, sorted(specs))
            print(f"exported space {args.space} to {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
        return 0
    except (TabulateUsageError, UnknownSpaceError, DigitsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

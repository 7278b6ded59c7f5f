"""Fill a lazily tabulated ground truth for a whole search space, or judge its training protocol.

    python -m bench.tabulate --benchmark digits --space 1 [--jobs N] [--limit M]
    python -m bench.tabulate --benchmark digits --space 1 --evaluate-protocol 100
    python -m bench.tabulate --benchmark digits --space 1 --report
    python -m bench.tabulate --benchmark digits --space 1 --budget 4      # one shorter budget
    python -m bench.tabulate --benchmark digits --space 1 --budget-report

`--report` prints the NAS-Bench-101 character of the (partial) table beside NAS-Bench-101's own.

Filling is resumable (cached repeats are skipped) and parallel (one process per job, one thread each).
When every unique model of the space is stored, the space is marked complete and its optimum printed;
from then on `best_test_error(space)` answers and regret works. The logic is in bench.truth.tabulate;
this is its command line (arguments, printing, exit codes).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.benchmarks import available, get_benchmark
from bench.errors import HarnessError, UsageError
from bench.search.spaces import SearchSpace
from bench.truth.character import NB101_SAMPLE
from bench.truth.digits import DigitsBenchmark, DigitsProtocol
from bench.truth.digits_protocol import BUDGET_LADDER, FULL_BUDGET, at_budget
from bench.truth.tabulate import (
    BenchmarkSpec,
    Tabulation,
    budget_report,
    estimate_lines,
    evaluate_protocol,
    export_space,
    format_statistics,
    space_report,
    tabulate_space,
)


class TabulateUsageError(UsageError):
    """A command-line argument that cannot work."""


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
    p.add_argument("--benchmark", required=True, choices=available())
    p.add_argument("--space", type=int, required=True, help="search space 1, 2 or 3")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each trains on one core)")
    p.add_argument("--limit", type=int, default=None, help="stop after this many models are stored")
    p.add_argument("--cache", type=Path, default=None, help="SQLite cache (default: user cache dir)")
    p.add_argument("--no-shipped", action="store_true", help="ignore the tables shipped with the package")
    p.add_argument(
        "--protocol",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a DigitsProtocol field",
    )
    p.add_argument(
        "--budget",
        type=int,
        default=None,
        help=f"training budget in NB-101-equivalent epochs, one of {', '.join(map(str, BUDGET_LADDER))} "
        f"(default {FULL_BUDGET}: the full protocol); each budget is its own training",
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
    p.add_argument(
        "--report",
        action="store_true",
        help="print the stored (partial) table's NAS-Bench-101 character instead of tabulating "
        "(with --limit N: of the first N models of the tabulation order only)",
    )
    p.add_argument(
        "--budget-report",
        action="store_true",
        help="print how the budgets' accuracies rank models alike (Spearman between budgets) beside "
        "NAS-Bench-101's, over the models stored at every budget, instead of tabulating",
    )
    p.add_argument(
        "--reference",
        type=Path,
        default=NB101_SAMPLE,
        help="the NB-101 sample of real architectures the reference values come from",
    )
    p.add_argument("--export", type=Path, default=None, help="after completion, write the space's table here")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _print_tabulation(t: Tabulation) -> None:
    if not t.complete:
        print(f"space {t.space}: {t.n_stored}/{t.n_models} models stored; rerun without --limit to finish")
        return
    assert t.best_result is not None and t.best_spec is not None
    m, o = t.best_spec
    print(
        f"space {t.space} complete: {t.n_models} models. Optimum {t.best_hash}: mean test error "
        f"{t.best_test_error:.4f} (test acc {t.best_result.test_acc}, valid acc {t.best_result.valid_acc})"
        f"\n  matrix {np.asarray(m).tolist()}\n  ops {o}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        if not get_benchmark(args.benchmark).tabulates:
            lazy = ", ".join(n for n in available() if get_benchmark(n).tabulates)
            raise TabulateUsageError(
                f"{args.benchmark} is already a complete table; tabulate only applies to --benchmark {lazy}"
            )
        SearchSpace(args.space)
        if args.jobs < 1:
            raise TabulateUsageError(f"--jobs must be >= 1, got {args.jobs}")
        if args.limit is not None and args.limit < 0:
            raise TabulateUsageError(f"--limit must be >= 0, got {args.limit}")
        protocol = DigitsProtocol.with_overrides(DigitsProtocol(), _parse_overrides(args.protocol))
        if args.budget is not None:
            if args.budget not in BUDGET_LADDER:
                raise TabulateUsageError(
                    f"--budget {args.budget}: the digits benchmark holds budgets "
                    f"{', '.join(map(str, BUDGET_LADDER))}"
                )
            protocol = at_budget(protocol, args.budget)
        bench = DigitsBenchmark(args.cache, protocol, shipped=[] if args.no_shipped else None)
        spec = BenchmarkSpec(bench.cache_path, protocol, tuple(bench.shipped))
        print(f"digits cache: {bench.cache_path} (protocol {protocol.key()})", file=sys.stderr)
        if args.report:
            print(space_report(bench, args.space, args.reference, args.limit))
            return 0
        if args.budget_report:
            print(budget_report(bench, args.space, args.reference))
            return 0
        if args.evaluate_protocol is not None:
            estimate = [int(x) for x in args.estimate_spaces.split(",") if x.strip()]
            stats = evaluate_protocol(spec, args.space, args.evaluate_protocol, args.jobs, args.sample_seed)
            print(format_statistics(stats, protocol))
            if math.isfinite(stats["cpu_seconds_mean"]) and estimate:
                print("tabulation estimates (CPU per repeat as measured here; a shared machine is slower):")
                for line in estimate_lines(stats["cpu_seconds_mean"], protocol.repeats, estimate):
                    print("  " + line)
            return 0
        tab = tabulate_space(spec, args.space, args.jobs, args.limit)
        _print_tabulation(tab)
        if tab.complete and args.export is not None:
            path = export_space(bench, args.space, args.export)
            print(f"exported space {args.space} to {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
        return 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

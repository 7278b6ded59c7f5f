"""`python -m bench.blackbox`: black-box NAS baselines on the tabular benchmark, NAS-Bench-1Shot1 style.

    python -m bench.blackbox --method rs,re,tpe --space 1 --seeds 0-4 --max-queries 280
    python -m bench.blackbox --method re --space 1,2,3 --seeds 0-9 --benchmark nb101 --set population=50
    python -m bench.blackbox --method hb,bohb --space 1 --seeds 0-4 --benchmark nb101-full

Each method x space x seed queries the ground-truth table (one training repeat per query, at the table's
standard budget or, for hb and bohb, at a Hyperband rung's epoch budget, paid for on a simulated clock
with the table's training time at that budget) and writes
`<out>/<benchmark>/space<k>/blackbox/<method>/seed<s>/queries.csv`. Reruns skip complete runs and
continue interrupted ones; bad input gets one line and exit code 2, with nothing written.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.blackbox import runs
from bench.blackbox.methods import METHODS
from bench.blackbox.runs import BlackboxOutcome, BlackboxRequest
from bench.cli_helpers import (
    add_benchmark_option,
    add_data_dir_option,
    parse_int_list,
    parse_sets,
    resolve_jobs,
)
from bench.errors import HarnessError, UsageError
from bench.search.spaces import UnknownSpaceError

log = logging.getLogger("bench.blackbox")
DEFAULT_QUERIES = 280  # NAS-Bench-1Shot1's --n_iters for RS and RE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.blackbox",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="methods: " + ", ".join(f"{m.name} ({m.title})" for m in METHODS.values()),
    )
    p.add_argument(
        "--method",
        default="rs,re,tpe",
        help="method(s), comma-separated (default: rs,re,tpe, which every table serves; hb and bohb "
        "need a table of several epoch budgets)",
    )
    p.add_argument("--space", default="1", help="search space(s): 1, 2, 3 or a list like 1,2,3")
    p.add_argument("--seeds", default="0", help="seeds: 0-4, 0,3,7 or 1-3,7")
    add_benchmark_option(p)
    p.add_argument(
        "--max-queries",
        type=int,
        default=DEFAULT_QUERIES,
        help=f"table queries per run (default {DEFAULT_QUERIES}, NAS-Bench-1Shot1's)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a method setting, e.g. population=50")
    p.add_argument("--out", default="results", help="results root (default: results/)")
    add_data_dir_option(p, "NAS-Bench-101")
    p.add_argument("--jobs", default="auto", help="runs in parallel processes (auto: one per CPU core)")
    p.add_argument("--force", action="store_true", help="start over: move existing runs to <out>/.replaced/")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


# ---- turning arguments into checked requests ----------------------------------------------------
def build_requests(args: argparse.Namespace, benchmark: str) -> list[BlackboxRequest]:
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise UsageError("--method is empty; name one, e.g. --method re")
    for m in methods:
        runs.get_method(m)
    spaces = parse_int_list(args.space, "space")
    seeds = parse_int_list(args.seeds, "seeds")
    if args.max_queries < 1:
        raise UsageError(f"--max-queries {args.max_queries}: must be at least 1")
    sets = parse_sets(args.set or [])
    known = {m: set(runs.setting_names(m)) for m in methods}
    everyone = set().union(*known.values())
    for key in sets:
        if key not in everyone:
            raise UsageError(
                f"--set {key}: no method of --method {args.method} has it; their settings: "
                + "; ".join(f"{m}: {', '.join(sorted(k)) or 'none'}" for m, k in known.items())
            )
        if len(sets[key]) > 1:
            raise UsageError(f"--set {key}: one value only (black-box runs are not gridded by setting)")
    requests = []
    for method, space, seed in itertools.product(methods, spaces, seeds):
        settings = {k: v[0] for k, v in sets.items() if k in known[method]}
        try:
            requests.append(
                BlackboxRequest(method, space, seed, benchmark, args.max_queries, Path(args.out), settings)
            )
        except UnknownSpaceError as exc:
            raise UsageError(f"--space {args.space}: {exc}") from None
    return requests


# ---- running ------------------------------------------------------------------------------------
def _in_worker(request: BlackboxRequest, table_factory: Callable[[], Any]) -> BlackboxOutcome:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_optuna()
    return runs.execute(request, table_factory(), progress=False)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one INFO line per query otherwise


def summary_table(outcomes: Sequence[BlackboxOutcome], root: Path) -> str:
    lines = ["run | state | queries | simulated s | test regret", "--- | --- | --- | --- | ---"]
    for o in outcomes:
        row = o.last_row or {}
        seconds = row.get("simulated_seconds")
        regret = row.get("test_regret")
        if regret is not None and regret != regret:  # NaN: no standard-budget query yet
            regret = None
        lines.append(
            f"{o.run_dir.relative_to(root)} | {o.state} | {o.queries} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} | {'-' if regret is None else f'{regret:.4f}'}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from bench.benchmarks import resolve
    from bench.runs import parts

    out = Path(args.out)
    try:
        # Black-box methods query the table only: no CIFAR-10 needed.
        benchmark, paths = resolve(args.benchmark, args.data_dir, search=False)
        requests = build_requests(args, benchmark)
        jobs = resolve_jobs(args.jobs, len(requests))
        table_factory = functools.partial(parts.open_table, benchmark, paths)
        table = table_factory()  # fail fast on a missing or corrupt table
        for space in sorted({r.space for r in requests}):
            runs.best_test_error(table, space)  # a space without optimum: say so before anything runs
        for method, space in dict.fromkeys((r.method, r.space) for r in requests):
            runs.check_budgets(method, table, space)  # Hyperband over epochs: several budgets, tabulated
        results.check_writable(out)
        if not args.force:
            for req in requests:
                runs.check_compatible(req)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _quiet_optuna()
    if args.force:
        for req in requests:
            if req.run_dir.exists():
                log.info("--force: moved the old run to %s", results.move_aside(req.run_dir, out))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if jobs > 1:
            from joblib import Parallel, delayed

            tasks = (delayed(_in_worker)(r, table_factory) for r in requests)
            outcomes = list(Parallel(n_jobs=jobs)(tasks))
        else:
            outcomes = [runs.execute(r, table, progress=not args.no_progress) for r in requests]
    except KeyboardInterrupt:
        print("interrupted: queries so far are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except HarnessError as exc:  # a stored run that its seed no longer reproduces
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(outcomes, out))
    failed = [o for o in outcomes if o.state == "failed"]
    for o in failed:
        print(f"FAILED {o.run_dir.relative_to(out)}: {o.reason}", file=sys.stderr)
    return 1 if failed else 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())

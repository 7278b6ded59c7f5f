"""`python -m bench.hpo`: hyperparameter optimization of a one-shot optimizer with Optuna.

    python -m bench.hpo --optimizer darts --space 1 --trials 40 --preset quick --out hpo/darts_s1
    python -m bench.hpo --optimizer msdarts --space 1 --trials 40 --tune bandwidth,epsilon,w_lr --jobs 2 ...

Each trial is one search with settings drawn from the plug-in's ranges and the trainer's; the objective is
the final architecture's validation regret; Hyperband stops poor trials after early epochs. The Optuna
study lives in OUT/study.sqlite3: rerunning the command continues it, a larger --trials extends it, and
several processes (--jobs, or commands on machines sharing OUT) work on one study. Writes OUT/trials.csv,
OUT/best_settings.txt (a ready `--set` line and bench.run command) and OUT/best_regret.png. Details:
bench/runs/hpo.py.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.cli_helpers import add_benchmark_option, add_data_dir_option, parse_sets
from bench.errors import HarnessError, UsageError
from bench.runs.config import PRESETS

log = logging.getLogger("bench.hpo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.hpo",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--optimizer", required=True, help="the plug-in to tune (one)")
    p.add_argument("--space", type=int, default=1, help="search space 1, 2 or 3")
    p.add_argument(
        "--trials", type=int, default=None, help="finished trials the study should hold (required)"
    )
    p.add_argument("--preset", choices=PRESETS, default="paper", help="the protocol every trial starts from")
    add_benchmark_option(p, "ground truth")
    p.add_argument("--out", type=Path, default=None, help="the study's directory (required; rerun to resume)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="fix a setting in every trial")
    p.add_argument("--tune", default=None, help="only these settings, comma-separated (default: all ranges)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every trial (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes sharing the study (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per worker (default 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_data_dir_option(p)
    p.add_argument("--list", action="store_true", help="print the search ranges and exit")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def build_spec(args: argparse.Namespace, benchmark: str) -> Any:
    from bench.runs.hpo import HpoSpec

    sets = parse_sets(args.set or [])
    grid = [k for k, v in sets.items() if len(v) > 1]
    if grid:
        raise UsageError(f"--set {grid[0]}: one value only (the study searches; it does not grid)")
    if not args.list:
        for opt in ("trials", "out"):
            if getattr(args, opt) is None:
                raise UsageError(f"--{opt} is required (e.g. --trials 40 --out hpo/{args.optimizer})")
        if args.trials < 1:
            raise UsageError(f"--trials {args.trials}: must be at least 1")
    for opt in ("jobs", "threads"):
        if getattr(args, opt) < 1:
            raise UsageError(f"--{opt} {getattr(args, opt)}: must be at least 1")
    tune = [k.strip() for k in args.tune.split(",") if k.strip()] if args.tune is not None else None
    if tune == []:
        raise UsageError("--tune is empty; name settings, e.g. --tune w_lr,a_lr")
    return HpoSpec(
        optimizer=args.optimizer,
        space=args.space,
        benchmark=benchmark,
        preset=args.preset,
        seed=args.seed,
        fixed={k: v[0] for k, v in sets.items()},
        tune=tune,
        device=args.device,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    from bench.benchmarks import resolve
    from bench.runs import executors, hpo
    from bench.runs.device import resolve_device

    try:
        resolve_device(args.device)
        benchmark, paths = resolve(args.benchmark, args.data_dir)
        spec = build_spec(args, benchmark)
        ranges = spec.ranges()  # validates optimizer, space, preset, --set and --tune
        if args.list:
            print(hpo.describe_ranges(ranges))
            return 0
        table_factory, data_factory = executors.factories(benchmark, paths)
        hpo.check_compatible(spec, args.out)
        results.check_writable(args.out)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("tuning %s on space %d: %s", spec.optimizer, spec.space, hpo.describe_ranges(ranges))
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        study = hpo.run_study(
            spec, args.out, args.trials, table_factory, data_factory, args.jobs, args.threads
        )
    except KeyboardInterrupt:
        print(
            "interrupted: finished trials are in the study; rerun the same command to resume", file=sys.stderr
        )
        return 130
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in hpo.write_reports(spec, args.out, study):
        print(path)
    found = hpo.best_settings(spec, study)
    if found is None:
        print("no trial completed (all pruned or failed): see trials.csv", file=sys.stderr)
        return 1
    best, line, _ = found
    print(f"best: trial {best.number}, final validation regret {best.value:.6g}")
    print(line)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())

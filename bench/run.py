"""`python -m bench.run`: run one-shot NAS searches and record them as tidy results.

    python -m bench.run --optimizer msdarts --space 1 --seeds 0-4
    python -m bench.run --optimizer darts,gdas --space 1,2,3 --seeds 0-2 --set epochs=20

Comma-separated `--optimizer`, `--space` and `--set key=v1,v2` values launch the whole grid; each
combination lands in its own deterministic directory, and runs already complete are skipped.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import results
from bench.cli_helpers import (
    add_benchmark_option,
    add_data_dir_option,
    parse_int_list,
    parse_sets,
    resolve_jobs,
)
from bench.errors import HarnessError, UsageError
from bench.runs import checkpoint
from bench.runs.config import LIST_KEYS, PRESETS, RunConfig, check_compatible
from bench.runs.executors import RunRequest
from bench.search.spaces import UnknownSpaceError

log = logging.getLogger("bench.run")


# Re-exported: callers and tests of this face use them by these names.
__all__ = ["build_parser", "build_requests", "main", "parse_int_list", "parse_sets", "resolve_jobs"]


def build_requests(args: argparse.Namespace, benchmark: str) -> list[RunRequest]:
    """Expand optimizers x spaces x --set grid x seeds into resolved, validated run requests."""
    from optimizers import get_optimizer

    optimizers = [o.strip() for o in args.optimizer.split(",") if o.strip()]
    if not optimizers:
        raise UsageError("--optimizer is empty; name one, e.g. --optimizer darts")
    for name in optimizers:
        get_optimizer(name)  # UnknownOptimizerError names the registered ones
    spaces = parse_int_list(args.space, "space")
    seeds = parse_int_list(args.seeds, "seeds")
    sets = parse_sets(args.set or [], lists=LIST_KEYS)
    if args.epochs is not None:
        sets.setdefault("epochs", [str(args.epochs)])
    known = {name: RunConfig.setting_names(name) for name in optimizers}
    everyone = set().union(*known.values())
    requests = []
    for opt_name, space, combo in itertools.product(optimizers, spaces, itertools.product(*sets.values())):
        overrides = dict(zip(sets, combo, strict=True))
        # A key only another optimizer of the grid knows does not apply to this one.
        applicable = {k: v for k, v in overrides.items() if k in known[opt_name] or k not in everyone}
        try:
            cfg = RunConfig.resolve(
                opt_name,
                space,
                benchmark=benchmark,
                preset=args.preset,
                overrides=applicable,
                device=args.device,
            )
        except UnknownSpaceError as exc:
            raise UsageError(f"--space {args.space}: {exc}") from None
        tag = results.make_tag(args.preset, applicable)
        requests.extend(
            RunRequest(cfg=cfg.with_seed(seed), tag=tag, out_root=Path(args.out)) for seed in seeds
        )
    return requests


def summary_table(outcomes: Sequence[Any], root: Path | None = None) -> str:
    """One aligned row per run of this command (`python -m bench.status` shows a whole tree)."""
    from bench.runs.status import fmt_duration, fmt_number, format_table

    rows = []
    for o in outcomes:
        row = o.last_row or {}
        rows.append(
            (
                _short(o.run_dir, root),
                o.state,
                str(o.epochs),
                fmt_number(row.get("test_acc_mean"), ".4f"),
                fmt_number(row.get("test_regret"), ".4f"),
                fmt_number(row.get("hessian_eig_max"), ".4g"),
                fmt_duration(row.get("wallclock_s")),
            )
        )
    header = ("run", "state", "epochs", "test acc (mean of 3)", "regret", "eig", "wall")
    return format_table(header, rows)


def _short(path: Path, root: Path | None) -> str:
    try:
        return str(Path(path).relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizer", required=True, help="plug-in name(s), comma-separated")
    p.add_argument("--space", default="1", help="search space(s): 1, 2, 3 or a list like 1,2,3")
    p.add_argument("--seeds", default="0", help="seeds: 0-4, 0,3,7 or 1-3,7")
    p.add_argument(
        "--epochs", type=int, default=None, help="search epochs (default: the optimizer's reference)"
    )
    add_benchmark_option(p)
    p.add_argument(
        "--preset",
        choices=PRESETS,
        default="paper",
        help="paper: the published scripts' protocol; corrected: the harness's corrections; "
        "quick: paper shrunk to CPU minutes",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE[,VALUE...]", help="override any setting")
    p.add_argument("--out", default="results", help="results root (default: results/)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_data_dir_option(p)
    p.add_argument(
        "--jobs",
        default="auto",
        help="runs in parallel processes (joblib); auto: one per CPU core on CPU (each with --threads), "
        "one per GPU on CUDA",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per run (default 1: a seed's numbers then never depend on --jobs or on "
        "how many runs share the machine; float reductions differ between thread counts)",
    )
    p.add_argument(
        "--dask", metavar="ADDRESS", default=None, help="run on a Dask cluster, e.g. tcp://host:8786"
    )
    p.add_argument("--force", action="store_true", help="start over: move existing runs to <out>/.replaced/")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bars: one log line per epoch, as in a file"
    )
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="only warnings, errors and the summary")
    loud.add_argument("-v", "--verbose", action="store_true", help="debug lines; tracebacks on the terminal")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from bench.runs import executors, runlog

    # Bars only on a terminal; in a file (nohup, CI, Slurm) every line has a time and names its run.
    console = runlog.Console.for_cli(quiet=args.quiet, verbose=args.verbose, progress=not args.no_progress)
    runlog.configure(console)
    from bench.benchmarks import resolve
    from bench.runs.device import resolve_device

    try:
        device = resolve_device(args.device)
        benchmark, paths = resolve(args.benchmark, args.data_dir)
        requests = build_requests(args, benchmark)
        args.jobs = resolve_jobs(args.jobs, len(requests), device)
        if args.threads < 1:
            raise UsageError(f"--threads {args.threads}: must be at least 1")
        results.check_writable(Path(args.out))
        if not args.force:
            for req in requests:
                check_compatible(req.run_dir, req.cfg.to_dict())
                checkpoint.check_resumable(req.run_dir)  # before anything in the run is touched
        if needs_pinned_process(requests, args.dask):
            return relaunch_pinned(argv)
        table_factory, data_factory = executors.factories(benchmark, paths)
        if args.jobs == 1 and not args.dask:
            table = table_factory()  # fail fast on a missing or corrupt table
            table_factory = functools.partial(_same, table)
    except HarnessError as exc:  # names the problem and the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    executors.spread_over_gpus(requests)
    # A scheduler's TERM is handled like Ctrl-C: runs keep their last epoch and the worker pool is
    # shut down with the parent instead of being left running as orphans.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.dask:
            outcomes = executors.run_dask(
                requests, table_factory, data_factory, args.dask, console, args.force, args.threads
            )
        elif args.jobs > 1:
            outcomes = executors.run_joblib(
                requests, table_factory, data_factory, args.jobs, console, args.force, args.threads
            )
        else:
            outcomes = executors.run_serial(
                requests, table_factory, data_factory, console, args.force, args.threads
            )
    except KeyboardInterrupt:
        print("interrupted: completed epochs are saved; rerun the same command to resume", file=sys.stderr)
        return 130
    except HarnessError as exc:  # e.g. a Dask worker that cannot pin reproducible=true
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(outcomes, Path(args.out)))
    failed = [o for o in outcomes if o.state == "failed"]
    for o in failed:
        print(f"FAILED {_short(o.run_dir, Path(args.out))}: {o.reason}", file=sys.stderr)
    return 1 if failed else 0


def needs_pinned_process(requests: Sequence[RunRequest], dask: str | None) -> bool:
    """Whether this command must run in a child process started with reproducible=true's environment
    (ATen and MKL read it once per process). A grid may not mix the two modes: the unpinned runs would
    compute with the pinned kernels."""
    from bench.runs import reproducible

    modes = {r.cfg.reproducible for r in requests}
    if len(modes) > 1:
        raise UsageError("--set reproducible=true,false: run the pinned and the default runs as two commands")
    # Dask workers were started elsewhere: each run checks its worker and refuses when it is not pinned.
    return modes == {True} and not dask and bool(reproducible.problems())


def relaunch_pinned(argv: Sequence[str] | None) -> int:
    """Run this same command in a child process whose environment pins the kernels (joblib workers
    inherit it). The child checks the process again, so this never loops."""
    import os
    import subprocess

    from bench.runs import reproducible

    if all(os.environ.get(k) == v for k, v in reproducible.PINNED_ENV.items()):
        raise HarnessError(
            f"reproducible=true: the environment is set but {'; '.join(reproducible.problems())}"
        )
    log.debug("reproducible=true: restarting in a child process with %s", reproducible.PINNED_ENV)
    args = list(sys.argv[1:] if argv is None else argv)
    child = subprocess.Popen([sys.executable, "-m", "bench.run", *args], env=reproducible.child_env())
    try:
        return child.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C and saves its epochs; wait for it
        return child.wait()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _same(obj: Any) -> Any:
    return obj


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the product's main command, timed end to end, and checked for everything the preset promises.

    python -m bench.perf mainjob [--optimizer msdarts] [--space 1] [--seeds 0-4] [--jobs auto]
                                 [--target-minutes 20] [--set KEY=VALUE ...] [--keep DIR] [--json PATH]

Runs `python -m bench.run --optimizer O --space S --seeds SEEDS --jobs J` in a fresh process, as a user's
fresh clone does: results into an empty directory and an empty NB1SHOT1_CACHE (so everything derived,
e.g. the digits data cache and ground-truth lookups, is rebuilt and timed; the shipped tables are read
from the repository as a clone has them). Then it reads back what the runs wrote and checks that no
promise of the preset was dropped to save time: every run complete with all its epochs, the Hessian
eigenvalue in every epoch the config measures, the one-shot evaluation (and, where the config turns it on,
the correlation) in every epoch, a ground-truth regret in every row.

Targets: wall clock <= --target-minutes (20) on the machine it runs on, and complete. Wall
time is the whole command, process start to exit; CPU seconds and the peak RSS are those of every
process the command ran (getrusage of the waited-for children: joblib's workers included once they exit).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROG = "python -m bench.perf mainjob"
TARGET_MINUTES = 20.0


class BenchUsageError(ValueError):
    """A command-line value the benchmark cannot use."""


@dataclass(frozen=True)
class RunCheck:
    """What one run wrote, against what its config promises."""

    run: str
    epochs: int  # the run's resolved epoch count (config.json)
    rows: int
    hessian_expected: int
    hessian_measured: int
    oneshot_measured: int
    regret_rows: int
    correlation_expected: int
    correlation_rows: int
    final_regret: float
    search_seconds: float  # sum of epoch_seconds: the trainer's own time, without start-up

    @property
    def complete(self) -> bool:
        return (
            self.rows == self.epochs
            and self.hessian_measured == self.hessian_expected
            and self.oneshot_measured == self.rows
            and self.regret_rows == self.rows
            and self.correlation_rows == self.correlation_expected
        )


def check_run(run_dir: Path) -> RunCheck:
    """Read one run's files and count what its config says must be there."""
    import pandas as pd

    from bench import results
    from bench.runs.config import RunConfig
    from bench.runs.trainer import correlation_epoch, hessian_epoch

    record = json.loads((run_dir / results.CONFIG_JSON).read_text())
    epochs = int(record["epochs"])
    cfg = RunConfig.from_dict(record["config"])
    frame = results.read_frame(run_dir / results.EPOCHS_CSV)
    corr_path = run_dir / results.CORRELATION_CSV
    corr_rows = len(pd.read_csv(corr_path)) if corr_path.exists() else 0

    def finite(column: str) -> int:
        return int(pd.to_numeric(frame[column], errors="coerce").notna().sum())

    regrets = pd.to_numeric(frame["test_regret"], errors="coerce")
    return RunCheck(
        run=str(run_dir),
        epochs=epochs,
        rows=len(frame),
        hessian_expected=sum(hessian_epoch(cfg, e, epochs) for e in range(epochs)),
        hessian_measured=finite("hessian_lambda_max"),
        oneshot_measured=finite("oneshot_valid_acc"),
        regret_rows=int(regrets.notna().sum()),
        correlation_expected=sum(correlation_epoch(cfg, e, epochs) for e in range(epochs)),
        correlation_rows=corr_rows,
        final_regret=float(regrets.iloc[-1]) if len(regrets) else math.nan,
        search_seconds=float(pd.to_numeric(frame["epoch_seconds"], errors="coerce").sum()),
    )


def command(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", args.runner, "--optimizer", args.optimizer, "--space", args.space,
        "--seeds", args.seeds, "--jobs", args.jobs, "--out", str(out), "--no-progress", "-q",
    ]  # fmt: skip
    for setting in args.set:
        cmd += ["--set", setting]
    return cmd + args.run_args


def run_job(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Run the command with a fresh cache under `work`; wall, CPU and peak RSS of its processes."""
    out, cache = work / "results", work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    root = str(Path(__file__).resolve().parents[2])  # the checkout, importable from any working directory
    env = dict(os.environ, NB1SHOT1_CACHE=str(cache))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = command(args, out)
    print("running: " + " ".join(cmd[1:]), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": " ".join(cmd[1:]),
        "returncode": proc.returncode,
        "stderr_tail": proc.stderr.strip().splitlines()[-5:],
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": after.ru_maxrss / 1024,  # the largest single process (Linux: kilobytes)
        "out": out,
    }


def report(job: dict[str, Any], checks: list[RunCheck], args: argparse.Namespace) -> dict[str, Any]:
    target_s = args.target_minutes * 60
    print(
        f"\nwall {job['wall_s']:.0f} s ({job['wall_s'] / 60:.1f} min), CPU {job['cpu_s']:.0f} s, "
        f"peak RSS {job['peak_rss_mb']:.0f} MB (largest process), exit code {job['returncode']}"
    )
    root = Path(job["out"])
    names = [os.path.relpath(c.run, root) for c in checks]
    width = max([len(n) for n in names] + [3])
    header = (
        f"{'run':<{width}} {'epochs':>7} {'hessian':>8} {'one-shot':>9} {'regret':>7} {'corr':>6} "
        f"{'final regret':>12} {'search s':>9}"
    )
    print(header + "\n" + "-" * len(header))
    for name, c in zip(names, checks, strict=True):
        print(
            f"{name:<{width}} {c.rows:>3}/{c.epochs:<3} {c.hessian_measured:>3}/{c.hessian_expected:<4} "
            f"{c.oneshot_measured:>4}/{c.rows:<4} {c.regret_rows:>3}/{c.rows:<3} "
            f"{c.correlation_rows:>2}/{c.correlation_expected:<3} {c.final_regret:>12.4f} "
            f"{c.search_seconds:>9.0f}"
        )
    expected_runs = args.expected_runs
    complete = job["returncode"] == 0 and len(checks) == expected_runs and all(c.complete for c in checks)
    fast = job["wall_s"] <= target_s
    print(
        f"\ntargets: wall <= {args.target_minutes:g} min: {job['wall_s'] / 60:.1f} min "
        f"{'PASS' if fast else 'FAIL'} | complete ({expected_runs} runs, every epoch, Hessian, one-shot "
        f"evaluation, regret{', correlation' if any(c.correlation_expected for c in checks) else ''}): "
        f"{'PASS' if complete else 'FAIL'}"
    )
    if job["returncode"] != 0:
        print("the command failed: " + " | ".join(job["stderr_tail"]))
    ok = fast and complete
    print(f"overall: {'PASS' if ok else 'FAIL'} (one run of the command on this machine; wall time is noisy)")
    return {
        "benchmark": "mainjob",
        # The throw-away results folder is named by its role, so the record says nothing of this host.
        "command": job["command"].replace(str(root), "EMPTY_DIR"),
        "measured": measured_on(),
        "returncode": job["returncode"],
        "wall_s": job["wall_s"],
        "cpu_s": job["cpu_s"],
        "peak_rss_mb": job["peak_rss_mb"],
        "target_s": target_s,
        "runs": [
            asdict(c) | {"run": name, "complete": c.complete} for name, c in zip(names, checks, strict=True)
        ],
        "targets": {"wall": fast, "complete": complete, "pass": ok},
    }


def measured_on() -> dict[str, Any]:
    """When and on what the numbers were taken: what the docs must name beside every number."""
    import datetime

    from bench.runs.machine import machine_record

    machine = machine_record()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "cpu_model": machine["cpu_model"],
        "cores": os.cpu_count(),
        "aten_capability": machine["aten_capability"],
        "torch": machine["torch"],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="msdarts", help="plug-in name (default msdarts)")
    parser.add_argument("--space", default="1", help="search space (default 1)")
    parser.add_argument("--seeds", default="0-4", help="seeds as bench.run takes them (default 0-4)")
    parser.add_argument("--jobs", default="auto", help="bench.run --jobs (default auto)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to bench.run")
    parser.add_argument("--target-minutes", type=float, default=TARGET_MINUTES, help="wall-clock target")
    parser.add_argument("--keep", type=Path, default=None, help="keep results and cache in this (new) folder")
    parser.add_argument("--json", type=Path, default=None, help="write every number to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--runner", default="bench.run", help=argparse.SUPPRESS)  # tests: a fixture CLI
    args, rest = parser.parse_known_args(argv)
    args.run_args = rest  # anything else (e.g. --benchmark digits, --epochs 3) goes to bench.run as is
    from bench.cli_helpers import parse_int_list, parse_sets
    from bench.errors import HarnessError

    try:  # bench.run's own parsers: the same runs it will plan, the same one-line errors
        grid = math.prod(len(v) for v in parse_sets(args.set).values())
        args.expected_runs = (
            len([o for o in args.optimizer.split(",") if o.strip()])
            * len(parse_int_list(args.space, "space"))
            * len(parse_int_list(args.seeds, "seeds"))
            * grid
        )
    except HarnessError as exc:
        raise BenchUsageError(str(exc)) from None
    if not args.target_minutes > 0:
        raise BenchUsageError(f"--target-minutes {args.target_minutes}: must be positive")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        raise BenchUsageError(f"--keep {args.keep}: exists and is not empty; name a new folder")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except BenchUsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    from bench import results

    scratch = tempfile.TemporaryDirectory(prefix="mainjob-") if args.keep is None else None
    with scratch or contextlib.nullcontext(str(args.keep)) as work_dir:
        job = run_job(args, Path(work_dir))
        checks = [check_run(r) for r in results.find_runs(job["out"])] if job["out"].exists() else []
        record = report(job, checks, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    if job["returncode"] == 2:  # bench.run refused the input: the same one-line error, same code
        print(f"{PROG}: bench.run refused the command (above)", file=sys.stderr)
        return 2
    return 1 if args.strict and not record["targets"]["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())

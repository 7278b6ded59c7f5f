"""Benchmark: what `reproducible=true` costs, the same short run with and without it.

    python -m bench.perf repro [--optimizer msdarts] [--space 1] [--preset quick] [--seed 0]
                               [--set KEY=VALUE ...] [--repeats 1] [--json PATH]

Runs `python -m bench.run` for the same run twice per repeat, in fresh processes and alternating, into a
scratch directory: once as given (the default kernels, one thread) and once with `--set
reproducible=true` (pinned kernels: ATen's baseline ISA, no oneDNN/NNPACK, MKL CBWR, one thread). The
time compared is the run's own search time (the sum of epochs.csv's epoch_seconds), so process start-up
and data loading are left out; the ratio is pinned / default (median over repeats). It also says
whether the two runs' numbers agree (they need not: the pinned kernels sum in another order).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROG = "python -m bench.perf repro"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--optimizer", default="msdarts")
    p.add_argument("--space", default="1")
    p.add_argument("--preset", default="quick")
    p.add_argument("--seed", default="0")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to bench.run")
    p.add_argument("--repeats", type=int, default=1, help="runs of each mode, alternating (default 1)")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error(f"--repeats {args.repeats}: must be at least 1")
    if any(s.split("=", 1)[0].strip() == "reproducible" for s in args.set):
        p.error("--set reproducible=...: this benchmark runs both modes itself; drop it")
    return args


def time_run(args: argparse.Namespace, out: Path, pinned: bool) -> dict[str, Any]:
    """One `python -m bench.run` in a fresh process; its search seconds and non-timing numbers."""
    from bench import results

    sets = [*args.set, *(["reproducible=true"] if pinned else [])]
    command = [sys.executable, "-m", "bench.run", "--optimizer", args.optimizer, "--space", args.space,
               "--seeds", args.seed, "--preset", args.preset, "--out", str(out), "--no-progress", "-q",
               *(x for s in sets for x in ("--set", s))]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode != 0:
        raise RuntimeError(f"bench.run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    (run_dir,) = results.find_runs(out)
    rows = results.read_epochs(run_dir / results.EPOCHS_CSV)
    numbers = [{k: v for k, v in r.items() if k not in results.TIMING_COLUMNS} for r in rows]
    return {
        "seconds": sum(float(r["epoch_seconds"]) for r in rows),
        "numbers": numbers,
        "final_regret": rows[-1].get("test_regret"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.runs.machine import machine_record

    times: dict[str, list[float]] = {"default": [], "reproducible": []}
    finals: dict[str, Any] = {}
    same: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="perf-repro-") as scratch:
        for i in range(args.repeats):
            got = {}
            for mode in ("default", "reproducible"):
                got[mode] = time_run(args, Path(scratch) / f"{mode}{i}", pinned=mode == "reproducible")
                times[mode].append(got[mode]["seconds"])
                finals[mode] = got[mode]["final_regret"]
            same.append(got["default"]["numbers"] == got["reproducible"]["numbers"])
    default, pinned = statistics.median(times["default"]), statistics.median(times["reproducible"])
    record = {
        "command": " ".join(["python -m bench.perf repro", *(argv or sys.argv[1:])]),
        "machine": machine_record(),
        "seconds": times,
        "median_seconds": {"default": default, "reproducible": pinned},
        "ratio": pinned / default if default else float("nan"),
        "final_test_regret": finals,
        "numbers_identical": all(same),
    }
    print(f"search seconds (sum of epoch_seconds, median of {args.repeats}):")
    print(f"  default       {default:8.1f} s   final test regret {finals['default']}")
    print(f"  reproducible  {pinned:8.1f} s   final test regret {finals['reproducible']}")
    print(f"  ratio reproducible / default: {record['ratio']:.2f}")
    print(f"  numbers identical: {record['numbers_identical']} (pinned kernels sum in another order)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

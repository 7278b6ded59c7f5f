"""What every `python -m bench.X` face parses alike: seed and space lists, `--set` items, `--jobs`, and
the choices of `--benchmark` and `--preset`. The faces import this module, never each other.

May import: bench.errors, bench.benchmarks (the registry), bench.runs.config (the presets); torch only
lazily (`resolve_jobs` on CUDA).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from bench.errors import UsageError


def parse_int_list(text: str, what: str) -> list[int]:
    """`0-4`, `0,3,7` or `1-3,7` -> sorted unique non-negative ints; errors say what is wrong."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise UsageError(f"--{what} {text!r}: empty item; write e.g. 0-4 or 0,3,7")
        if "-" in part[1:]:
            lo, hi = part.split("-", 1) if not part.startswith("-") else ("", "")
            if not (lo.isdigit() and hi.isdigit()):
                raise UsageError(f"--{what} {text!r}: {part!r} is not a range of non-negative ints like 0-4")
            a, b = int(lo), int(hi)
            if a > b:
                raise UsageError(f"--{what} {text!r}: range {part!r} runs backwards; write {b}-{a}")
            out.extend(range(a, b + 1))
        else:
            if not part.isdigit():
                raise UsageError(
                    f"--{what} {text!r}: {part!r} is not a non-negative int; write e.g. 0-4 or 0,3,7"
                )
            out.append(int(part))
    return sorted(set(out))


def parse_sets(items: Sequence[str], lists: Collection[str] = ()) -> dict[str, list[str]]:
    """`--set key=v1,v2` items -> key -> list of raw values (a grid axis when several). A key in
    `lists` takes a list as ONE value (`--set truth_budgets=4,12,36,108` is one run, not four)."""
    sets: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected key=value, e.g. --set epochs=20")
        values = [value.strip()] if key in lists else [v.strip() for v in value.split(",")]
        if any(v == "" for v in values):
            raise UsageError(f"--set {item!r}: empty value; write e.g. --set bandwidth=0.3,1")
        sets[key] = values
    return sets


def resolve_jobs(text: str | int, n_runs: int, device: Any = None) -> int:
    """`auto`: independent runs scale better than threads on small CPU models (and 2 intra-op threads
    on a busy CPU spin-wait badly), so one process per core (each with --threads, default 1); one run
    per GPU on CUDA (`device`: a torch.device, None for CPU-only work)."""
    if str(text) == "auto":
        if device is not None and device.type == "cuda":
            import torch

            return max(1, min(n_runs, torch.cuda.device_count()))
        return max(1, min(n_runs, os.cpu_count() or 1))
    try:
        jobs = int(text)
    except ValueError:
        raise UsageError(f"--jobs {text}: expected a positive int or auto") from None
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: must be at least 1")
    return jobs


def benchmark_choices() -> list[str]:
    """`auto` and every registered benchmark (bench.benchmarks)."""
    from bench.benchmarks import choices

    return choices()


def add_benchmark_option(p: argparse.ArgumentParser, help: str = "ground truth (default: auto)") -> None:
    p.add_argument("--benchmark", choices=benchmark_choices(), default="auto", help=help)


def add_data_dir_option(p: argparse.ArgumentParser, what: str = "NB-101 and CIFAR-10") -> None:
    p.add_argument("--data-dir", type=Path, default=None, help=f"where bench.data put {what}")

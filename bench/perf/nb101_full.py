"""Benchmark of the full NAS-Bench-101 table (bench.truth.nb101_full) on a SYNTHETIC file the size of
nasbench_full.tfrecord: 423,624 fake architectures x 4 budgets x 3 repeats = 5,083,488 records.

    python -m bench.perf nb101 --full [--n-archs 423624] [--n-real 20000] [--load-tries 3] [--seed 0]
                                      [--dir DIR] [--keep] [--strict]

Writes the file (~2 GB) in the official format, converts it once (timed, no target), then measures
what every later process pays: the cache load in a fresh process (best of --load-tries) and its peak
RSS, against the targets load <= 1 s and RSS <= 1 GB, and lookups per second at each budget. Every
metric in the file is random: the numbers measure speed only. The work directory is deleted after
unless --keep or --dir.
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.perf.nb101 import REPEATS, Clock, fresh_load, real_specs, write_synthetic
from bench.perf.nb101 import main as nb101_main
from bench.search.graph import clear_hash_cache
from bench.truth.nb101_full import FULL_BUDGETS, NB101FullTable

TABLE = "bench.truth.nb101_full:NB101FullTable"


@dataclass(frozen=True)
class Targets:
    """Acceptance targets on the project's 2-core machine."""

    load_s: float = 1.0
    rss_mb: float = 1024.0


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.iterdir()) / 2**20


def time_budgets(table: NB101FullTable, written: dict, specs: list, seed: int) -> list[tuple]:
    """(budget, hash lookups/s single, batched, spec lookups/s, halfway spec lookups/s) per budget,
    wall clock; values spot-checked against what was written."""
    rng = np.random.default_rng(seed + 1)
    hashes = written["hashes"]
    k = min(100_000, len(hashes))
    picks = rng.integers(0, len(hashes), k)
    sample = hashes[picks].tolist()
    table.query_hash(sample[0])  # builds the lazy single-lookup index, outside the timings
    spec_sample = random.Random(seed).sample(specs, min(len(specs), 5_000))
    out = []
    for column, budget in enumerate(FULL_BUDGETS):
        with Clock() as c_single:
            for h in sample:
                table.query_hash(h, budget)
        with Clock() as c_batch:
            batch = table.query_hashes(sample, budget=budget)
        want = written["valid"][picks[:1000]] - 0.01 * column
        assert np.allclose(batch.valid_acc[:1000], want), budget
        clear_hash_cache()
        with Clock() as c_spec:
            for s in spec_sample:
                table.query(s.matrix, s.ops, budget)
        with Clock() as c_half:
            for s in spec_sample:
                table.query_halfway(s.matrix, s.ops, budget)
        n = len(spec_sample)
        out.append((budget, k / c_single.wall, k / c_batch.wall, n / c_spec.wall, n / c_half.wall))
    return out


def run(args: argparse.Namespace, workdir: Path) -> bool:
    tg = Targets()
    n_archs, n_real = args.n_archs, min(args.n_real, args.n_archs)
    n_records = n_archs * len(FULL_BUDGETS) * REPEATS
    path = workdir / "SYNTHETIC_nasbench_full.tfrecord"
    print(
        f"SYNTHETIC data: {n_archs:,} fake architectures x {len(FULL_BUDGETS)} budgets x {REPEATS} repeats "
        f"= {n_records:,} records in the official format ({n_real:,} with real specs and hashes); "
        f"random metrics, timings only.\nfile: {path}",
        flush=True,
    )
    specs = real_specs(n_real, args.seed)
    with Clock() as c_write:
        written = write_synthetic(path, n_archs, specs, args.seed, budgets=FULL_BUDGETS)
    size_mb = path.stat().st_size / 2**20
    print(f"written: {size_mb:,.0f} MB in {c_write.wall:.0f} s; converting (once)...", flush=True)
    with Clock() as c_conv:
        table = NB101FullTable.load(path)
    assert len(table) == n_archs, (len(table), n_archs)
    cache = path.with_name(path.name.removesuffix(".tfrecord") + NB101FullTable.cache_suffix)
    cache_mb = _dir_mb(cache)
    del table
    path.unlink()  # ~2 GB; every load from here on reads the cache alone
    loads = fresh_load(cache, tries=args.load_tries, table=TABLE)
    assert all(x["n"] == n_archs for x in loads), loads
    load_s = min(x["load_s"] for x in loads)
    load_cpu = min(x["load_cpu_s"] for x in loads)
    rss = max(x["rss_mb"] for x in loads)
    table = NB101FullTable.load(cache)
    per_budget = time_budgets(table, written, specs, args.seed)
    del table
    shutil.rmtree(cache)

    ok = load_s <= tg.load_s and rss <= tg.rss_mb
    rows = [
        (f"file writing ({size_mb:,.0f} MB)", f"{c_write.wall:.0f} s", "", ""),
        (f"conversion incl. cache write ({cache_mb:,.0f} MB)", f"{c_conv.wall:.0f} s", "", ""),
        (
            f"cache load, fresh process (best of {args.load_tries})",
            f"{load_s:.3f} s (cpu {load_cpu:.3f} s)",
            f"<= {tg.load_s:.0f} s",
            "PASS" if load_s <= tg.load_s else "FAIL",
        ),
        (
            f"peak RSS after load (max of {args.load_tries})",
            f"{rss:.0f} MB",
            f"<= {tg.rss_mb:.0f} MB",
            "PASS" if rss <= tg.rss_mb else "FAIL",
        ),
    ]
    header = f"{'measurement':<48} {'value':>24}  {'target':>10}  result"
    print("\n" + header + "\n" + "-" * len(header))
    for name, value, target, result in rows:
        print(f"{name:<48} {value:>24}  {target:>10}  {result}")
    print(
        f"\nlookups per second at each budget (wall clock; {n_archs:,} archs; hash lookups of "
        f"{min(100_000, n_archs):,} random hashes, spec lookups of {min(5_000, len(specs)):,} real specs)"
    )
    header = f"{'budget':>6}  {'query_hash':>12}  {'query_hashes':>12}  {'query':>10}  {'query_halfway':>13}"
    print(header + "\n" + "-" * len(header))
    for budget, single, batch, spec, half in per_budget:
        print(f"{budget:>6}  {single:>12,.0f}  {batch:>12,.0f}  {spec:>10,.0f}  {half:>13,.0f}")
    print(
        f"\noverall (load and RSS targets, wall clock): {'PASS' if ok else 'FAIL'}. The cache is a "
        "directory of memory-mapped .npy columns: a load reads the hash and spec-index columns, a query "
        "its row's pages."
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.perf nb101_full ...` is `python -m bench.perf nb101 --full ...`."""
    return nb101_main([*(argv or []), "--full"])

"""NAS-Bench-101's full table: every budget (108, 4, 12, 36 epochs) x 3 repeats, searched on CIFAR-10.

It holds everything `nb101` does (its 108-epoch results are the same runs), so `--benchmark auto`
prefers it when installed; search data and notes are nb101's.
"""

from __future__ import annotations

from typing import Any

from bench.benchmarks.nb101 import NB101
from bench.benchmarks.registry import register_benchmark
from bench.truth.base import GroundTruth

DOWNLOAD_FULL_TABLE = "run `python -m bench.data download nb101-full` (or pass --data-dir)"


@register_benchmark("nb101-full")
class NB101Full(NB101):
    budgets = (108, 4, 12, 36)  # 108 first: the standard budget
    auto_priority = 3  # above nb101: a superset of it
    table_path = "nb101_full"
    table_missing = f"nasbench_full.tfrecord is not installed; {DOWNLOAD_FULL_TABLE}"

    def open_table(self, paths: Any) -> GroundTruth:
        from bench.truth.nb101_full import NB101FullTable

        return NB101FullTable.load(paths.nb101_full)

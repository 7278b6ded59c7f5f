"""NAS-Bench-101: the published table (108 epochs, 3 repeats) searched on CIFAR-10."""

from __future__ import annotations

from typing import Any

from bench.benchmarks.base import Benchmark
from bench.benchmarks.registry import register_benchmark
from bench.truth.base import GroundTruth

DOWNLOAD_TABLE = "run `python -m bench.data download nb101` (or pass --data-dir)"
DOWNLOAD_CIFAR10 = "run `python -m bench.data download cifar10` (or pass --data-dir)"


@register_benchmark("nb101")
class NB101(Benchmark):
    title = "NAS-Bench-101 (CIFAR-10)"
    budgets = (108,)
    repeats = 3
    auto_priority = 2  # the real benchmark, whenever it is installed
    # Where bench.data's installed paths keep this table's file, and what to say when it is absent.
    table_path: str = "nb101"
    table_missing: str = f"the NAS-Bench-101 file is not installed; {DOWNLOAD_TABLE}"

    def missing(self, paths: Any, search: bool) -> str | None:
        if getattr(paths, self.table_path) is None:
            return self.table_missing
        if search and paths.cifar10 is None:
            return f"CIFAR-10 is not installed; {DOWNLOAD_CIFAR10}"
        return None

    def open_table(self, paths: Any) -> GroundTruth:
        from bench.truth.nb101 import NB101Table

        return NB101Table.load(paths.nb101)

    def search_data(self, cfg: Any, paths: Any) -> Any:
        """CIFAR-10's training images, halved into weight and architecture data."""
        from bench.data.splits import load_cifar10_search_data

        return load_cifar10_search_data(paths.cifar10, cfg.train_portion, cfg.data_limit, augment=cfg.augment)

    def run_note(self, best_test_error: float | None) -> str:
        return (
            "NAS-Bench-101 (CIFAR-10, 108 epochs, 3 repeats); "
            "regret against the space's best single-run test error"
        )

    def blackbox_note(self) -> str:
        return (
            "NAS-Bench-101 (CIFAR-10, 108 epochs); simulated seconds = the table's training time of each "
            "repeat queried; regret against the space's best single-run test error"
        )

    def regret_reference(self) -> str:
        return (
            "test regret = mean test error of the 3 NAS-Bench-101 repeats minus the space's best "
            "single-run NAS-Bench-101 test error"
        )

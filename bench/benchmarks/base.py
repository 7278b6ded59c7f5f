"""What every benchmark answers: the one base class of `bench.benchmarks`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from bench.truth.base import GroundTruth


class Benchmark:
    """One ground-truth table and everything a run needs to be scored against it.

    A subclass sets the class attributes and implements `open_table` and `search_data`; every other
    method has a default that suits a table with nothing to install and nothing to adjust.
    """

    name: ClassVar[str] = ""  # set by @register_benchmark
    # Figure titles and captions: what the numbers are, e.g. "NAS-Bench-101 (CIFAR-10)".
    title: ClassVar[str] = ""
    # Said beside a number wherever it could be mistaken for NAS-Bench-101's ("" when it is NB-101's).
    caveat: ClassVar[str] = ""
    # Training budgets (epochs) the table holds; the first is the one a query without a budget gets.
    budgets: ClassVar[tuple[int, ...]] = ()
    repeats: ClassVar[int] = 3  # training repeats per architecture (the epochs.csv columns per repeat)
    # `--benchmark auto` takes the installed benchmark with the highest priority; None: never chosen.
    auto_priority: ClassVar[int | None] = None
    # Whether `python -m bench.tabulate` can fill its table (a lazily trained ground truth).
    tabulates: ClassVar[bool] = False

    # ---- locating and opening ----------------------------------------------------------------------
    def locate(self, data_dir: Path | None) -> Any:
        """The installed data this benchmark reads (passed back to open_table and search_data; it must
        pickle, for workers). Default: bench.data's installed paths."""
        from bench.data.install import locate

        return locate(data_dir)

    def missing(self, paths: Any, search: bool) -> str | None:
        """None when everything is installed, else the problem and the fix in one line. `search`:
        whether the supernet's search data is needed too (black-box runs need the table only)."""
        return None

    def open_table(self, paths: Any) -> GroundTruth:
        """The ground-truth table (may take seconds; called once per process)."""
        raise NotImplementedError

    def search_data(self, cfg: Any, paths: Any) -> Any:
        """The run's search data (a bench.data.splits.SearchData) for a RunConfig `cfg`."""
        raise NotImplementedError

    # ---- runs ---------------------------------------------------------------------------------------
    def adjustments(self, cfg: Any) -> dict[str, tuple[Any, str]]:
        """Settings of a resolved preset that cannot work on this benchmark: key -> (value, reason).
        RunConfig.resolve applies them unless overridden and records each in `benchmark_overrides`."""
        return {}

    # ---- what results say about it ------------------------------------------------------------------
    def run_note(self, best_test_error: float | None) -> str:
        """config.json's `benchmark_note` of a one-shot run."""
        return (
            f"ground truth '{self.name}' ({self.repeats} repeats); regret against the space's best test error"
        )

    def blackbox_note(self) -> str:
        """config.json's `benchmark_note` of a black-box run."""
        return f"ground truth '{self.name}'"

    def regret_reference(self) -> str:
        """What the test regret of a figure is measured against."""
        return (
            f"test regret = mean test error minus the best test error that the '{self.name}' ground truth "
            "reported for the space"
        )

    def figure_title(self) -> str:
        return self.title or f"benchmark '{self.name}'"

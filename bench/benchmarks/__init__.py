"""Benchmarks as plug-ins: one module per ground-truth table, registered by name.

A benchmark knows where its table lives and how to open it, the search data supernets train on for it,
what it changes in a run's config, the budgets and repeats its table holds and how captions describe
it. Every other module asks `get_benchmark(name)`; `resolve` turns `auto` into a name. Adding a
benchmark is one module here (docs/adding_a_benchmark.md).

May import: bench.errors, bench.settings, bench.search, bench.truth, bench.data (the last three lazily
where they pull in torch or a table). Never bench.results, bench.runs or anything above.
"""

from bench.benchmarks.base import Benchmark
from bench.benchmarks.registry import (
    UnknownBenchmarkError,
    available,
    choices,
    get_benchmark,
    register_benchmark,
    resolve,
    with_budgets,
)

__all__ = [
    "Benchmark",
    "UnknownBenchmarkError",
    "available",
    "choices",
    "get_benchmark",
    "register_benchmark",
    "resolve",
    "with_budgets",
]

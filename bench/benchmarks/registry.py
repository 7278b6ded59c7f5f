"""Benchmarks by name: `@register_benchmark("name")` on a Benchmark subclass in any module of this
package (found without a list, like optimizers/registry.py)."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.benchmarks.base import Benchmark
from bench.errors import ConfigError, UsageError

log = logging.getLogger(__name__)
B = TypeVar("B", bound=type[Benchmark])
AUTO = "auto"
_NOT_PLUGINS = {"base", "registry"}
_REGISTRY: dict[str, Benchmark] = {}


class UnknownBenchmarkError(ConfigError, KeyError):
    """A benchmark name nobody registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_benchmark(name: str) -> Callable[[B], B]:
    """Class decorator: make a benchmark available to `--benchmark name`."""

    def deco(cls: B) -> B:
        known = _REGISTRY.get(name)
        if known is not None and type(known) is not cls:
            raise ValueError(f"benchmark name {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls()
        return cls

    return deco


def _load_plugins() -> None:
    import bench.benchmarks

    for info in pkgutil.iter_modules(bench.benchmarks.__path__):
        if info.name not in _NOT_PLUGINS and not info.name.startswith("_"):
            importlib.import_module(f"bench.benchmarks.{info.name}")


def available() -> list[str]:
    """Every registered benchmark name, sorted."""
    _load_plugins()
    return sorted(_REGISTRY)


def choices() -> list[str]:
    """What a `--benchmark` option accepts: `auto` and every registered name."""
    return [AUTO, *available()]


def with_budgets() -> list[str]:
    """The registered benchmarks whose tables hold several training budgets (what per-budget ground
    truth and Hyperband over epochs need), sorted."""
    return [n for n in available() if len(_REGISTRY[n].budgets) > 1]


def get_benchmark(name: str) -> Benchmark:
    names = available()
    if name not in _REGISTRY:
        raise UnknownBenchmarkError(f"unknown benchmark {name!r}; choose one of: {', '.join(names)}")
    return _REGISTRY[name]


def resolve(requested: str, data_dir: Path | None = None, *, search: bool = True) -> tuple[str, Any]:
    """The benchmark a command runs on and its installed data (Benchmark.locate).

    `auto`: the installed benchmark of highest `auto_priority` (NAS-Bench-101 when its table, and for a
    search CIFAR-10, are installed; else the embedded digits benchmark, with a warning saying how to get
    the real data). A named benchmark that is not installed is a UsageError naming the fix.
    """
    if requested != AUTO:
        bench = get_benchmark(requested)
        paths = bench.locate(data_dir)
        problem = bench.missing(paths, search)
        if problem is not None:
            raise UsageError(f"--benchmark {requested}: {problem}")
        return requested, paths
    ranked = sorted(
        (b for b in map(get_benchmark, available()) if b.auto_priority is not None),
        key=lambda b: -(b.auto_priority or 0),
    )
    skipped: list[tuple[Benchmark, str]] = []
    for bench in ranked:
        paths = bench.locate(data_dir)
        problem = bench.missing(paths, search)
        if problem is None:
            # A skipped variant of the chosen benchmark (nb101-full over nb101) is an optional extra,
            # not a fallback worth a warning.
            fallback = [f"{b.name}: {p}" for b, p in skipped if not isinstance(b, type(bench))]
            extras = [f"{b.name}: {p}" for b, p in skipped if isinstance(b, type(bench))]
            if fallback:
                log.warning("%s -- so using the %s", "; ".join(fallback), bench.figure_title().upper())
            if extras:
                log.debug("%s -- using %s", "; ".join(extras), bench.name)
            return bench.name, paths
        skipped.append((bench, problem))
    raise UsageError(
        "--benchmark auto: no benchmark is installed; " + "; ".join(f"{b.name}: {p}" for b, p in skipped)
    )

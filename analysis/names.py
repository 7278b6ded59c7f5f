"""Names a reader understands: optimizers as the papers spell them, benchmarks with their caveats."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

# The papers' order of the original competitors (registry keys); every other registered optimizer
# follows in alphabetical order, so a new plug-in appears in every figure without editing this file.
PAPER_ORDER = ("darts", "pcdarts", "gdas", "sdartsrs", "sdartsadv", "msdarts", "rsws", "enas")
# Spellings older results directories used for a registered optimizer.
_ALIASES = {"randomws": "rsws"}


def optimizer_key(name: str) -> str:
    """A spelling-insensitive key: `SDARTS-RS`, `sdarts_rs` and `sdartsrs` are one optimizer."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    return _ALIASES.get(key, key)


@cache
def registered() -> dict[str, tuple[str, str]]:
    """key -> (registered name, label) of every optimizer plug-in, in display order. Imported on first
    use only: the registry pulls in torch, which the analysis otherwise never needs."""
    from optimizers.registry import labels

    by_key = {optimizer_key(name): (name, label) for name, label in labels().items()}
    order = [k for k in PAPER_ORDER if k in by_key] + sorted(k for k in by_key if k not in PAPER_ORDER)
    return {k: by_key[k] for k in order}


def display_name(optimizer: str) -> str:
    """`msdarts` -> `MS-DARTS` (the plug-in's `label`); unknown names are shown as they are."""
    entry = registered().get(optimizer_key(optimizer))
    return entry[1] if entry else str(optimizer)


def is_msdarts(optimizer: str) -> bool:
    return optimizer_key(optimizer) == "msdarts"


def optimizer_rank(optimizer: str) -> int:
    """Position in display order (the papers' order, then the rest by name); unknown ones come last."""
    keys = list(registered())
    key = optimizer_key(optimizer)
    return keys.index(key) if key in keys else len(keys)


def optimizer_of_label(label: str) -> str | None:
    """The registry key of the optimizer a figure label (`DrNAS` or `DARTS [unrolled=True]`) shows."""
    base = str(label).split(" [", 1)[0]
    for key, (_, shown) in registered().items():
        if shown == base:
            return key
    return None


def unknown_optimizers(requested: Sequence[str]) -> list[str]:
    """The names in `requested` that no plug-in registered (spelling-insensitive)."""
    return [name for name in requested if optimizer_key(name) not in registered()]


def _benchmark(name: str) -> Any:
    """The registered benchmark called `name`, or None (results of a benchmark not registered here)."""
    from bench.benchmarks import UnknownBenchmarkError, get_benchmark

    try:
        return get_benchmark(name)
    except UnknownBenchmarkError:
        return None


def benchmark_title(benchmark: str) -> str:
    """What the numbers are, stated where a reader of a figure will see it."""
    found = _benchmark(benchmark)
    return found.figure_title() if found is not None else f"benchmark '{benchmark}'"


def regret_reference(benchmark: str) -> str:
    """What the test regret is measured against, per benchmark."""
    found = _benchmark(benchmark)
    if found is not None:
        return found.regret_reference()
    return (
        f"test regret = mean test error minus the best test error that the '{benchmark}' ground truth "
        "reported for the space"
    )

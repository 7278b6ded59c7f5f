"""Names a reader understands: optimizers as the papers spell them, benchmarks with their caveats."""

from __future__ import annotations

import re

# Canonical order (the papers' order) and spelling; keys are registry names with punctuation removed,
# so `sdarts_rs`, `sdarts-rs` and `SDARTS-RS` all map to the same display name.
_DISPLAY: dict[str, str] = {
    "darts": "DARTS",
    "pcdarts": "PC-DARTS",
    "gdas": "GDAS",
    "sdartsrs": "SDARTS-RS",
    "sdartsadv": "SDARTS-ADV",
    "msdarts": "MS-DARTS",
    "rsws": "RSWS",
    "randomws": "RSWS",
    "enas": "ENAS",
}
_ORDER = list(dict.fromkeys(_DISPLAY.values()))


def optimizer_key(name: str) -> str:
    """A spelling-insensitive key: `SDARTS-RS`, `sdarts_rs` and `sdartsrs` are one optimizer."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def display_name(optimizer: str) -> str:
    """`msdarts` -> `MS-DARTS`; unknown names are shown as they are."""
    return _DISPLAY.get(optimizer_key(optimizer), str(optimizer))


def is_msdarts(optimizer: str) -> bool:
    return optimizer_key(optimizer) == "msdarts"


def optimizer_rank(optimizer: str) -> int:
    """Position in the papers' order; unknown optimizers come last."""
    name = display_name(optimizer)
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


def benchmark_title(benchmark: str) -> str:
    """What the numbers are, stated where a reader of a figure will see it."""
    if benchmark == "digits":
        return "embedded digits benchmark — not NAS-Bench-101"
    if benchmark == "nb101":
        return "NAS-Bench-101 (CIFAR-10)"
    return f"benchmark '{benchmark}'"


def regret_reference(benchmark: str) -> str:
    """What the test regret is measured against, per benchmark."""
    if benchmark == "nb101":
        return (
            "test regret = mean test error of the 3 NAS-Bench-101 repeats minus the space's best "
            "single-run NAS-Bench-101 test error"
        )
    if benchmark == "digits":
        return (
            "test regret = mean test error of the 3 repeats minus the lowest mean test error of the "
            "fully tabulated space (embedded digits benchmark); empty where the space is not tabulated"
        )
    return (
        f"test regret = mean test error minus the best test error that the '{benchmark}' ground truth "
        "reported for the space"
    )

"""The embedded digits benchmark: NAS-Bench-101 cells trained by this harness on 8x8 digits, lazily
tabulated (bench.truth.digits); it ships with the package, so it runs with no download."""

from __future__ import annotations

from typing import Any

from bench.benchmarks.base import Benchmark
from bench.benchmarks.registry import register_benchmark
from bench.truth.base import GroundTruth
from bench.truth.digits_protocol import BUDGETS, RUN_PROTOCOL, DigitsProtocol

SUPERNET_STACKS = 3  # the supernet's stacks (Supernet's default, as NB-101's network)

# On digits' ~6 search steps per epoch a BN momentum below this leaves the running statistics near their
# initial values for most of the search.
DIGITS_MIN_BN_MOMENTUM = 0.1


@register_benchmark("digits")
class Digits(Benchmark):
    title = "embedded digits benchmark — not NAS-Bench-101"
    caveat = "embedded digits benchmark, not NAS-Bench-101"
    # NB-101-equivalent epochs: budget b trains b/108 of the full protocol's steps, each its own training
    # (bench.truth.digits_protocol.at_budget); space 1 ships at every budget.
    budgets = BUDGETS
    repeats = RUN_PROTOCOL.repeats
    auto_priority = 1  # always installed: the fallback
    tabulates = True

    def open_table(self, paths: Any) -> GroundTruth:
        from bench.truth.digits import DigitsBenchmark

        return DigitsBenchmark(protocol=RUN_PROTOCOL)

    def search_data(self, cfg: Any, paths: Any) -> Any:
        """The fixed search split of scikit-learn's 8x8 digits."""
        from bench.data.splits import load_digits_search_data

        return load_digits_search_data(cfg.train_portion, cfg.data_limit)

    def adjustments(self, cfg: Any, protocol: DigitsProtocol | None = None) -> dict[str, tuple[Any, str]]:
        """`protocol`: the digits ground truth searches are scored against (default `RUN_PROTOCOL`)."""
        ground_truth = RUN_PROTOCOL if protocol is None else protocol
        out: dict[str, tuple[Any, str]] = {}
        if (
            ground_truth.num_stacks == SUPERNET_STACKS
            and cfg.cells_per_stack != ground_truth.modules_per_stack
        ):
            # NAS-Bench-1Shot1's supernet mirrors NB-101's macro-architecture; on digits the mirror is the
            # ground-truth network, so a cell is searched in the network it is rated in.
            out["cells_per_stack"] = (
                ground_truth.modules_per_stack,
                f"the digits ground truth rates a cell in {ground_truth.num_stacks} stacks x "
                f"{ground_truth.modules_per_stack} cell(s); the supernet mirrors that network as "
                "NAS-Bench-1Shot1's mirrors NAS-Bench-101's",
            )
        if cfg.augment:
            out["augment"] = (
                False,
                "8x8 digits are not augmented (a flip changes a digit, a 4-pixel crop pad is half the image; "
                "the embedded ground truth trains unaugmented)",
            )
        for key in ("bn_momentum", "head_bn_momentum"):
            value = getattr(cfg, key)
            if value < DIGITS_MIN_BN_MOMENTUM:
                out[key] = (
                    DIGITS_MIN_BN_MOMENTUM,
                    f"digits has ~6 search steps per epoch; momentum {value} would leave the BN running "
                    "statistics near their initial values for most of the search",
                )
        return out

    def run_note(self, best_test_error: float | None) -> str:
        note = (
            "EMBEDDED digits benchmark (8x8 digits, NB-101 architectures trained by this harness), "
            "not NAS-Bench-101"
        )
        if best_test_error is None:
            note += (
                "; test_regret is empty because this space is not fully tabulated (python -m bench.tabulate)"
            )
        return note

    def blackbox_note(self) -> str:
        return (
            "EMBEDDED digits benchmark (8x8 digits, NB-101 cells trained by this harness), "
            "not NAS-Bench-101; simulated seconds = the recorded CPU training time of each repeat queried"
        )

    def regret_reference(self) -> str:
        return (
            "test regret = mean test error of the 3 repeats minus the lowest mean test error of the "
            "fully tabulated space (embedded digits benchmark); empty where the space is not tabulated"
        )

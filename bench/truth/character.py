"""The statistical character of a ground-truth table, beside NAS-Bench-101's, and its random baseline.

NAS-Bench-101's character (measured on the 1,000 real architectures of tests/assets/nb101_sample_1k.json,
108-epoch validation accuracy of one repeat): bigger, conv-heavier cells tend to win (Spearman of
accuracy with trainable parameters 0.48, with the number of conv3x3 vertices 0.53) and most cells train
well (5th / 50th / 95th percentile 87.2 / 91.7 / 93.9 %). `table_character` measures the same things on
any table (mean test accuracy over repeats), plus the rank agreement of its repeats and its cost, with
one piece of code for both, so the reference values printed beside a table are computed, not typed in.

`random_baseline` is the regret of picking an architecture uniformly at random: what an optimizer must
beat to have found anything.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import HarnessError
from bench.search.graph import CONV3X3, HASH_OPS
from bench.truth.base import ArchResult

__all__ = [
    "NB101_SAMPLE",
    "TARGETS",
    "Character",
    "CharacterError",
    "RandomBaseline",
    "character_of_results",
    "format_character",
    "nb101_reference",
    "random_baseline",
    "table_character",
]

# The 1,000 real NB-101 architectures the reference values come from (a copy of ../shared/data's).
NB101_SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "assets" / "nb101_sample_1k.json"

# What an embedded benchmark with NB-101's character must reach: name -> (op, bound).
TARGETS: dict[str, tuple[str, float]] = {
    "repeat_spearman": (">=", 0.8),
    "spearman_params": (">=", 0.35),
    "spearman_conv3x3": (">=", 0.35),
    "spread_5_95": ("<=", 0.15),
}


class CharacterError(HarnessError, ValueError):
    """Too few (or incomplete) models to measure a table's character or baseline."""


@dataclass(frozen=True)
class Character:
    """Rank correlations and accuracy percentiles of a table (accuracies as fractions)."""

    n_models: int
    spearman_params: float
    spearman_conv3x3: float
    p5: float
    p50: float
    p95: float
    repeat_spearman: float | None = None  # mean over repeat pairs; None with a single repeat
    repeat_spearman_min: float | None = None
    cpu_seconds: float | None = None  # mean CPU seconds per training repeat, where recorded
    accuracy: str = "mean test accuracy"

    @property
    def spread_5_95(self) -> float:
        return self.p95 - self.p5

    def meets(self, name: str) -> bool | None:
        """Whether the value `name` of TARGETS meets its bound (None when not measured)."""
        value = getattr(self, name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        op, bound = TARGETS[name]
        return value >= bound if op == ">=" else value <= bound

    def meets_all(self) -> bool:
        return all(self.meets(name) for name in TARGETS)


def character(
    accuracy: Sequence[float],
    params: Sequence[float],
    n_conv3x3: Sequence[int],
    repeats: np.ndarray | None = None,
    cpu_seconds: Iterable[float] = (),
    accuracy_name: str = "mean test accuracy",
) -> Character:
    """The character of a table from per-model columns; `repeats` (models x R) gives the repeat
    agreement (Spearman of every pair of repeat columns)."""
    from scipy.stats import spearmanr

    acc = np.asarray(accuracy, dtype=float)
    if len(acc) < 3:
        raise CharacterError(
            f"only {len(acc)} models stored: the character of a table needs at least 3; tabulate more "
            "(python -m bench.tabulate --benchmark digits --space K --limit N)"
        )
    p5, p50, p95 = (float(v) for v in np.percentile(acc, [5, 50, 95]))
    rho_rep = None
    rho_min = None
    if repeats is not None and repeats.shape[1] > 1:
        r = repeats.shape[1]
        rhos = [float(spearmanr(repeats[:, i], repeats[:, j])[0]) for i in range(r) for j in range(i + 1, r)]
        rho_rep, rho_min = float(np.mean(rhos)), float(min(rhos))
    cpu = np.array([c for c in cpu_seconds if c is not None], dtype=float)
    return Character(
        n_models=len(acc),
        spearman_params=float(spearmanr(acc, np.asarray(params, dtype=float))[0]),
        spearman_conv3x3=float(spearmanr(acc, np.asarray(n_conv3x3, dtype=float))[0]),
        p5=p5,
        p50=p50,
        p95=p95,
        repeat_spearman=rho_rep,
        repeat_spearman_min=rho_min,
        cpu_seconds=float(cpu.mean()) if cpu.size else None,
        accuracy=accuracy_name,
    )


def nb101_reference(path: str | os.PathLike = NB101_SAMPLE) -> Character:
    """NAS-Bench-101's character, from the sample of real architectures (108-epoch validation accuracy;
    the sample holds one repeat, so no repeat agreement)."""
    with open(path, encoding="utf-8") as f:
        sample = json.load(f)
    conv = HASH_OPS.index(CONV3X3)
    return character(
        sample["108_final_validation_accuracy"],
        sample["trainable_parameters"],
        [sum(1 for label in ops if label == conv) for ops in sample["operations"]],
        accuracy_name="108-epoch validation accuracy",
    )


def character_of_results(
    results: Sequence[ArchResult],
    ops: Sequence[Sequence[str]],
    cpu_seconds: Iterable[float] = (),
) -> Character:
    """The character of a table given as ArchResults (mean test accuracy) and each model's ops."""
    if any(r.params is None for r in results):
        raise CharacterError("every result needs its parameter count")
    return character(
        [r.test_acc_mean for r in results],
        [float(r.params) for r in results],  # type: ignore[arg-type]
        [sum(1 for op in o if op == CONV3X3) for o in ops],
        repeats=np.array([r.test_acc for r in results], dtype=float),
        cpu_seconds=cpu_seconds,
    )


def table_character(bench: object, specs: dict[str, tuple[np.ndarray, list[str]]]) -> Character:
    """The character of the stored part of a lazily tabulated table (e.g. DigitsBenchmark) over the
    models `specs` (hash -> (matrix, ops)) of a space; nothing is trained."""
    rows = bench.all_rows()  # type: ignore[attr-defined]
    results = bench.stored_results([h for h in specs if h in rows])  # type: ignore[attr-defined]
    hashes = sorted(results)
    cpu = [row[4] for h in hashes for row in rows[h].values()]
    return character_of_results([results[h] for h in hashes], [specs[h][1] for h in hashes], cpu)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def format_character(ours: Character, reference: Character | None, title: str) -> str:
    """A plain-text table: each property, this table's value, NAS-Bench-101's, and the target."""
    ref = reference

    def num(v: float | None, digits: int = 3) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    def target(name: str) -> str:
        op, bound = TARGETS[name]
        shown = f"{100 * bound:.0f} points" if name == "spread_5_95" else f"{bound:g}"
        met = ours.meets(name)
        return f"{op} {shown}" + ("" if met is None else ("  ok" if met else "  MISSED"))

    rows = [
        ("Spearman between repeats (mean of pairs)", num(ours.repeat_spearman), "not in the sample",
         target("repeat_spearman")),
        ("Spearman(accuracy, parameters)", num(ours.spearman_params), num(ref and ref.spearman_params),
         target("spearman_params")),
        ("Spearman(accuracy, #conv3x3 vertices)", num(ours.spearman_conv3x3),
         num(ref and ref.spearman_conv3x3), target("spearman_conv3x3")),
        ("accuracy 5th / 50th / 95th percentile, %", f"{_pct(ours.p5)} / {_pct(ours.p50)} / {_pct(ours.p95)}",
         "n/a" if ref is None else f"{_pct(ref.p5)} / {_pct(ref.p50)} / {_pct(ref.p95)}", ""),
        ("5th-95th percentile spread, points", _pct(ours.spread_5_95),
         "n/a" if ref is None else _pct(ref.spread_5_95), target("spread_5_95")),
        ("CPU seconds per training", num(ours.cpu_seconds, 2), "n/a (TPU hours)", ""),
    ]  # fmt: skip
    head = ("property", "this table", "NAS-Bench-101", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = [title, f"models: {ours.n_models} ({ours.accuracy})"]
    if ref is not None:
        lines.append(f"NAS-Bench-101: {ref.n_models} real architectures ({ref.accuracy})")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


# ---- the random baseline ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RandomBaseline:
    """Test regret of a uniformly random architecture of a space: each unique model weighted by how many
    of the space's raw architectures (topology x op choices) it is, i.e. what random search draws."""

    mean: float
    median: float
    p10: float
    p90: float
    n_models: int  # unique models
    n_architectures: int  # raw architectures (the sum of the weights)


def _weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches q % (NumPy's 'inverted_cdf' on the expanded
    sample)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, q / 100 * cum[-1], side="left")])


def random_baseline(
    test_errors: Sequence[float],
    best_test_error: float | None = None,
    counts: Sequence[int] | None = None,
) -> RandomBaseline:
    """Mean, median and 10-90 % band of the regret (mean test error minus the best) of a uniformly
    random architecture of a FULL table: `test_errors` has one mean test error per unique model and
    `counts` how many raw architectures each one is (SearchSpace.architecture_counts; default 1 each,
    uniform over unique models). `best_test_error` defaults to the table's own minimum (the digits
    convention); NB-101 passes its reference constant."""
    err = np.asarray(test_errors, dtype=float)
    w = np.ones(len(err)) if counts is None else np.asarray(counts, dtype=float)
    if err.size == 0 or np.isnan(err).any():
        raise CharacterError("the random baseline needs the test error of every model of the space")
    if w.shape != err.shape or (w <= 0).any():
        raise CharacterError("the random baseline needs one positive count per model")
    best = float(err.min()) if best_test_error is None else float(best_test_error)
    regret = err - best
    p10, p50, p90 = (_weighted_percentile(regret, w, q) for q in (10, 50, 90))
    mean = float((regret * w).sum() / w.sum())
    return RandomBaseline(mean, p50, p10, p90, int(err.size), int(w.sum()))

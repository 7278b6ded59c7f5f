"""How a table's training budgets agree: rank correlation between budgets and the accuracy each reaches,
beside NAS-Bench-101's, computed by one piece of code for both.

NAS-Bench-101's values come from the 1,000 real architectures of tests/assets/nb101_sample_1k.json, which
hold the final validation accuracy of one repeat at 4, 12, 36 and 108 epochs. A multi-fidelity method
(Hyperband, BOHB) lives on these numbers: a low budget is useful only as far as it ranks models as the
full budget does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bench.truth.base import ArchResult
from bench.truth.character import NB101_SAMPLE, CharacterError

__all__ = [
    "BudgetCharacter",
    "budget_character",
    "format_budget_character",
    "nb101_budget_reference",
    "stored_at_budgets",
    "table_budget_character",
]


@dataclass(frozen=True)
class BudgetCharacter:
    """Per budget (ascending) the accuracy's 5th/50th/95th percentiles and mean cost; per pair of budgets
    the Spearman rank correlation of the models' accuracies."""

    budgets: tuple[int, ...]
    n_models: int
    percentiles: dict[int, tuple[float, float, float]]
    spearman: dict[tuple[int, int], float]
    cpu_seconds: dict[int, float]  # mean seconds per training where recorded (may be empty)
    accuracy: str


def budget_character(
    accuracy: Mapping[int, Sequence[float]],
    cpu_seconds: Mapping[int, Sequence[float]] | None = None,
    accuracy_name: str = "validation accuracy",
) -> BudgetCharacter:
    """`accuracy`: budget -> one value per model, the models in the same order at every budget."""
    from scipy.stats import spearmanr

    budgets = tuple(sorted(accuracy))
    acc = {b: np.asarray(accuracy[b], dtype=float) for b in budgets}
    sizes = {len(a) for a in acc.values()}
    if len(budgets) < 2 or len(sizes) != 1 or min(sizes) < 3:
        raise CharacterError(
            "comparing budgets needs at least 2 budgets and the same >= 3 models at each; tabulate every "
            "budget (python -m bench.tabulate --benchmark digits --space K --budget B)"
        )
    pct = {b: tuple(float(v) for v in np.percentile(acc[b], [5, 50, 95])) for b in budgets}
    rho = {
        (b1, b2): float(spearmanr(acc[b1], acc[b2])[0])
        for i, b1 in enumerate(budgets)
        for b2 in budgets[i + 1 :]
    }
    cpu = {b: float(np.mean(v)) for b, v in (cpu_seconds or {}).items() if len(v)}
    return BudgetCharacter(budgets, sizes.pop(), pct, rho, cpu, accuracy_name)  # type: ignore[arg-type]


def nb101_budget_reference(path: str | os.PathLike = NB101_SAMPLE) -> BudgetCharacter:
    """NAS-Bench-101's budgets, from the sample of real architectures (one repeat's validation accuracy)."""
    with open(path, encoding="utf-8") as f:
        sample = json.load(f)
    return budget_character(
        {b: sample[f"{b}_final_validation_accuracy"] for b in (4, 12, 36, 108)},
        accuracy_name="final validation accuracy of one repeat",
    )


Stored = dict[int, dict[str, ArchResult]]


def stored_at_budgets(table: object, specs: Mapping[str, object], budgets: Sequence[int]) -> Stored:
    """budget -> hash -> result of the models of `specs` a lazily tabulated table (`table.at(budget)`,
    e.g. DigitsBenchmark) holds at EVERY budget that has any; nothing is trained."""
    stored = {b: table.at(b).stored_results(list(specs)) for b in budgets}  # type: ignore[attr-defined]
    stored = {b: s for b, s in stored.items() if s}  # a budget not tabulated yet is left out
    if not stored:
        raise CharacterError("no budget of this table is stored for these models; tabulate them first")
    common = set.intersection(*(set(s) for s in stored.values()))
    return {b: {h: s[h] for h in sorted(common)} for b, s in stored.items()}


def table_budget_character(stored: Stored, repeat: int | None = 0) -> BudgetCharacter:
    """The budgets of `stored` (from stored_at_budgets). `repeat`: that repeat's validation accuracy
    (NAS-Bench-101's sample holds one repeat), None: the mean over repeats."""
    budgets = tuple(stored)
    hashes = list(next(iter(stored.values())))

    def value(b: int, h: str) -> float:
        r = stored[b][h]
        return r.valid_acc[repeat] if repeat is not None else r.valid_acc_mean

    return budget_character(
        {b: [value(b, h) for h in hashes] for b in budgets},
        {b: [t for h in hashes for t in stored[b][h].train_time] for b in budgets},
        accuracy_name=f"validation accuracy of repeat {repeat}"
        if repeat is not None
        else "mean validation accuracy of the repeats",
    )


def format_budget_character(columns: Mapping[str, BudgetCharacter], title: str) -> str:
    """A Markdown table: each budget's percentiles and cost, then each pair's Spearman, one column per
    table (e.g. "digits, repeat 0", "NAS-Bench-101")."""
    names = list(columns)
    budgets = sorted(set().union(*(c.budgets for c in columns.values())))
    rows: list[tuple[str, ...]] = []
    for b in budgets:
        cells = []
        for c in columns.values():
            p = c.percentiles.get(b)
            cells.append("n/a" if p is None else " / ".join(f"{100 * v:.1f}" for v in p))
        rows.append((f"budget {b}: accuracy 5th / 50th / 95th percentile, %", *cells))
    pairs = sorted(set().union(*(c.spearman for c in columns.values())), key=lambda p: (p[1] != 108, p))
    for pair in pairs:
        cells = [f"{c.spearman[pair]:.3f}" if pair in c.spearman else "n/a" for c in columns.values()]
        rows.append((f"Spearman(budget {pair[0]}, budget {pair[1]})", *cells))
    for b in budgets:
        cells = [f"{c.cpu_seconds[b]:.2f}" if b in c.cpu_seconds else "n/a" for c in columns.values()]
        if any(cell != "n/a" for cell in cells):
            rows.append((f"budget {b}: seconds per training", *cells))
    head = ("property", *names)
    lines = [title, *(f"- {n}: {c.n_models} models, {c.accuracy}" for n, c in columns.items()), ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(" --- " for _ in head) + "|")
    lines.extend("| " + " | ".join(r) + " |" for r in rows)
    return "\n".join(lines)

"""What a run's tables hold: the columns of epochs.csv (per-repeat ones follow the benchmark's `repeats`),
their meaning, the correlation tables' columns, and the one builder of an epochs.csv row."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# 2: hessian_eig_max became |lambda_max| (as SDARTS/MS-DARTS report it) beside the new
# hessian_lambda_max; config.json gained the protocol settings (presets paper/corrected/quick); the
# one-shot accuracy re-estimates BN (the eval-mode value in the `_evalbn` columns); correlation files.
RESULTS_VERSION = 2

# NAS-Bench-101 and the digits benchmark train every architecture three times; a benchmark with another
# count passes its own `repeats` (bench.benchmarks.Benchmark.repeats).
DEFAULT_REPEATS = 3
REPEATED = ("valid_acc", "test_acc")  # the ground-truth columns recorded once per repeat

_HEAD: tuple[str, ...] = (
    "benchmark", "space", "optimizer", "tag", "seed", "epoch", "arch_hash", "matrix", "ops",
    "oneshot_train_loss", "oneshot_train_acc", "oneshot_valid_loss", "oneshot_valid_acc",
    "oneshot_valid_loss_evalbn", "oneshot_valid_acc_evalbn",
)  # fmt: skip
_TAIL: tuple[str, ...] = (
    "valid_acc_mean", "test_acc_mean", "valid_error_mean", "test_error_mean", "test_regret",
    "hessian_eig_max", "hessian_lambda_max", "lr", "epoch_seconds", "hessian_seconds", "wallclock_s",
)  # fmt: skip


def repeat_columns(repeats: int = DEFAULT_REPEATS) -> tuple[str, ...]:
    """`valid_acc_r0..`, then `test_acc_r0..`: one column per repeat the benchmark trains."""
    return tuple(f"{name}_r{r}" for name in REPEATED for r in range(repeats))


# Per-budget ground truth (`--set truth_budgets=...`), after every standard column: a run without it
# writes the file it always wrote.
BUDGETED = ("valid_acc_mean", "test_acc_mean", "train_seconds")


def budget_columns(budgets: Sequence[int] = ()) -> tuple[str, ...]:
    """`valid_acc_mean_b4, test_acc_mean_b4, train_seconds_b4, ..._b12, ...` for each budget."""
    return tuple(f"{name}_b{b}" for b in budgets for name in BUDGETED)


def budgets_in(names: Iterable[str]) -> tuple[int, ...]:
    """The budgets whose columns a file holds, ascending."""
    prefix = f"{BUDGETED[0]}_b"
    found = {int(n[len(prefix) :]) for n in names if n.startswith(prefix) and n[len(prefix) :].isdigit()}
    return tuple(sorted(found))


def columns(repeats: int = DEFAULT_REPEATS, budgets: Sequence[int] = ()) -> tuple[str, ...]:
    """The columns of epochs.csv, in file order, for a benchmark with `repeats` training repeats and a
    run asking for the ground truth at `budgets` too."""
    return (*_HEAD, *repeat_columns(repeats), *_TAIL, *budget_columns(budgets))


def repeats_in(names: Iterable[str]) -> int:
    """The repeat count a file's columns hold (DEFAULT_REPEATS when it has no per-repeat column)."""
    found = [n for n in names if n.startswith(f"{REPEATED[0]}_r") and n[len(REPEATED[0]) + 2 :].isdigit()]
    return len(found) or DEFAULT_REPEATS


def ordered(names: Iterable[str]) -> list[str]:
    """The schema's columns first (per-repeat ones as many as `names` holds), then any others."""
    names = list(names)
    known = columns(repeats_in(names), budgets_in(names))
    return [*known, *(n for n in names if n not in known)]


COLUMNS: tuple[str, ...] = columns()
# Text columns: read as strings, never as numbers (a hash of digits, a tag like `0.1`).
TEXT_COLUMNS: tuple[str, ...] = ("benchmark", "optimizer", "tag", "arch_hash", "matrix", "ops")
# Wall-clock columns differ between otherwise identical runs; everything else is reproducible.
TIMING_COLUMNS: tuple[str, ...] = ("epoch_seconds", "hessian_seconds", "wallclock_s")

CORRELATION_COLUMNS: tuple[str, ...] = (
    "epoch", "n", "oneshot_acc_mean",
    "spearman_valid", "kendall_valid", "top10_overlap_valid",
    "spearman_test", "kendall_test", "top10_overlap_test",
    "seconds",
)  # fmt: skip
CORRELATION_ARCH_COLUMNS: tuple[str, ...] = (
    "epoch", "arch_hash", "oneshot_valid_loss", "oneshot_valid_acc", "valid_acc_mean", "test_acc_mean",
)  # fmt: skip

# What every column holds (docs/results.md renders them as its column table).
COLUMN_DOCS: dict[str, str] = {
    "benchmark": "ground truth of the run: nb101 (NAS-Bench-101) or digits (the embedded benchmark)",
    "space": "NAS-Bench-1Shot1 search space (1, 2 or 3)",
    "optimizer": "plug-in name",
    "tag": "the run's setting: preset plus --set overrides (its directory name)",
    "seed": "the run's seed",
    "epoch": "0-based search epoch",
    "arch_hash": "NB-101 hash of the discretized architecture looked up in this row (see lookup_alphas)",
    "matrix": "its pruned NB-101 adjacency matrix (JSON)",
    "ops": "its pruned NB-101 op list",
    "oneshot_train_loss": "mean training loss of the epoch's weight steps (training half)",
    "oneshot_train_acc": "their accuracy",
    "oneshot_valid_loss": "one-shot loss of the supernet on the whole validation half after the epoch",
    "oneshot_valid_acc": "its accuracy (NaN with eval_oneshot=false), BN statistics re-estimated at the "
    "evaluated weights (oneshot_bn)",
    "oneshot_valid_loss_evalbn": "the same loss with the running statistics the search left (eval mode)",
    "oneshot_valid_acc_evalbn": "its accuracy",
    "valid_acc_r0": "ground-truth validation accuracy, repeat 0 (r1, r2: the other repeats). One column "
    "per repeat of the benchmark: NAS-Bench-101 and digits have 3 (r0..r2); a benchmark with R repeats "
    "has r0..r(R-1), more columns or fewer, and a repeat the table lacks for an architecture is NaN",
    "valid_acc_r1": "ground-truth validation accuracy, repeat 1",
    "valid_acc_r2": "ground-truth validation accuracy, repeat 2",
    "test_acc_r0": "ground-truth test accuracy, repeat 0 (as many columns as valid_acc_r*)",
    "test_acc_r1": "ground-truth test accuracy, repeat 1",
    "test_acc_r2": "ground-truth test accuracy, repeat 2",
    "valid_acc_mean": "mean of the repeats' validation accuracies",
    "test_acc_mean": "mean of the repeats' test accuracies",
    "valid_error_mean": "1 - valid_acc_mean",
    "test_error_mean": "1 - test_acc_mean",
    "test_regret": "test_error_mean minus the space's best test error (NaN until the best is known)",
    "hessian_eig_max": "|lambda_max|, the absolute value of the largest algebraic eigenvalue of the "
    "validation loss's Hessian w.r.t. the alphas, as SDARTS/MS-DARTS report it (norm(max(eigvals))); "
    "NaN on epochs not measured",
    "hessian_lambda_max": "lambda_max itself, the largest algebraic eigenvalue (RobustDARTS' quantity; "
    "may be negative)",
    "lr": "learning rate of the epoch's weight steps",
    "epoch_seconds": "wall-clock seconds of the whole epoch (training, measurements, lookup)",
    "hessian_seconds": "wall-clock seconds of the Hessian measurement",
    "wallclock_s": "wall-clock seconds since the run started (resumes continue the count)",
    "valid_acc_mean_b4": "with --set truth_budgets=4,...: mean validation accuracy of the repeats trained "
    "for budget 4 (each budget its own training; one such triple per budget asked for, after every "
    "other column; absent without truth_budgets)",
    "test_acc_mean_b4": "mean test accuracy at budget 4",
    "train_seconds_b4": "mean training time of one repeat at budget 4, in the table's seconds "
    "(NAS-Bench-101: its recorded TPU seconds; digits: CPU seconds)",
}


def ground_truth(
    valid_acc: Sequence[float],
    test_acc: Sequence[float],
    *,
    repeats: int,
    best_test_error: float | None,
) -> dict[str, float]:
    """The ground-truth columns of a row: one per repeat (NaN where the table has fewer), their means,
    errors and the test regret (NaN while the space's best test error is unknown)."""
    row: dict[str, float] = {}
    for name, values in zip(REPEATED, (valid_acc, test_acc), strict=True):
        for r in range(repeats):
            row[f"{name}_r{r}"] = values[r] if r < len(values) else math.nan
    # The means are over the repeats the table holds (a missing repeat is not a zero).
    valid_mean, test_mean = float(np.mean(valid_acc)), float(np.mean(test_acc))
    row["valid_acc_mean"] = valid_mean
    row["test_acc_mean"] = test_mean
    row["valid_error_mean"] = 1.0 - valid_mean
    row["test_error_mean"] = 1.0 - test_mean
    row["test_regret"] = (1.0 - test_mean) - best_test_error if best_test_error is not None else math.nan
    return row


def budget_truth(
    budget: int, valid_acc: Sequence[float], test_acc: Sequence[float], train_time: Sequence[float]
) -> dict[str, float]:
    """The per-budget columns of one budget (means over the repeats the table holds)."""
    seconds = [t for t in train_time if math.isfinite(t)]
    return {
        f"valid_acc_mean_b{budget}": float(np.mean(valid_acc)),
        f"test_acc_mean_b{budget}": float(np.mean(test_acc)),
        f"train_seconds_b{budget}": float(np.mean(seconds)) if seconds else math.nan,
    }  # fmt: skip


def row(
    identity: Mapping[str, Any],
    architecture: Mapping[str, Any],
    measurements: Mapping[str, Any],
    truth: Mapping[str, float],
) -> dict[str, Any]:
    """One epochs.csv row: identity (benchmark .. epoch), the looked-up architecture (arch_hash, matrix,
    ops), the epoch's measurements and `ground_truth(...)`, in the schema's order."""
    return {**identity, **architecture, **measurements, **truth}

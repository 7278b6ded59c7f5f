"""Means, standard deviations and t-based confidence intervals across seeds, and paired tests.

Every aggregate carries its `n`, so whoever reads a number can see how many runs it rests on. With a
handful of seeds the normal approximation understates the uncertainty, hence Student's t. Optimizers
are compared with a reference (DARTS) on the seeds both ran, by the Wilcoxon signed-rank test: paired,
because a seed fixes the data order and initialization both runs share, and rank-based, because
regrets and eigenvalues across seeds are skewed and few.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student-t quantile; scipy.stats costs seconds to import

CI_LEVEL = 0.95
STAT_COLUMNS = ("mean", "std", "n", "ci_low", "ci_high")


def t_halfwidth(
    std: pd.Series | np.ndarray, n: pd.Series | np.ndarray, level: float = CI_LEVEL
) -> np.ndarray:
    """Half-width of the t-interval of a mean; NaN where n < 2 (one seed has no spread to speak of)."""
    n = np.asarray(n, dtype=float)
    std = np.asarray(std, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = stdtrit(np.where(n >= 2, n - 1, np.nan), 0.5 + level / 2.0)
        return np.where(n >= 2, q * std / np.sqrt(n), np.nan)


def describe(frame: pd.DataFrame, by: Sequence[str], value: str, level: float = CI_LEVEL) -> pd.DataFrame:
    """Per group of `by`: mean, sample std (ddof 1), n (non-NaN values) and the t-interval of the mean.

    NaN values are left out of every statistic (and so of n); groups with no value at all are dropped.
    """
    by = list(by)
    clean = frame.loc[frame[value].notna(), [*by, value]]
    if clean.empty:
        return pd.DataFrame(columns=[*by, *STAT_COLUMNS])
    grouped = clean.groupby(by, sort=True, dropna=False)[value]
    out = grouped.agg(mean="mean", std="std", n="count").reset_index()
    half = t_halfwidth(out["std"], out["n"], level)
    out["ci_low"] = out["mean"] - half
    out["ci_high"] = out["mean"] + half
    out["n"] = out["n"].astype(int)
    return out


def n_label(counts: Sequence[int] | pd.Series) -> str:
    """`n=5`, or `n=3–5` when the number of seeds changes along a curve."""
    values = [int(c) for c in counts]
    if not values:
        return "n=0"
    lo, hi = min(values), max(values)
    return f"n={hi}" if lo == hi else f"n={lo}–{hi}"


def fmt_pm(mean: float, std: float, digits: int = 4) -> str:
    """`0.1234 ± 0.0056`; a lone run has no std, so it says so instead of printing NaN."""
    if mean is None or not np.isfinite(mean):
        return "–"
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}g} (one run)"
    return f"{mean:.{digits}g} ± {std:.{digits - 1}g}"


# ---- paired comparisons against a reference optimizer ----------------------------------------------
ALPHA = 0.05
# With n pairs the smallest two-sided exact Wilcoxon p-value is 2 / 2**n: 0.0625 at n = 5, 0.031 at n = 6.
# Below 6 pairs no outcome could be significant at 0.05, so no test is reported (a bootstrap of <= 5
# paired differences has at most 126 distinct resamples and badly under-covers; it would only look
# decisive).
MIN_PAIRS = 6
PAIRED_COLUMNS = ("n_paired", "diff_mean", "p_value", "test", "significant")


@dataclass(frozen=True)
class PairedTest:
    """One optimizer against the reference on the seeds both ran: mean paired difference (this minus
    the reference), the two-sided Wilcoxon signed-rank p-value, and which test (or why none)."""

    n: int
    diff_mean: float
    p_value: float
    test: str

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < ALPHA)


def paired_test(
    values: Sequence[float], reference: Sequence[float], min_pairs: int = MIN_PAIRS
) -> PairedTest:
    """Wilcoxon signed-rank test of `values - reference` (pairs with a NaN are dropped; zero differences
    are dropped by the test, scipy's default). Exact for small samples without ties."""
    d = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return PairedTest(0, np.nan, np.nan, "no shared seeds")
    mean = float(d.mean())
    if n < min_pairs:
        return PairedTest(n, mean, np.nan, f"n={n} < {min_pairs}: too few pairs for a test")
    if not np.any(d):
        return PairedTest(n, 0.0, 1.0, "identical")
    from scipy.stats import wilcoxon  # lazy: scipy.stats takes seconds to import

    return PairedTest(n, mean, float(wilcoxon(d).pvalue), "Wilcoxon signed-rank")


def paired_vs(
    frame: pd.DataFrame, keys: Sequence[str], value: str, reference: str | None, group: str = "group",
    pair: str = "seed",
) -> pd.DataFrame:  # fmt: skip
    """Per `keys` x group: `paired_test` of the group's `value` against the `reference` group's on the
    same `pair` (seed) and keys. Columns: keys, group, PAIRED_COLUMNS; the reference's own row says
    'reference'; with no reference every test says so."""
    keys = list(keys)
    out = []
    clean = frame.loc[frame[value].notna(), [*keys, group, pair, value]]
    for key_values, sub in clean.groupby(keys, sort=True) if keys else [((), clean)]:
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        ref = sub[sub[group] == reference].groupby(pair)[value].mean() if reference is not None else None
        for g, rows in sub.groupby(group, sort=False):
            base = dict(zip(keys, key_values, strict=True)) | {group: g}
            if reference is None or ref is None or ref.empty:
                result = PairedTest(0, np.nan, np.nan, "no reference runs")
            elif g == reference:
                result = PairedTest(len(ref), 0.0, np.nan, "reference")
            else:
                mine = rows.groupby(pair)[value].mean()
                shared = mine.index.intersection(ref.index)
                result = paired_test(mine.loc[shared].to_numpy(), ref.loc[shared].to_numpy())
            out.append(base | {"n_paired": result.n, "diff_mean": result.diff_mean, "p_value": result.p_value,
                               "test": result.test, "significant": result.significant})  # fmt: skip
    return pd.DataFrame(out, columns=[*keys, group, *PAIRED_COLUMNS])


def reference_group(runs: pd.DataFrame, optimizer: str = "darts") -> str | None:
    """The group runs of `optimizer` belong to (its plain group first when settings differ), or None."""
    from analysis.names import optimizer_key

    mine = runs[runs["optimizer"].map(optimizer_key) == optimizer_key(optimizer)]
    if mine.empty:
        return None
    return str(mine.sort_values("group")["group"].iloc[0])


def fmt_ci(mean: float, low: float, high: float, digits: int = 4) -> str:
    """`0.1234 [0.1011, 0.1457]`; a lone run has no interval and says so."""
    if mean is None or not np.isfinite(mean):
        return "–"
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.{digits}g} (one run)"
    return f"{mean:.{digits}g} [{low:.{digits}g}, {high:.{digits}g}]"


def fmt_paired(diff_mean: float, p_value: float, test: str, digits: int = 3) -> str:
    """`+0.012, p=0.031 *` (significant at ALPHA), `+0.012, p=0.22`, or why there is no test."""
    if test == "reference":
        return "reference"
    if not np.isfinite(diff_mean):
        return f"– ({test})"
    diff = f"{diff_mean:+.{digits}g}"
    if not np.isfinite(p_value):
        return f"{diff} ({test})"
    return f"{diff}, p={p_value:.2g}" + (" *" if p_value < ALPHA else "")


PAIRED_NOTE = (
    "95 % CI: Student-t interval of the mean over seeds. vs DARTS: mean paired difference (this minus DARTS) "
    "over the seeds both ran, two-sided Wilcoxon signed-rank test, * = p < 0.05 (not corrected for "
    f"multiple comparisons); run only with >= {MIN_PAIRS} shared seeds: with 5 or fewer no outcome can "
    "reach p < 0.05 (the smallest exact p is 2/2^n = 0.0625 at n = 5)."
)


def seeds_per_line(
    stats: pd.DataFrame, order: Sequence[str] = (), keys: Sequence[str] = ("space",), group: str = "group"
) -> str:
    """`space 1: DARTS n=3, GDAS n=2–3; space 2: ...` from a describe() frame (its `n` column); groups in
    `order` first, in that order."""
    rank = {g: i for i, g in enumerate(order)}
    parts = []
    for key_values, sub in stats.groupby(list(keys), sort=True):
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        label = ", ".join(f"{k} {v}" for k, v in zip(keys, key_values, strict=True))
        groups = sorted(sub[group].unique(), key=lambda g: (rank.get(g, len(rank)), str(g)))
        lines = [f"{g} {n_label(sub.loc[sub[group] == g, 'n'])}" for g in groups]
        parts.append(f"{label}: " + ", ".join(lines))
    return "; ".join(parts)

"""Means, standard deviations and t-based confidence intervals across seeds.

Every aggregate carries its `n`, so whoever reads a number can see how many runs it rests on. With a
handful of seeds the normal approximation understates the uncertainty, hence Student's t.
"""

from __future__ import annotations

from collections.abc import Sequence

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

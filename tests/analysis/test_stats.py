"""analysis.stats against hand-computed values: t-intervals, the paired Wilcoxon test, and its formatting.

Exact two-sided Wilcoxon p-values are 2 * #{sign patterns with W <= observed} / 2^n; each case below
spells out the count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import stats

T_975_2 = 4.302652729911275  # Student t quantile, 97.5 %, 2 degrees of freedom (tables)


def test_t_interval_of_three_values() -> None:
    frame = pd.DataFrame({"g": ["a"] * 3 + ["b"], "v": [1.0, 2.0, 3.0, 5.0]})
    d = stats.describe(frame, ["g"], "v").set_index("g")
    assert d.loc["a", "mean"] == 2.0 and d.loc["a", "std"] == 1.0 and d.loc["a", "n"] == 3
    half = T_975_2 * 1.0 / np.sqrt(3)  # 2.4841
    assert d.loc["a", "ci_low"] == pytest.approx(2.0 - half) and d.loc["a", "ci_high"] == pytest.approx(
        2.0 + half
    )
    assert np.isnan(d.loc["b", "ci_low"])  # one seed: no interval


def test_wilcoxon_all_positive_six_pairs() -> None:
    # W- = 0: only the all-positive pattern of 2^6 = 64 reaches it; two-sided p = 2/64.
    t = stats.paired_test([1, 2, 3, 4, 5, 6], [0] * 6)
    assert t.n == 6 and t.diff_mean == 3.5 and t.p_value == pytest.approx(2 / 64) and t.significant
    assert t.test == "Wilcoxon signed-rank"


def test_wilcoxon_one_negative_rank() -> None:
    # d = 1,-2,3,4,5,6: W- = 2; patterns with W- <= 2: {}, {1}, {2} -> 3; p = 2*3/64 = 0.09375.
    t = stats.paired_test([1, -2, 3, 4, 5, 6], [0] * 6)
    assert t.p_value == pytest.approx(6 / 64) and not t.significant


def test_wilcoxon_seven_pairs() -> None:
    # |d| ranks 1..7 (0.25, 0.5, 1.5, 2, 2.5, 3, 3.5); negative ranks 1 and 7: W- = 8.
    # Subsets of {1..7} with sum <= 8: 1+1+1+2+2+3+4+5+5 = 24 -> p = 48/128 = 0.375.
    values = np.array([0.5, -0.25, 1.5, 2.0, 2.5, 3.0, -3.5]) + 10.0
    t = stats.paired_test(values, [10.0] * 7)
    assert t.p_value == pytest.approx(0.375) and t.diff_mean == pytest.approx(np.mean(values - 10.0))


def test_too_few_pairs_and_missing_values() -> None:
    t = stats.paired_test([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert t.n == 5 and t.diff_mean == 3.0 and np.isnan(t.p_value) and not t.significant
    assert "too few pairs" in t.test
    t = stats.paired_test([1, 2, np.nan, 4, 5, 6, 7], [0] * 7)  # the NaN pair is dropped
    assert t.n == 6 and t.p_value == pytest.approx(2 / 64)
    assert stats.paired_test([1.0] * 6, [1.0] * 6).test == "identical"
    assert stats.paired_test([], []).test == "no shared seeds"


def test_paired_vs_uses_shared_seeds_only() -> None:
    rows = [("DARTS", s, 1.0) for s in range(7)]  # DARTS seeds 0-6
    rows += [("GDAS", s, 1.0 + s + 1) for s in range(1, 8)]  # GDAS seeds 1-7: 6 shared with DARTS
    rows += [("PC-DARTS", s, 0.5) for s in range(3)]
    frame = pd.DataFrame(rows, columns=["group", "seed", "v"]).assign(space=1)
    out = stats.paired_vs(frame, ["space"], "v", "DARTS").set_index("group")
    assert out.loc["DARTS", "test"] == "reference"
    assert out.loc["GDAS", "n_paired"] == 6 and out.loc["GDAS", "diff_mean"] == pytest.approx(
        np.mean([2, 3, 4, 5, 6, 7])
    )
    assert out.loc["GDAS", "p_value"] == pytest.approx(2 / 64) and out.loc["GDAS", "significant"]
    assert out.loc["PC-DARTS", "n_paired"] == 3 and not out.loc["PC-DARTS", "significant"]
    none = stats.paired_vs(frame, ["space"], "v", None)
    assert set(none["test"]) == {"no reference runs"}


def test_reference_group_prefers_plain_darts() -> None:
    runs = pd.DataFrame(
        {"optimizer": ["gdas", "darts", "darts"], "group": ["GDAS", "DARTS [unrolled=True]", "DARTS"]}
    )
    assert stats.reference_group(runs) == "DARTS"
    assert stats.reference_group(runs[runs["optimizer"] == "gdas"]) is None


def test_formatting() -> None:
    assert stats.fmt_ci(0.5, 0.25, 0.75) == "0.5 [0.25, 0.75]"
    assert stats.fmt_ci(0.5, np.nan, np.nan) == "0.5 (one run)"
    assert stats.fmt_paired(0.0123, 0.031, "Wilcoxon signed-rank") == "+0.0123, p=0.031 *"
    assert stats.fmt_paired(-0.0123, 0.2, "Wilcoxon signed-rank") == "-0.0123, p=0.2"
    assert (
        stats.fmt_paired(0.01, np.nan, "n=3 < 6: too few pairs for a test")
        == "+0.01 (n=3 < 6: too few pairs for a test)"
    )
    assert stats.fmt_paired(0.0, np.nan, "reference") == "reference"


def test_seeds_per_line() -> None:
    curves = pd.DataFrame(
        {"space": [1, 1, 1, 2], "group": ["GDAS", "DARTS", "DARTS", "DARTS"], "n": [2, 3, 2, 5]}
    )
    assert (
        stats.seeds_per_line(curves, ["DARTS", "GDAS"])
        == "space 1: DARTS n=2–3, GDAS n=2; space 2: DARTS n=5"
    )


def test_tables_carry_intervals_and_paired_tests(grid) -> None:
    """The synthetic grid (fixture): DARTS, SDARTS-RS and MS-DARTS, three seeds (two at h=3)."""
    from analysis import figure3, regret, table4

    reg = regret.compute(grid).final.set_index(["space", "group"])
    assert (reg.loc[(1, "DARTS"), "vs_darts_test"]) == "reference"
    row = reg.loc[(1, "SDARTS-RS")]
    half = row["test_regret_ci_high"] - row["test_regret_mean"]
    assert half == pytest.approx(T_975_2 * row["test_regret_std"] / np.sqrt(3))
    assert row["vs_darts_n_paired"] == 3 and "too few" in row["vs_darts_test"]
    t4 = table4.compute(grid, "final").raw
    assert {"eig_ci_low", "eig_ci_high", "vs_darts_p_value"} <= set(t4.columns)
    assert "eig_ci_low" not in table4.compute(grid, "all").raw
    f3 = figure3.compute(grid)
    assert set(f3.final["n"]) == {2, 3} and "Seeds per line: space 1: DARTS n=3" in f3.caption

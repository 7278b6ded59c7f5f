"""`python -m analysis.regret RESULTS -o OUT`: test-regret curves and a final-epoch table.

NAS-Bench-1Shot1's view of a search: after every epoch the one-shot architecture is discretized and
looked up; its test regret (mean test error of the 3 repeats minus the space's best error) is plotted
against the epoch on a log scale, mean over seeds with a 95% t-band, one panel per space. The table
gives each optimizer's test error and regret at the final epoch, mean ± std and the 95 % t-interval,
with the seed count, and a paired Wilcoxon test of each optimizer against DARTS on the seeds both ran.

On NAS-Bench-101 the reference is the space's best single-run test error (the reference code's
choice); on the embedded digits benchmark it is the lowest mean test error of the fully tabulated
space, and regret is empty (reported) in spaces not yet tabulated.

Where the runs' config.json carries the table's random baseline (the regret of a uniformly random unique
model of the space, computed from the full table), the plot draws it (dashed, with its 10-90 % band)
and the table adds a "random architecture" row per space: an optimizer must beat it to have found
anything.

Writes regret.png/.pdf, regret_curves.csv, regret_final.csv/.md/.tex and, with problems, warnings.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import cli, export, issues, measures, plotting
from analysis.issues import Issue
from analysis.load import Results, machine_lines
from analysis.names import benchmark_title, regret_reference
from analysis.stats import (
    PAIRED_NOTE,
    describe,
    fmt_ci,
    fmt_paired,
    fmt_pm,
    paired_vs,
    reference_group,
    seeds_per_line,
)

STEM = "regret"
KEYS = ["space", "group"]
RANDOM = "random architecture"
BASELINE_COLUMNS = {"mean": "random_regret_mean", "p10": "random_regret_p10", "p90": "random_regret_p90"}


@dataclass
class Regret:
    curves: pd.DataFrame  # space, group, epoch, mean, std, n, ci_low, ci_high (of test_regret)
    final: pd.DataFrame  # one row per space x group
    issues: list[Issue]
    notes: list[str]
    baseline: pd.DataFrame  # space, random_regret_mean/p10/p90: the random architecture, where known


def random_baselines(res: Results) -> pd.DataFrame:
    """Per space, the regret of a uniformly random architecture recorded in the runs' config.json."""
    cols = {f"meta.random_baseline.{k}": v for k, v in BASELINE_COLUMNS.items()}
    if not set(cols) <= set(res.runs.columns):
        return pd.DataFrame(columns=["space", *cols.values()])
    frame = res.runs[["space", *cols]].rename(columns=cols)
    frame[list(cols.values())] = frame[list(cols.values())].apply(pd.to_numeric, errors="coerce")
    return frame.dropna().groupby("space", as_index=False).first()


def _stat(frame: pd.DataFrame, value: str, prefix: str) -> pd.DataFrame:
    d = describe(frame, KEYS, value)[[*KEYS, "mean", "std", "n", "ci_low", "ci_high"]]
    return d.rename(columns={"mean": f"{prefix}_mean", "std": f"{prefix}_std", "n": f"n_{prefix}",
                             "ci_low": f"{prefix}_ci_low", "ci_high": f"{prefix}_ci_high"})  # fmt: skip


def compute(res: Results) -> Regret:
    frame, found = measures.regrets(res)
    curves = describe(frame, ["space", "group", "epoch"], measures.REGRET)
    final = measures.at_final_epoch(frame)
    table = res.runs.groupby(KEYS).size().rename("n_selected").reset_index()
    table = table.merge(_stat(final, "test_error_mean", "test_error"), on=KEYS, how="left")
    table = table.merge(_stat(final, measures.REGRET, "test_regret"), on=KEYS, how="left")
    if "meta.best_test_error" in res.runs:
        ref = pd.to_numeric(res.runs["meta.best_test_error"], errors="coerce")
        table = table.merge(
            res.runs.assign(regret_reference=ref).groupby("space")["regret_reference"].max().reset_index(),
            on="space",
            how="left",
        )
    # Within a space regret = test error - a constant, so the paired test of the test error is the test
    # of the regret, and it works where no optimum is known too.
    paired = paired_vs(final, ["space"], "test_error_mean", reference_group(res.runs))
    table = table.merge(
        paired.rename(columns={c: f"vs_darts_{c}" for c in paired.columns[2:]}), on=KEYS, how="left"
    )
    for col in ("n_test_error", "n_test_regret"):
        table[col] = table[col].fillna(0).astype(int)
    table["n_left_out"] = table["n_selected"] - table["n_test_error"]
    order = res.groups()
    table["_order"] = table["group"].map(order.index)
    table = (
        table.sort_values(["space", "_order"]).drop(columns=["_order", "n_selected"]).reset_index(drop=True)
    )
    baseline = random_baselines(res)
    table = table.merge(baseline, on="space", how="left")
    problems = issues.dedupe([*res.issues_of(*measures.RUN_KINDS), *found])
    notes = [
        f"{benchmark_title(res.benchmark)}; {regret_reference(res.benchmark)}.",
        "final = the planned last search epoch of each complete run; mean ± std across runs (seeds); "
        "seeds = runs behind the test error, left out = incomplete runs (see warnings.txt).",
        PAIRED_NOTE,
    ]
    untabulated = sorted(table.loc[table["n_test_regret"] == 0, "space"].unique())
    if untabulated:
        notes.append(
            "test regret empty in space(s) " + ", ".join(map(str, untabulated)) + ": no optimum is known "
            "there (on digits: space not fully tabulated; python -m bench.tabulate); test error still shown."
        )
    if not baseline.empty:
        notes.append(
            f"{RANDOM}: test regret of a uniformly random unique model of the space, mean [10th, 90th "
            "percentile], computed from the full table."
        )
    notes.extend(machine_lines(res.runs))  # runs from other machines or harness versions
    if note := issues.short_note(problems):
        notes.append(note)
    return Regret(curves, table, problems, notes, baseline)


def shown(reg: Regret) -> pd.DataFrame:
    t = reg.final
    rows = _shown_optimizers(t)
    if reg.baseline.empty:
        return rows
    random = pd.DataFrame(
        {
            "space": reg.baseline["space"],
            "optimizer": RANDOM,
            "seeds": "–",
            "test error (mean ± std)": "–",
            "test regret (mean ± std)": [
                f"{m:.4f} [{lo:.4f}, {hi:.4f}]"
                for m, lo, hi in reg.baseline[list(BASELINE_COLUMNS.values())].itertuples(index=False)
            ],
            "left out": "–",
        }
    )
    order = {s: i for i, s in enumerate(t["space"].unique())}
    both = pd.concat([rows.assign(_r=0), random[random["space"].isin(order)].assign(_r=1)])
    both = both.assign(_s=both["space"].map(order)).sort_values(["_s", "_r"], kind="stable")
    return both.drop(columns=["_s", "_r"]).reset_index(drop=True)


def _shown_optimizers(t: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "space": t["space"],
            "optimizer": t["group"],
            "seeds": t["n_test_error"],
            "test error (mean ± std)": [
                fmt_pm(m, s) for m, s in zip(t["test_error_mean"], t["test_error_std"], strict=True)
            ],
            "test regret (mean ± std)": [
                fmt_pm(m, s) if n else "– (no optimum known)"
                for m, s, n in zip(
                    t["test_regret_mean"], t["test_regret_std"], t["n_test_regret"], strict=True
                )
            ],
            "left out": t["n_left_out"],
            "test regret 95 % CI": [
                fmt_ci(m, lo, hi) if n else "–"
                for m, lo, hi, n in zip(
                    t["test_regret_mean"],
                    t["test_regret_ci_low"],
                    t["test_regret_ci_high"],
                    t["n_test_regret"],
                    strict=True,
                )  # fmt: skip
            ],
            "vs DARTS: Δ test regret (paired)": [
                fmt_paired(d, p, test) if isinstance(test, str) else "–"
                for d, p, test in zip(
                    t["vs_darts_diff_mean"], t["vs_darts_p_value"], t["vs_darts_test"], strict=True
                )
            ],
        }
    )


def plot(reg: Regret, res: Results) -> Figure:
    curves = reg.curves.assign(x=reg.curves["epoch"] + 1)
    fig = plotting.curve_panels(
        curves,
        x="x",
        groups=res.groups(),
        spaces=res.spaces,
        xlabel="search epoch",
        integer_x=True,
        ylabel="test regret (log scale)",
        title=f"Test regret of the discretized architecture during search — {benchmark_title(res.benchmark)}",
        log=True,
        empty_text={
            s: f"no test regret in space {s}:\nno optimum known (space not tabulated)" for s in res.spaces
        },
        baselines={
            int(r.space): (r.random_regret_mean, r.random_regret_p10, r.random_regret_p90)
            for r in reg.baseline.itertuples(index=False)
        },
        baseline_label=f"{RANDOM} (10–90 %)",
    )
    per_line = seeds_per_line(reg.curves, res.groups())
    note = (
        f"{regret_reference(res.benchmark)}. {plotting.BAND_TEXT}. Zero regret is clipped to the axis floor."
        + (f" Seeds per line: {per_line}." if per_line else "")
    )
    plotting.footnote(fig, "\n".join(filter(None, [note, issues.short_note(reg.issues)])))
    return fig


def write(res: Results, out: Path) -> list[Path]:
    reg = compute(res)
    issues.report(reg.issues, out, STEM)
    paths = plotting.save(plot(reg, res), out, STEM)
    curves = out / f"{STEM}_curves.csv"
    reg.curves.to_csv(curves, index=False, float_format="%.10g")
    title = "Test error and test regret at the final search epoch"
    paths += [
        curves,
        *export.write_table(reg.final, shown(reg), out, f"{STEM}_final", title=title, notes=reg.notes),
    ]
    return paths


def build_parser() -> argparse.ArgumentParser:
    return cli.parser("analysis.regret", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

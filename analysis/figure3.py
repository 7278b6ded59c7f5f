"""`python -m analysis.figure3 RESULTS -o OUT [--log] [--window W]`: the MS-DARTS paper's Figure 3.

The dominant eigenvalue of the Hessian of the validation loss w.r.t. the architecture parameters,
against the search epoch: one panel per search space, one line per optimizer (and setting), the mean
over seeds with a 95% t-band. A lower, flatter curve means a flatter minimum in architecture space.
`--window W` first replaces each run's value by the mean of its last W measured epochs (trailing): the
paper protocol measures on one small batch per epoch (on digits the 14-image remainder), so single
epochs scatter by ~50-100 %; the final table then compares the runs' last-W-epoch means.

Writes figure3.png/.pdf, figure3_data.csv (the plotted mean, std, n and band per epoch), figure3.txt
(the caption, with the seeds behind each line), figure3_final.csv/.md/.tex (the final-epoch eigenvalue per
optimizer: mean ± std, 95 % t-interval, and a paired Wilcoxon test against DARTS on shared seeds) and,
when some runs had problems, warnings.txt.
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
from analysis.names import benchmark_title
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

STEM = "figure3"
YLABEL = f"dominant Hessian eigenvalue {plotting.LAMBDA}"


@dataclass
class Figure3:
    stats: pd.DataFrame  # space, group, epoch (0-based), mean, std, n, ci_low, ci_high
    final: pd.DataFrame  # space, group: final-epoch mean, std, n, ci_low, ci_high, paired test vs DARTS
    issues: list[Issue]
    caption: str


def compute(res: Results, window: int = 1) -> Figure3:
    rows, found = measures.eigenvalues(res, window)
    stats = describe(rows, ["space", "group", "epoch"], measures.EIG)
    last = measures.at_final_epoch(rows)
    final = describe(last, ["space", "group"], measures.EIG)
    paired = paired_vs(last, ["space"], measures.EIG, reference_group(res.runs))
    final = final.merge(paired.rename(columns={c: f"vs_darts_{c}" for c in paired.columns[2:]}),
                        on=["space", "group"], how="left")  # fmt: skip
    order = res.groups()
    final = final.sort_values(
        ["space", "group"], key=lambda c: c.map(order.index) if c.name == "group" else c
    )
    final = final.reset_index(drop=True)
    problems = issues.dedupe([*res.issues_of(*measures.RUN_KINDS), *found])
    caption = (
        f"Dominant Hessian eigenvalue of the validation loss w.r.t. the architecture parameters during the "
        f"search ({benchmark_title(res.benchmark)}); {plotting.BAND_TEXT}; n = seeds per line. "
        "Epochs without a measurement (hessian_every > 1) are skipped."
    )
    if window > 1:
        caption += f" Smoothed: {measures.window_text(window)}; the final table uses it at the last epoch."
    if per_line := seeds_per_line(stats, res.groups()):
        caption += f" Seeds per line: {per_line}."
    for line in machine_lines(res.runs):  # runs from other machines or harness versions
        caption += f" {line}."
    return Figure3(stats, final.reset_index(drop=True), problems, caption)


def shown(fig3: Figure3) -> pd.DataFrame:
    t = fig3.final
    return pd.DataFrame(
        {
            "space": t["space"],
            "optimizer": t["group"],
            "seeds": t["n"],
            "λ_max (final) mean ± std": [fmt_pm(m, s) for m, s in zip(t["mean"], t["std"], strict=True)],
            "95 % CI": [
                fmt_ci(m, lo, hi) for m, lo, hi in zip(t["mean"], t["ci_low"], t["ci_high"], strict=True)
            ],
            "vs DARTS: Δ λ_max (paired)": [
                fmt_paired(d, p, test) if isinstance(test, str) else "–"
                for d, p, test in zip(
                    t["vs_darts_diff_mean"], t["vs_darts_p_value"], t["vs_darts_test"], strict=True
                )
            ],
        }
    )


def plot(fig3: Figure3, res: Results, log: bool = False, window: int = 1) -> Figure:
    stats = fig3.stats.assign(x=fig3.stats["epoch"] + 1)
    fig = plotting.curve_panels(
        stats,
        x="x",
        groups=res.groups(),
        spaces=res.spaces,
        xlabel="search epoch",
        integer_x=True,
        ylabel=YLABEL + (" (log scale)" if log else ""),
        title=f"Dominant Hessian eigenvalue during search — {benchmark_title(res.benchmark)}",
        log=log,
        empty_text={s: "no finite eigenvalues in this space" for s in res.spaces},
    )
    per_line = seeds_per_line(fig3.stats, res.groups())
    seeds = f"Seeds per line: {per_line}." if per_line else ""
    lines = [plotting.BAND_TEXT, measures.window_text(window), seeds, issues.short_note(fig3.issues)]
    plotting.footnote(fig, "\n".join(filter(None, lines)))
    return fig


def write(res: Results, out: Path, log: bool = False, window: int = 1) -> list[Path]:
    fig3 = compute(res, window)
    problems = issues.report(fig3.issues, out, STEM)
    fig = plot(fig3, res, log, window)
    paths = plotting.save(fig, out, STEM)
    data = out / f"{STEM}_data.csv"
    fig3.stats.to_csv(data, index=False, float_format="%.10g")
    caption = out / f"{STEM}.txt"
    caption.write_text("\n".join([fig3.caption, *problems]) + "\n")
    title = "Dominant Hessian eigenvalue after the last search epoch (Figure 3's end points)"
    if window > 1:
        title += f", mean of each run's last {window} epochs"
    notes = [
        f"{benchmark_title(res.benchmark)}; complete runs only, one value per run (seed); "
        "mean ± std across seeds.",
        PAIRED_NOTE,
    ]
    tables = export.write_table(fig3.final, shown(fig3), out, f"{STEM}_final", title=title, notes=notes)
    return [*paths, data, caption, *tables]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.figure3", __doc__)
    p.add_argument("--log", action="store_true", help="log-scale eigenvalue axis")
    p.add_argument(
        "--window",
        type=cli.positive_int,
        default=1,
        help="average each run over its last W measured epochs (trailing) before the seeds; default 1",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out, args.log, args.window), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

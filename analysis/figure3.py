"""`python -m analysis.figure3 RESULTS -o OUT [--log]`: the MS-DARTS paper's Figure 3.

The dominant eigenvalue of the Hessian of the validation loss w.r.t. the architecture parameters,
against the search epoch: one panel per search space, one line per optimizer (and setting), the mean
over seeds with a 95% t-band. A lower, flatter curve means a flatter minimum in architecture space.

Writes figure3.png/.pdf, figure3_data.csv (the plotted mean, std, n and band per epoch), figure3.txt
(the caption) and, when some runs had problems, warnings.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import cli, issues, measures, plotting
from analysis.issues import Issue
from analysis.load import Results
from analysis.names import benchmark_title
from analysis.stats import describe

STEM = "figure3"
YLABEL = f"dominant Hessian eigenvalue {plotting.LAMBDA}"


@dataclass
class Figure3:
    stats: pd.DataFrame  # space, group, epoch (0-based), mean, std, n, ci_low, ci_high
    issues: list[Issue]
    caption: str


def compute(res: Results) -> Figure3:
    rows, found = measures.eigenvalues(res)
    stats = describe(rows, ["space", "group", "epoch"], measures.EIG)
    problems = issues.dedupe([*res.issues_of(*measures.RUN_KINDS), *found])
    caption = (
        f"Dominant Hessian eigenvalue of the validation loss w.r.t. the architecture parameters during the "
        f"search ({benchmark_title(res.benchmark)}); {plotting.BAND_TEXT}; n = seeds per line. "
        "Epochs without a measurement (hessian_every > 1) are skipped."
    )
    return Figure3(stats, problems, caption)


def plot(fig3: Figure3, res: Results, log: bool = False) -> Figure:
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
    plotting.footnote(fig, "\n".join(filter(None, [plotting.BAND_TEXT, issues.short_note(fig3.issues)])))
    return fig


def write(res: Results, out: Path, log: bool = False) -> list[Path]:
    fig3 = compute(res)
    problems = issues.report(fig3.issues, out, STEM)
    fig = plot(fig3, res, log)
    paths = plotting.save(fig, out, STEM)
    data = out / f"{STEM}_data.csv"
    fig3.stats.to_csv(data, index=False, float_format="%.10g")
    caption = out / f"{STEM}.txt"
    caption.write_text("\n".join([fig3.caption, *problems]) + "\n")
    return [*paths, data, caption]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.figure3", __doc__)
    p.add_argument("--log", action="store_true", help="log-scale eigenvalue axis")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out, args.log), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

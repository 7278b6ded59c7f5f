"""`python -m analysis.correlation RESULTS -o OUT [--metric M]`: one-shot vs ground-truth rank correlation.

NAS-Bench-1Shot1's correlation analysis: at the epochs a run measured it (`--set correlation_every=K`),
the same sampled models were scored on the supernet at their one-hot weights and compared with their
ground-truth accuracy. One panel per search space, one line per optimizer (and setting): the mean over
seeds of the chosen statistic (default Spearman with the ground-truth validation accuracy) with a 95%
t-band.

Writes correlation.png/.pdf, correlation_data.csv (every statistic: mean, std, n and band per epoch),
correlation.txt (the caption) and, when some runs had problems, warnings.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis import cli, issues, plotting
from analysis.issues import Issue
from analysis.load import AnalysisError, Results
from analysis.names import benchmark_title
from analysis.stats import describe
from bench import results

STEM = "correlation"
METRICS = {
    "spearman_valid": "Spearman ρ, one-shot vs ground-truth validation accuracy",
    "spearman_test": "Spearman ρ, one-shot vs ground-truth test accuracy",
    "kendall_valid": "Kendall τ, one-shot vs ground-truth validation accuracy",
    "kendall_test": "Kendall τ, one-shot vs ground-truth test accuracy",
    "top10_overlap_valid": "top-10 % overlap with the ground truth (validation)",
    "top10_overlap_test": "top-10 % overlap with the ground truth (test)",
    "oneshot_acc_mean": "mean one-shot accuracy of the sampled models",
}


@dataclass
class Correlation:
    rows: pd.DataFrame  # one row per run and measured epoch, with the run's space, group and seed
    stats: pd.DataFrame  # space, group, epoch, metric, mean, std, n, ci_low, ci_high
    issues: list[Issue]
    caption: str


def measured(res: Results) -> bool:
    """Whether any selected run measured the correlation."""
    return any((Path(d) / results.CORRELATION_CSV).exists() for d in res.runs["run_dir"])


def read_rows(res: Results) -> pd.DataFrame:
    """Every kept run's correlation.csv, with its identity; AnalysisError when no run measured it."""
    frames = []
    for run in res.runs.itertuples():
        path = Path(run.run_dir) / results.CORRELATION_CSV
        if path.exists():
            frame = pd.read_csv(path)
            frames.append(frame.assign(run=run.run, space=run.space, group=run.group, seed=run.seed))
    if not frames:
        raise AnalysisError(
            f"no run under {res.root} has a {results.CORRELATION_CSV}; run bench.run with "
            "--set correlation_every=K (and correlation_samples=N) to measure it"
        )
    return pd.concat(frames, ignore_index=True)


def compute(res: Results) -> Correlation:
    rows = read_rows(res)
    parts = [describe(rows, ["space", "group", "epoch"], m).assign(metric=m) for m in METRICS if m in rows]
    stats = pd.concat(parts, ignore_index=True)
    n_models = sorted(int(n) for n in rows["n"].unique())
    sizes = f"{n_models[0]}" if len(n_models) == 1 else f"{n_models[0]}–{n_models[-1]}"
    caption = (
        f"Rank correlation of one-shot and ground-truth accuracy over {sizes} models sampled uniformly from "
        f"the space, scored on the supernet at their one-hot weights during the search "
        f"({benchmark_title(res.benchmark)}); {plotting.BAND_TEXT}; n = seeds per line."
    )
    return Correlation(rows, stats, issues.dedupe(list(res.issues)), caption)


def plot(corr: Correlation, res: Results, metric: str = "spearman_valid") -> Figure:
    stats = corr.stats[corr.stats["metric"] == metric]
    stats = stats.assign(x=stats["epoch"] + 1)
    fig = plotting.curve_panels(
        stats,
        x="x",
        groups=res.groups(),
        spaces=res.spaces,
        xlabel="search epoch",
        integer_x=True,
        ylabel=METRICS[metric],
        title=f"One-shot vs ground truth — {benchmark_title(res.benchmark)}",
        marker="o",
        empty_text={s: "no correlation measured in this space" for s in res.spaces},
    )
    plotting.footnote(fig, "\n".join(filter(None, [plotting.BAND_TEXT, issues.short_note(corr.issues)])))
    return fig


def write(res: Results, out: Path, metric: str = "spearman_valid") -> list[Path]:
    corr = compute(res)
    problems = issues.report(corr.issues, out, STEM)
    paths = plotting.save(plot(corr, res, metric), out, STEM)
    data = out / f"{STEM}_data.csv"
    corr.stats.to_csv(data, index=False, float_format="%.10g")
    caption = out / f"{STEM}.txt"
    caption.write_text("\n".join([corr.caption, *problems]) + "\n")
    return [*paths, data, caption]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.correlation", __doc__)
    p.add_argument("--metric", choices=list(METRICS), default="spearman_valid", help="statistic to plot")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out, args.metric), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

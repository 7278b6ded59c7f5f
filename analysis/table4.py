"""`python -m analysis.table4 RESULTS -o OUT [--over final|all] [--window W]`: the MS-DARTS paper's Table 4.

The dominant Hessian eigenvalue per MS-DARTS kernel bandwidth h (read from each run's config.json,
`optimizer_hyperparameters.bandwidth`), mean ± std, with the number of runs behind each number:

- `--over final` (default): one value per run, the eigenvalue after its last search epoch; mean ± std
  across runs (seeds), the 95 % t-interval of the mean, and a paired Wilcoxon test against DARTS's
  final eigenvalue in the same space on the seeds both ran (when DARTS runs are among the results).
  Incomplete runs have no last epoch and are left out (and counted).
- `--over all`: every measured eigenvalue of the whole search, pooled over epochs and runs.
- `--window W` (with `--over final`): a run's value is the mean of its last W measured epochs instead of
  the last one alone (still one value per run, so the interval and the test stand).

Writes table4.csv (raw numbers), table4.md, table4.tex, table4_bandwidth.png/.pdf (eigenvalue against
h, log x) and, when some runs had problems, warnings.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from analysis import cli, export, issues, measures, plotting
from analysis.issues import Issue
from analysis.load import AnalysisError, Results, machine_lines, setting_labels
from analysis.names import benchmark_title, display_name, is_msdarts
from analysis.stats import (
    PAIRED_COLUMNS,
    PAIRED_NOTE,
    PairedTest,
    fmt_ci,
    fmt_paired,
    fmt_pm,
    paired_test,
    reference_group,
    t_halfwidth,
)

STEM = "table4"
OVER = ("final", "all")
BANDWIDTH = "hp.bandwidth"
OVER_TEXT = {
    "final": "eigenvalue after the last search epoch of each complete run; mean ± std across runs (seeds)",
    "all": "every measured eigenvalue of the whole search, pooled over epochs and runs; mean ± std over them",
}


@dataclass
class Table4:
    raw: (
        pd.DataFrame
    )  # space, bandwidth, other_settings, over, eig_mean, eig_std, n_runs, n_values, n_left_out
    over: str
    issues: list[Issue]
    notes: list[str]


def msdarts_runs(res: Results) -> pd.DataFrame:
    runs = res.runs[res.runs["optimizer"].map(is_msdarts)]
    if BANDWIDTH in runs:
        runs = runs[pd.to_numeric(runs[BANDWIDTH], errors="coerce").notna()]
    if runs.empty or BANDWIDTH not in runs:
        raise AnalysisError(
            f"no MS-DARTS runs with a bandwidth (config.json optimizer_hyperparameters.bandwidth) among the "
            f"selected runs under {res.root}; run e.g. `python -m bench.run --optimizer msdarts "
            "--set bandwidth=0.1,0.3,1,3`"
        )
    return runs


def compute(res: Results, over: str = "final", window: int = 1) -> Table4:
    if over not in OVER:
        raise AnalysisError(f"--over {over}: choose final or all")
    if window > 1 and over != "final":
        raise AnalysisError(f"--window {window} averages a run's last epochs: use it with --over final")
    runs = msdarts_runs(res).copy()
    runs["bandwidth"] = pd.to_numeric(runs[BANDWIDTH]).astype(float)
    runs["other_settings"] = setting_labels(runs, exclude=[BANDWIDTH])
    keys = ["space", "bandwidth", "other_settings"]
    rows, found = measures.eigenvalues(res, window)
    darts = reference_group(res.runs)
    reference = measures.at_final_epoch(rows[rows["group"] == darts]) if darts is not None else rows.iloc[:0]
    rows = rows.drop(columns=[c for c in keys if c in rows and c != "space"]).merge(
        runs[["run", "bandwidth", "other_settings"]], on="run"
    )
    if over == "final":
        rows = measures.at_final_epoch(rows)
    stat = (
        rows.groupby(keys)
        .agg(
            eig_mean=(measures.EIG, "mean"),
            eig_std=(measures.EIG, "std"),
            n_runs=("run", "nunique"),
            n_values=(measures.EIG, "count"),
        )
        .reset_index()
    )
    selected = runs.groupby(keys).size().rename("n_selected").reset_index()
    raw = selected.merge(stat, on=keys, how="left")
    if over == "final":  # one value per seed: an interval over seeds and a paired test make sense
        half = t_halfwidth(raw["eig_std"], raw["n_values"])
        raw["eig_ci_low"], raw["eig_ci_high"] = raw["eig_mean"] - half, raw["eig_mean"] + half
        raw = raw.merge(_vs_darts(rows, reference, keys), on=keys, how="left")
    raw[["n_runs", "n_values"]] = raw[["n_runs", "n_values"]].fillna(0).astype(int)
    raw["n_left_out"] = raw["n_selected"] - raw["n_runs"]
    raw.insert(3, "over", over)
    raw = raw.drop(columns="n_selected").sort_values(keys).reset_index(drop=True)
    if not raw["other_settings"].astype(bool).any():
        raw = raw.drop(columns="other_settings")
    run_names = set(runs["run"])
    problems = [i for i in issues.dedupe([*res.issues_of(*measures.RUN_KINDS), *found]) if i.run in run_names]
    notes = [
        f"{display_name('msdarts')} on the {benchmark_title(res.benchmark)}; over={over}: {OVER_TEXT[over]}"
        + (f"; {measures.window_text(window)}." if window > 1 else "."),
        "runs = number of runs (seeds) behind each number; left out = selected runs that gave no value "
        "(incomplete, or NaN eigenvalue) — see warnings.txt.",
    ]
    if over == "final":
        notes.append(
            PAIRED_NOTE + ("" if darts is not None else " No DARTS runs among the results: no test.")
        )
    else:
        notes.append("over=all pools dependent values (epochs of one run): no interval or test is given.")
    notes.extend(machine_lines(res.runs[res.runs["run"].isin(run_names)]))  # other machines, harness versions
    if note := issues.short_note(problems):
        notes.append(note)
    return Table4(raw, over, problems, notes)


def _vs_darts(rows: pd.DataFrame, reference: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per bandwidth (and other settings): paired test of the final eigenvalue against DARTS's in the same
    space, on the seeds both ran."""
    out = []
    for key, sub in rows.groupby(keys, sort=True):
        ref = reference[reference["space"] == key[0]].groupby("seed")[measures.EIG].mean()
        mine = sub.groupby("seed")[measures.EIG].mean()
        shared = mine.index.intersection(ref.index)
        if ref.empty:
            result = PairedTest(0, float("nan"), float("nan"), "no DARTS runs")
        else:
            result = paired_test(mine.loc[shared].to_numpy(), ref.loc[shared].to_numpy())
        out.append(dict(zip(keys, key, strict=True)) | {
            "vs_darts_n_paired": result.n, "vs_darts_diff_mean": result.diff_mean,
            "vs_darts_p_value": result.p_value, "vs_darts_test": result.test,
            "vs_darts_significant": result.significant})  # fmt: skip
    columns = [*keys, *(f"vs_darts_{c}" for c in PAIRED_COLUMNS)]
    return pd.DataFrame(out, columns=columns)


def shown(t4: Table4) -> pd.DataFrame:
    raw = t4.raw
    out = pd.DataFrame({"space": raw["space"], "bandwidth h": raw["bandwidth"].map(lambda v: f"{v:g}")})
    if "other_settings" in raw:
        out["other settings"] = raw["other_settings"]
    out[f"λ_max ({t4.over}) mean ± std"] = [
        fmt_pm(m, s) for m, s in zip(raw["eig_mean"], raw["eig_std"], strict=True)
    ]
    out["runs"] = raw["n_runs"]
    if t4.over == "all":
        out["values"] = raw["n_values"]
    out["left out"] = raw["n_left_out"]
    if t4.over == "final":
        out["95 % CI"] = [
            fmt_ci(m, lo, hi)
            for m, lo, hi in zip(raw["eig_mean"], raw["eig_ci_low"], raw["eig_ci_high"], strict=True)
        ]
        out["vs DARTS: Δ λ_max (paired)"] = [
            fmt_paired(d, p, test) if isinstance(test, str) else "–"
            for d, p, test in zip(
                raw["vs_darts_diff_mean"], raw["vs_darts_p_value"], raw["vs_darts_test"], strict=True
            )
        ]
    return out


def plot(t4: Table4, res: Results) -> Figure:
    raw = t4.raw.assign(other_settings=t4.raw.get("other_settings", ""))
    spaces = sorted(raw["space"].unique())
    fig, axes = plotting.panels(len(spaces))
    lines = sorted(raw["other_settings"].unique())
    colors = plotting.palette(lines)
    for ax, space in zip(axes, spaces, strict=True):
        sub = raw[(raw["space"] == space) & raw["eig_mean"].notna()]
        for other in lines:
            line = sub[sub["other_settings"] == other].sort_values("bandwidth")
            if line.empty:
                continue
            label = display_name("msdarts") + (f" [{other}]" if other else "")
            label += f" (runs per h: {', '.join(str(n) for n in line['n_runs'])})"
            x, m, s = line["bandwidth"], line["eig_mean"], line["eig_std"].fillna(0.0)
            ax.plot(x, m, marker="o", color=colors[other], label=label)
            ax.vlines(x, m - s, m + s, color=colors[other], alpha=0.6)
            for xi, mi, ni in zip(x, m, line["n_runs"], strict=True):
                ax.annotate(f"n={ni}", (xi, mi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_title(plotting.space_title(space))
        ax.set_xlabel("MS-DARTS kernel bandwidth h (log scale)")
        ax.set_ylabel(f"{plotting.LAMBDA} ({'final epoch' if t4.over == 'final' else 'whole search'})")
        ax.grid(alpha=0.3, which="both")
        ticks = sorted(sub["bandwidth"].unique())
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.lines:
            plotting.legend(ax)
    plotting.suptitle(
        fig, f"Dominant Hessian eigenvalue against the MS-DARTS bandwidth — {benchmark_title(res.benchmark)}"
    )
    plotting.footnote(fig, f"points: mean; bars: ± one std; over={t4.over}: {OVER_TEXT[t4.over]}.")
    return fig


def write(res: Results, out: Path, over: str = "final", window: int = 1) -> list[Path]:
    t4 = compute(res, over, window)
    issues.report(t4.issues, out, STEM)
    title = f"Table 4 (regenerated): dominant Hessian eigenvalue per MS-DARTS bandwidth, over={over}"
    paths = export.write_table(t4.raw, shown(t4), out, STEM, title=title, notes=t4.notes)
    return [*paths, *plotting.save(plot(t4, res), out, f"{STEM}_bandwidth")]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.table4", __doc__)
    p.add_argument("--over", choices=OVER, default="final", help="final epoch (default) or the whole search")
    p.add_argument(
        "--window",
        type=cli.positive_int,
        default=1,
        help="with --over final: each run's mean over its last W measured epochs (default 1)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out, args.over, args.window), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m analysis.blackbox RESULTS -o OUT [--x time|queries]`: black-box NAS beside the one-shot
optimizers, against time, or the black-box methods against the number of table queries.

NAS-Bench-1Shot1's comparison (its Figure 5 style): test regret against search time on a log scale, one
panel per space, a line per method with the mean over seeds and a 95 % t-band. With `--x queries` the
x axis counts table queries instead (every query at any budget: a Hyperband rung at 4 epochs counts as
much as one at 108), black-box runs only, on a linear scale.

- Black-box runs (`python -m bench.blackbox`, dashed): regret of the validation-selected incumbent (mean
  test error of all its repeats minus the space's best) after each query, against SIMULATED time: the
  table's training time of every repeat queried so far (NB-101: its recorded TPU seconds; digits: the CPU
  seconds its protocol took).
- One-shot runs (`python -m bench.run`, solid): regret of the discretized architecture after each epoch
  against MEASURED search time on the machine that ran it: `wallclock_s` minus the Hessian measurement
  (`hessian_seconds`, a measurement the search does not need). Complete runs only.

The two clocks come from different machines and protocols; the figure says so. A run's regret is a step
function of time (it holds until the next query or epoch); each line is drawn over the times every one of
its seeds reached, so the number of seeds behind a line is constant and in its legend.

Hyperband's runs (hb, bohb) have no regret until their first full-budget evaluation (the incumbent is
chosen at the standard budget only); their lines start there.

Writes blackbox_regret.png/.pdf, blackbox_regret_curves.csv, blackbox_regret_final.csv/.md/.tex (regret at
the end of each run: mean ± std, 95 % CI) and blackbox_regret.txt (the caption); with `--x queries` the
same files named blackbox_regret_queries*.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import cli, export, plotting
from analysis.load import AnalysisError, Filters, load
from analysis.names import benchmark_title, regret_reference
from analysis.stats import describe, fmt_ci, fmt_pm, seeds_per_line, t_halfwidth
from bench import results
from bench.blackbox import records

log = logging.getLogger(__name__)

STEM = "blackbox_regret"
GRID_POINTS = 200
BLACKBOX, ONESHOT = "black-box", "one-shot"
X_AXES = ("time", "queries")


def stem(x: str) -> str:
    return STEM if x == "time" else f"{STEM}_{x}"


def method_title(method: str) -> str:
    return records.METHOD_TITLES.get(method, str(method))


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


# ---- loading --------------------------------------------------------------------------------------
def blackbox_runs(
    root: Path, benchmark: str | None, spaces: Sequence[int], methods: Sequence[str]
) -> pd.DataFrame:
    """Rows of every complete black-box run under `root` that passes the filters (time, regret, ids)."""
    frame = records.load(root)
    if frame.empty:
        return frame.assign(group=pd.Series(dtype=str), time=pd.Series(dtype=float))
    complete = {
        d for d in frame["run_dir"].unique()
        if (results.read_json(Path(d) / results.STATUS_JSON) or {}).get("state") == "complete"
    }  # fmt: skip
    left = sorted(set(frame["run_dir"]) - complete)
    if left:
        log.warning("%d black-box run(s) not complete, left out: %s", len(left), ", ".join(left[:6]))
    frame = frame[frame["run_dir"].isin(complete)]
    if benchmark is not None:
        frame = frame[frame["benchmark"] == benchmark]
    if spaces:
        frame = frame[frame["space"].isin(spaces)]
    if methods:
        frame = frame[frame["method"].isin(methods)]
    return frame.assign(
        group=frame["method"].map(method_title),
        kind=BLACKBOX,
        time=frame["simulated_seconds"],
        queries=frame["query"],
        run=frame["run_dir"],
    )


def oneshot_runs(root: Path, filters: Filters) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every complete one-shot run (search time, regret); none is fine."""
    try:
        res = load(root, filters)
    except AnalysisError as exc:
        log.info("no one-shot runs to show (%s)", exc)
        return pd.DataFrame(columns=["run", "space", "group", "seed", "time", "test_regret", "benchmark"]), []
    rows = res.epochs[res.epochs["complete"].astype(bool)].sort_values(["run", "epoch"]).copy()
    hessian = pd.to_numeric(rows["hessian_seconds"], errors="coerce").fillna(0.0)
    rows["time"] = pd.to_numeric(rows["wallclock_s"], errors="coerce") - hessian.groupby(rows["run"]).cumsum()
    rows["test_regret"] = pd.to_numeric(rows["test_regret"], errors="coerce")
    rows["kind"] = ONESHOT
    return rows, res.groups()


# ---- curves ---------------------------------------------------------------------------------------
def step_values(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The value of a step function (value i holds from times[i] on) at each grid point; NaN before the
    first and after the last time."""
    idx = np.searchsorted(times, grid, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, len(values) - 1)], np.nan)
    return np.where(grid <= times[-1], out, np.nan)


def grid(values: pd.Series, x: str) -> np.ndarray:
    """Where curves are evaluated: log-spaced times, or whole query counts spread evenly."""
    if x == "time":
        return np.geomspace(values.min(), values.max(), GRID_POINTS)
    return np.unique(np.round(np.linspace(values.min(), values.max(), GRID_POINTS)))


def curves(rows: pd.DataFrame, x: str = "time") -> pd.DataFrame:
    """Mean, std, n and t-band of regret per space x group on a grid of `x` (time: log-spaced; queries:
    even), over the x that every seed of the group reached."""
    out = []
    rows = rows[rows["test_regret"].notna() & (rows[x] > 0)]
    for space, panel in rows.groupby("space", sort=True):
        points_all = grid(panel[x], x)
        for (group, kind), lines in panel.groupby(["group", "kind"], sort=False):
            runs = [r.sort_values(x) for _, r in lines.groupby("run", sort=True)]
            start = max(r[x].iloc[0] for r in runs)
            end = min(r[x].iloc[-1] for r in runs)
            points = points_all[(points_all >= start) & (points_all <= end)]
            if len(points) == 0:
                continue
            values = np.stack(
                [step_values(r[x].to_numpy(), r["test_regret"].to_numpy(), points) for r in runs]
            )
            n = len(runs)
            mean = values.mean(axis=0)
            std = values.std(axis=0, ddof=1) if n > 1 else np.full(len(points), np.nan)
            half = t_halfwidth(std, np.full(len(points), n))
            frame = {"space": space, "group": group, "kind": kind, x: points, "mean": mean, "std": std}
            out.append(pd.DataFrame(frame | {"n": n, "ci_low": mean - half, "ci_high": mean + half}))
    cols = ["space", "group", "kind", x, "mean", "std", "n", "ci_low", "ci_high"]
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=cols)


def final_table(rows: pd.DataFrame, order: Sequence[str], x: str = "time") -> pd.DataFrame:
    """Each run's regret and `x` at its end; mean ± std and the t-interval over seeds per space x group."""
    last = rows.sort_values(x).groupby("run").tail(1)
    stat = describe(last, ["space", "group", "kind"], "test_regret")
    times = last.groupby(["space", "group", "kind"])[x].median().rename("median_end_time").reset_index()
    stat = stat.merge(times, on=["space", "group", "kind"])
    rank = {g: i for i, g in enumerate(order)}
    return stat.sort_values(
        ["space", "group"], key=lambda c: c.map(lambda g: rank.get(g, len(rank))) if c.name == "group" else c
    ).reset_index(drop=True)


def shown(final: pd.DataFrame, x: str = "time") -> pd.DataFrame:
    end = "time at end (median, s)" if x == "time" else "queries at end (median)"
    return pd.DataFrame(
        {
            "space": final["space"],
            "method": final["group"],
            "kind": final["kind"],
            "seeds": final["n"],
            end: final["median_end_time"].map(lambda t: f"{t:.4g}"),
            "final test regret (mean ± std)": [
                fmt_pm(m, s) for m, s in zip(final["mean"], final["std"], strict=True)
            ],
            "95 % CI": [
                fmt_ci(m, lo, hi)
                for m, lo, hi in zip(final["mean"], final["ci_low"], final["ci_high"], strict=True)
            ],
        }
    )


# ---- figure ---------------------------------------------------------------------------------------
def plot(
    stats: pd.DataFrame, order: Sequence[str], spaces: Sequence[int], benchmark: str, x: str = "time"
) -> Figure:
    if x == "time":
        xlabel = "search time, s (log scale)"
        title = f"Black-box vs one-shot NAS: test regret against search time — {benchmark_title(benchmark)}"
    else:
        xlabel = "table queries (every budget)"
        title = f"Black-box NAS: test regret against table queries — {benchmark_title(benchmark)}"
    fig = plotting.curve_panels(
        stats,
        x=x,
        groups=order,
        spaces=spaces,
        xlabel=xlabel,
        ylabel="test regret (log scale)",
        title=title,
        log=True,
        empty_text={s: f"no regret in space {s}" for s in spaces},
    )
    dashed = set(stats.loc[stats["kind"] == BLACKBOX, "group"])
    if len(spaces) == 1:  # one panel: room for seven lines and their legend
        fig.set_size_inches(8.0, 5.6)
    for ax, space in zip(fig.axes, spaces, strict=False):
        ax.set_xscale("log" if x == "time" else "linear")
        positive = stats.loc[(stats["space"] == space) & (stats["mean"] > 0), "mean"]
        if len(positive):  # bands reaching zero or below are cut at a third of the lowest mean shown
            ax.set_ylim(bottom=positive.min() / 3)
        for line in ax.lines:
            line.set_drawstyle("steps-post")  # regret holds until the next query or epoch
            if line.get_label().rsplit(" (n=", 1)[0] in dashed:
                line.set_linestyle("--")
        if ax.lines:
            plotting.legend(ax)
    return fig


def caption(stats: pd.DataFrame, order: Sequence[str], benchmark: str, x: str = "time") -> str:
    per_line = seeds_per_line(stats, order)
    if x == "queries":
        return (
            f"Test regret against table queries ({benchmark_title(benchmark)}); "
            f"{regret_reference(benchmark)}. "
            "Black-box methods only: regret of the validation-selected incumbent (chosen at the table's "
            "standard budget) after each query; every query counts, at any budget. "
            f"{plotting.BAND_TEXT}; each line spans the queries all its seeds reached. "
            f"Seeds per line: {per_line}."
        )
    return (
        f"Test regret against search time ({benchmark_title(benchmark)}); {regret_reference(benchmark)}. "
        "Black-box methods (dashed): regret of the validation-selected incumbent after each table query, "
        "against simulated time (the table's training time of every repeat queried). One-shot optimizers "
        "(solid): regret of the discretized architecture after each epoch, against measured search time "
        "(wall-clock minus the Hessian measurement). The clocks come from different machines and protocols. "
        f"{plotting.BAND_TEXT}; each line spans the times all its seeds reached. Seeds per line: {per_line}."
    )


def footnote(stats: pd.DataFrame, order: Sequence[str], x: str = "time") -> str:
    if x == "queries":
        return (
            "Black-box runs: regret of the validation-selected incumbent (standard budget) against table "
            "queries at any budget. Mean over seeds, 95 % t-band; each line spans the queries all its seeds "
            f"reached. Seeds per line: {seeds_per_line(stats, order)}."
        )
    return (
        "Dashed: black-box, regret of the validation-selected incumbent against SIMULATED time (the table's "
        "training time of every repeat queried). Solid: one-shot, regret of the discretized architecture "
        "against MEASURED search time (wall-clock minus the Hessian measurement). Mean over seeds, 95 % "
        "t-band; each line spans the times all its seeds reached. "
        f"Seeds per line: {seeds_per_line(stats, order)}."
    )


# ---- command --------------------------------------------------------------------------------------
def write(
    root: Path, out: Path, filters: Filters, methods: Sequence[str] = (), x: str = "time"
) -> list[Path]:
    root = Path(root)
    if x not in X_AXES:
        raise AnalysisError(f"--x {x}: choose {' or '.join(X_AXES)}")
    if not root.is_dir():
        raise AnalysisError(f"results directory {root} does not exist; pass the --out of bench.blackbox")
    bb = blackbox_runs(root, filters.benchmark, filters.spaces, methods)
    if x == "time":
        os_rows, os_order = oneshot_runs(root, filters)
    else:  # a one-shot search queries no table
        os_rows, os_order = pd.DataFrame(columns=["benchmark"]), []
    if bb.empty:
        raise AnalysisError(
            f"no complete black-box runs under {root} (queries.csv) matching the filters; "
            "run `python -m bench.blackbox` first"
        )
    benchmarks = sorted(set(bb["benchmark"]) | set(os_rows["benchmark"].dropna()))
    if len(benchmarks) > 1:
        raise AnalysisError(
            f"{root} holds runs of several benchmarks ({', '.join(benchmarks)}) whose numbers must not be "
            f"compared; pick one with --benchmark {benchmarks[0]}"
        )
    cols = ["run", "space", "group", "kind", "seed", x, "test_regret"]
    rows = pd.concat([bb[cols], os_rows.reindex(columns=cols)], ignore_index=True)
    rows = rows[rows["space"].isin(sorted(set(bb["space"])))]  # panels where black-box runs exist
    order = [method_title(m) for m in records.METHOD_TITLES if method_title(m) in set(bb["group"])] + list(
        os_order
    )
    stats = curves(rows, x)
    spaces = sorted(int(s) for s in bb["space"].unique())
    fig = plot(stats, order, spaces, benchmarks[0], x)
    text = caption(stats, order, benchmarks[0], x)
    plotting.footnote(fig, footnote(stats, order, x))
    cli.prepare_out(out)
    name = stem(x)
    paths = plotting.save(fig, out, name)
    stats.to_csv(out / f"{name}_curves.csv", index=False, float_format="%.10g")
    (out / f"{name}.txt").write_text(text + "\n")
    final = final_table(rows, order, x)
    notes = [
        text.split(". Black-box")[0] + ".",
        "final = the last query (black-box) or epoch (one-shot) of each run; mean ± std and Student-t 95 % "
        "interval over seeds.",
    ]
    title = "Test regret at the end of each run"
    tables = export.write_table(final, shown(final, x), out, f"{name}_final", title=title, notes=notes)
    return [*paths, out / f"{name}_curves.csv", out / f"{name}.txt", *tables]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.blackbox", __doc__)
    p.add_argument("--method", type=_names, default=(), help="only these black-box methods, e.g. re,tpe")
    p.add_argument(
        "--x",
        choices=X_AXES,
        default="time",
        help="x axis: search time (default; black-box simulated, one-shot measured) or table queries "
        "(black-box runs only; every query at any budget counts)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    try:
        written = write(args.results, args.out, cli.filters_from(args), args.method, args.x)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

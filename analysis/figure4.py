"""`python -m analysis.figure4 RESULTS -o OUT`: the MS-DARTS paper's Figure 4.

The one-shot training loss against the distance of the architecture from where the search ends,
‖α_t − α_final‖ (Frobenius norm over all arch tensors, from alphas.npz), one point per epoch, one
line per optimizer (and setting), one panel per space. Each point is the mean over seeds of both the
distance and the loss at that epoch. Read right to left it shows the search approaching its final
architecture; a line that stays low far from the end reflects a flat loss surface around the path.

Only complete runs count (an incomplete run's last alphas are not its final ones); runs without a
readable alphas.npz are left out; both are reported. Writes figure4.png/.pdf, figure4_data.csv and,
with problems, warnings.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import cli, issues, measures, plotting
from analysis.issues import Issue
from analysis.load import Results, read_alpha_history
from analysis.names import benchmark_title

STEM = "figure4"
LOSS = "oneshot_train_loss"
DIST = "alpha_distance"


@dataclass
class Figure4:
    points: pd.DataFrame  # run, space, group, epoch, alpha_distance, oneshot_train_loss
    stats: pd.DataFrame  # space, group, epoch, alpha_distance (mean), mean (loss), n
    issues: list[Issue]


def alpha_distances(epochs: Sequence[int], arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """‖α_t − α_final‖ over all tensors at once, α_final = the alphas after the last stored epoch."""
    names = sorted(arrays)
    flat = np.concatenate([arrays[n].reshape(len(epochs), -1) for n in names], axis=1)
    order = np.argsort(epochs)
    last = flat[order[-1]]
    return pd.DataFrame({"epoch": np.asarray(epochs, dtype=int), DIST: np.linalg.norm(flat - last, axis=1)})


def compute(res: Results) -> Figure4:
    rows, found = measures.metric(res, LOSS)
    parts, problems = [], [*res.issues_of(*measures.RUN_KINDS), *found]
    for _, run in res.complete_runs().iterrows():
        history = read_alpha_history(Path(run["run_dir"]))
        if history is None or not history[0]:
            problems.append(Issue(run["run"], "no_alphas"))
            continue
        dist = alpha_distances(*history)
        if dist["epoch"].max() != run["final_epoch"]:
            problems.append(Issue(run["run"], "no_alphas", f"alphas end at epoch {dist['epoch'].max()}"))
            continue
        parts.append(dist.assign(run=run["run"]))
    points = pd.DataFrame(columns=["run", "epoch", DIST])
    if parts:
        points = pd.concat(parts, ignore_index=True)
    points = points.merge(rows[["run", "space", "group", "epoch", LOSS]], on=["run", "epoch"])
    stats = (
        points.groupby(["space", "group", "epoch"])
        .agg(**{DIST: (DIST, "mean"), "mean": (LOSS, "mean"), "n": (LOSS, "count")})
        .reset_index()
    )
    return Figure4(points, stats, issues.dedupe(problems))


def plot(fig4: Figure4, res: Results) -> Figure:
    fig = plotting.curve_panels(
        fig4.stats,
        x=DIST,
        lo=None,
        hi=None,
        groups=res.groups(),
        spaces=res.spaces,
        xlabel="‖α_t − α_final‖ (distance to the final architecture parameters)",
        ylabel="one-shot training loss",
        title=f"One-shot training loss along the search path — {benchmark_title(res.benchmark)}",
        marker="o",
        order="epoch",  # the search path, even where the distance is not monotone
        empty_text={s: "no complete runs with alphas.npz" for s in res.spaces},
    )
    text = "one point per epoch: mean over seeds of the distance and of the loss; the final epoch is at 0."
    plotting.footnote(fig, "\n".join(filter(None, [text, issues.short_note(fig4.issues)])))
    return fig


def write(res: Results, out: Path) -> list[Path]:
    fig4 = compute(res)
    issues.report(fig4.issues, out, STEM)
    paths = plotting.save(plot(fig4, res), out, STEM)
    data = out / f"{STEM}_data.csv"
    fig4.stats.to_csv(data, index=False, float_format="%.10g")
    return [*paths, data]


def build_parser() -> argparse.ArgumentParser:
    return cli.parser("analysis.figure4", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(lambda args, res: write(res, args.out), build_parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())

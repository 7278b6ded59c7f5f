"""Shared figure building: one panel per search space, one line per optimizer group, bands, files.

Figures are plain `matplotlib.figure.Figure` objects (no pyplot state, Agg canvas), returned to the
caller so tests can inspect their axes, lines and legends, and saved as PNG and PDF.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.names import optimizer_of_label
from analysis.stats import CI_LEVEL, n_label

LAMBDA = r"$\lambda_{\max}$"
BAND_TEXT = f"lines: mean over seeds; bands: {CI_LEVEL:.0%} t-interval of the mean (none for a single seed)"


# Okabe & Ito's colour-blind-safe palette (yellow left out: unreadable on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
# Further colours, distinct from those, for optimizers beyond the first seven.
EXTRA_COLOURS = (
    "#8C564B",
    "#BCBD22",
    "#9467BD",
    "#D62728",
    "#17BECF",
    "#E377C2",
    "#1F77B4",
    "#2CA02C",
    "#7F3C8D",
)
# The original competitors keep the colours they had in every figure before colours followed the registry.
FIXED_COLOURS = dict(
    zip(("darts", "pcdarts", "gdas", "sdartsrs", "sdartsadv", "msdarts", "rsws"), OKABE_ITO, strict=True)
)


def optimizer_colour(key: str) -> str:
    """The colour of a registered optimizer (its registry key): fixed for the original competitors, for
    any other name a stable pick from EXTRA_COLOURS by a hash of the name, the same in every figure."""
    if key in FIXED_COLOURS:
        return FIXED_COLOURS[key]
    return EXTRA_COLOURS[zlib.crc32(key.encode()) % len(EXTRA_COLOURS)]


def palette(groups: Sequence[str]) -> dict[str, object]:
    """A colour per group label: a registered optimizer's own colour (`optimizer_colour`), unless an
    earlier group took it (a second setting of that optimizer, two names hashing alike); other labels and
    such clashes take the first free colour, Okabe-Ito first. Fixed by labels and order, so figures agree."""
    groups = list(dict.fromkeys(groups))
    free = [c for c in (*OKABE_ITO, *EXTRA_COLOURS)]
    wanted = {}
    for group in groups:
        key = optimizer_of_label(group)
        wanted[group] = optimizer_colour(key) if key is not None else None
    out: dict[str, object] = {}
    for group in groups:  # own colours first, in order, so a clash never steals one from a later optimizer
        colour = wanted[group]
        if colour is not None and colour in free:
            out[group] = colour
            free.remove(colour)
    rest = [g for g in groups if g not in out]
    if len(rest) > len(free):
        import seaborn as sns  # only for many groups: it pulls in scipy.stats, seconds on a busy machine

        free = list(sns.color_palette("husl", len(rest)))
    out.update(zip(rest, free, strict=False))
    return {g: out[g] for g in groups}


def panels(
    n: int, width: float = 4.8, height: float = 3.6, ncols: int | None = None
) -> tuple[Figure, list[Axes]]:
    """A figure with `n` panels in a row (wrapping after three)."""
    ncols = ncols or min(max(n, 1), 3)
    nrows = math.ceil(max(n, 1) / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows + 0.9), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


def band_line(
    ax: Axes,
    x: np.ndarray,
    mean: np.ndarray,
    lo: np.ndarray | None,
    hi: np.ndarray | None,
    *,
    label: str,
    color: object,
    marker: str | None = None,
) -> None:
    x, mean = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
    ax.plot(x, mean, label=label, color=color, lw=1.6, marker=marker, ms=3)
    if lo is None or hi is None:
        return
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(x, lo, hi, where=ok, color=color, alpha=0.2, linewidth=0)


def space_title(space: int) -> str:
    return f"Search space {space}"


def curve_panels(
    stats: pd.DataFrame,
    *,
    x: str,
    y: str = "mean",
    lo: str | None = "ci_low",
    hi: str | None = "ci_high",
    groups: Sequence[str],
    spaces: Sequence[int],
    xlabel: str,
    ylabel: str,
    title: str,
    log: bool = False,
    marker: str | None = None,
    empty_text: dict[int, str] | None = None,
    order: str | None = None,
    integer_x: bool = False,
    baselines: dict[int, tuple[float, float, float]] | None = None,
    baseline_label: str = "random architecture",
) -> Figure:
    """One panel per space, one line (+ band) per group; legend labels carry the seed count.

    `baselines` maps a space to a horizontal reference (value, band low, band high), drawn in grey
    behind the groups (e.g. the regret of a uniformly random architecture).

    `stats` has columns space, group, `x`, `y`, optional band columns and `n` (seeds at that point).
    Points are joined in the order of `order` (default: `x`). A panel without data says why
    (`empty_text`), instead of showing empty axes.
    """
    colors = palette(groups)
    fig, axes = panels(len(spaces))
    for ax, space in zip(axes, spaces, strict=True):
        sub = stats[stats["space"] == space]
        if baselines and space in baselines and not sub.empty:
            value, low, high = baselines[space]
            ax.axhspan(low, high, color="0.5", alpha=0.12, lw=0)
            ax.axhline(value, color="0.35", ls="--", lw=1.2, label=baseline_label)
        for group in groups:
            line = sub[sub["group"] == group].sort_values(order or x)
            if line.empty:
                continue
            band_line(
                ax,
                line[x].to_numpy(),
                line[y].to_numpy(),
                line[lo].to_numpy() if lo else None,
                line[hi].to_numpy() if hi else None,
                label=f"{group} ({n_label(line['n'])})",
                color=colors[group],
                marker=marker,
            )
        ax.set_title(space_title(space))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log", nonpositive="clip")
        if ax.lines:
            legend(ax)
        else:
            ax.text(0.5, 0.5, (empty_text or {}).get(space, "no data"), ha="center", va="center",
                    wrap=True, transform=ax.transAxes, fontsize=9, color="0.35")  # fmt: skip
        ax.grid(alpha=0.3, which="both" if log else "major")
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    suptitle(fig, title)
    return fig


def suptitle(fig: Figure, title: str) -> None:
    """A figure title wrapped to the figure's width (one narrow panel cannot hold a long title)."""
    width = max(40, int(fig.get_figwidth() * 11))  # ~6.5 pt a character at 11 pt
    fig.suptitle(textwrap.fill(title, width, break_on_hyphens=False), fontsize=11)


def legend(ax: Axes) -> None:
    ax.legend(fontsize=8, frameon=True, framealpha=0.85, edgecolor="none")


def footnote(fig: Figure, text: str) -> None:
    """Small print under the panels: what the band means, and the data problems counted."""
    if not text:
        return
    width = int(fig.get_figwidth() * 17)  # characters of 7-pt text per line
    wrapped = "\n".join(textwrap.fill(part, width) for part in text.split("\n") if part)
    lines = wrapped.count("\n") + 1
    height = fig.get_figheight()
    bottom = min(0.4, (0.18 * lines + 0.1) / height)
    fig.get_layout_engine().set(rect=(0, bottom, 1, 1 - bottom))
    fig.text(0.005, 0.005, wrapped, fontsize=7, ha="left", va="bottom", color="0.3", gid="footnote")


def footnote_text(fig: Figure) -> str:
    """The footnote a figure carries (tests read it back)."""
    return "\n".join(t.get_text() for t in fig.texts if t.get_gid() == "footnote")


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
    paths = [Path(out) / f"{stem}.png", Path(out) / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


def png_base64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")

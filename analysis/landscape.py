"""`python -m analysis.landscape RUN_DIR [RUN_DIR ...] -o OUT [--grid 21] [--batches N]`

The one-shot validation accuracy over a 2-D slice of architecture space around each run's final alphas,
side by side (as SDARTS showed for DARTS against SDARTS): α(x, y) = α* + x·d₁ + y·d₂ on a grid over
[-1.5, 1.5]², mixing weights = the run's optimizer plug-in's one-shot weights of α(x, y)
(`oneshot_weights`: softmax(α) row-wise for the gradient methods; the argmax cell, one-hot, for the
sampling methods GDAS and ENAS; RSWS's alphas as they are, its 0/1 incumbent at the centre), run through
the plug-in's `forward` (only the chosen ops run where the plug-in says so), on the first N validation
batches with BatchNorm as the run's one-shot accuracy treats it (default: statistics re-estimated at each
point's weights); at the centre this is the trainer's one-shot accuracy. d₁, d₂ are
random Gaussian directions from a fixed seed, each row ("filter") rescaled to the norm of the matching
row of α* (`--norm tensor`: each tensor to the tensor's norm), so the slice has the same relative size
for every run. A sharp peak means that a small change of the architecture loses accuracy; a flat plateau
is what SDARTS and MS-DARTS aim for.

Needs each run's checkpoint.pt and its search data (digits: built in; nb101: CIFAR-10 via
--data-dir). Writes landscape.png/.pdf, landscape.csv (run, x, y, accuracy) and landscape.txt.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from analysis import cli, plotting
from analysis.load import AnalysisError
from analysis.names import display_name
from bench.data.splits import SearchData
from bench.runs import oneshot
from bench.runs.device import DeviceError
from bench.runs.restore import RestoredRun, RestoreError, load_run

STEM = "landscape"
NORMS = ("row", "tensor")


@dataclass
class Landscape:
    """Accuracy on the grid: `accuracy[j, i]` is at (x = coords[i], y = coords[j])."""

    run_dir: Path
    label: str
    coords: np.ndarray
    accuracy: np.ndarray
    n_images: int
    norm: str = "row"

    @property
    def center(self) -> float:
        c = len(self.coords) // 2
        return float(self.accuracy[c, c])


def directions(
    alphas: Sequence[np.ndarray], seed: int = 0, norm: str = "row"
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two random directions shaped like `alphas`, normalized row- or tensor-wise to the alphas' norms."""
    if norm not in NORMS:
        raise AnalysisError(f"--norm {norm}: choose row or tensor")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(2):
        d = []
        for a in alphas:
            r = rng.standard_normal(a.shape)
            axis = -1 if norm == "row" else None
            scale = np.linalg.norm(a, axis=axis, keepdims=True) / (
                np.linalg.norm(r, axis=axis, keepdims=True) + 1e-12
            )
            d.append(r * scale)
        out.append(d)
    return out[0], out[1]


def _batches(data: SearchData, batch_size: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `n` validation batches, in order: the same images for every grid point and run."""
    size = min(batch_size, len(data.x_valid))
    return [
        (data.x_valid[i : i + size], data.y_valid[i : i + size])
        for i in range(0, min(n * size, len(data.x_valid)), size)
    ]


def evaluate(
    restored: RestoredRun, coords: np.ndarray, d1: list[np.ndarray], d2: list[np.ndarray], batches: int
) -> tuple[np.ndarray, int]:
    """Accuracy at every grid point: the plug-in's one-shot weights of the perturbed alphas, measured as
    the trainer's one-shot accuracy is (BN as the run's `oneshot_bn`: by default statistics re-estimated
    at each point's weights), so the centre is that accuracy."""
    cfg, device, plugin = restored.cfg, restored.device, restored.plugin
    data = restored.data
    n_images = min(batches * min(cfg.batch_size, len(data.x_valid)), len(data.x_valid))
    evaluate_at = oneshot.Evaluator(
        restored.model, data.x_valid[:n_images], data.y_valid[:n_images],
        recal_x=data.x_train[: cfg.bn_recal_batches * cfg.batch_size],
        batch_size=cfg.batch_size, device=device,
    )  # fmt: skip
    center = [a.detach().cpu().double().numpy() for a in restored.alphas]
    acc = np.zeros((len(coords), len(coords)))
    points = [(i, j) for j in range(len(coords)) for i in range(len(coords))]
    for i, j in tqdm(points, desc=f"landscape {restored.run_dir.name}", unit="pt", leave=False):
        alphas = [
            torch.as_tensor(c + coords[i] * a + coords[j] * b, dtype=torch.float32, device=device)
            for c, a, b in zip(center, d1, d2, strict=True)
        ]
        acc[j, i] = evaluate_at(plugin.forward, plugin.oneshot_weights(alphas), cfg.oneshot_bn).acc
    return acc, n_images


def run_label(restored: RestoredRun) -> str:
    cfg = restored.cfg
    tag = restored.run_dir.parent.name
    first = f"{display_name(cfg.optimizer)} · space {cfg.space} · seed {cfg.seed}"
    return f"{first}\n{tag}, epoch {restored.epoch + 1}"


def compute(
    run_dir: Path | str,
    *,
    grid: int = 21,
    span: float = 1.5,
    batches: int = 4,
    seed: int = 0,
    norm: str = "row",
    data: SearchData | None = None,
    data_dir: Path | None = None,
    device: str = "auto",
) -> Landscape:
    """One run's landscape; `data` overrides the run's own search data (tests, notebooks)."""
    if grid < 3 or grid % 2 == 0:
        raise AnalysisError(
            f"--grid {grid}: use an odd number >= 3 so the grid has the final alphas at its centre"
        )
    if batches < 1:
        raise AnalysisError(f"--batches {batches}: must be at least 1")
    try:
        restored = load_run(run_dir, data=data, data_dir=data_dir, device=device)
    except (RestoreError, DeviceError) as exc:
        raise AnalysisError(str(exc)) from None
    center = [a.detach().cpu().double().numpy() for a in restored.alphas]
    d1, d2 = directions(center, seed, norm)
    coords = np.linspace(-span, span, grid)
    acc, n_images = evaluate(restored, coords, d1, d2, batches)
    return Landscape(Path(run_dir), run_label(restored), coords, acc, n_images, norm)


def plot(landscapes: Sequence[Landscape], title: str = "") -> Figure:
    fig, axes = plotting.panels(len(landscapes), width=4.2, height=3.8, ncols=min(len(landscapes), 4))
    lo = min(float(ls.accuracy.min()) for ls in landscapes)
    hi = max(float(ls.accuracy.max()) for ls in landscapes)
    if hi - lo < 1e-6:  # a flat landscape still needs a colour scale that reads as one value
        lo, hi = lo - 0.005, hi + 0.005
    levels = np.linspace(lo, hi, 15)
    mappable = None
    for ax, ls in zip(axes, landscapes, strict=True):
        mappable = ax.contourf(ls.coords, ls.coords, ls.accuracy, levels=levels, cmap="viridis")
        ax.plot([0], [0], marker="*", color="red", ms=10, ls="none", label=f"final α (acc {ls.center:.3f})")
        ax.set_title(ls.label, fontsize=9)
        ax.set_xlabel(f"x: direction d₁ ({ls.norm}-normalized to α*)")
        ax.set_ylabel(f"y: direction d₂ ({ls.norm}-normalized to α*)")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower left", framealpha=0.8)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label="one-shot validation accuracy", shrink=0.9, format="%.3f")
    plotting.suptitle(fig, title or "One-shot validation accuracy around the final architecture parameters")
    n = ", ".join(str(ls.n_images) for ls in landscapes)
    plotting.footnote(
        fig,
        "supernet (BN re-estimated per point) at each optimizer's one-shot weights of α* + x·d₁ + y·d₂ "
        f"(softmax; the argmax cell for GDAS and ENAS); validation images per run: {n}.",
    )
    return fig


def to_frame(landscapes: Sequence[Landscape]) -> pd.DataFrame:
    parts = []
    for ls in landscapes:
        xs, ys = np.meshgrid(ls.coords, ls.coords)
        label = ls.label.replace("\n", " | ")
        grid = {"x": xs.ravel(), "y": ys.ravel(), "accuracy": ls.accuracy.ravel()}
        parts.append(pd.DataFrame({"run_dir": str(ls.run_dir), "label": label, **grid}))
    return pd.concat(parts, ignore_index=True)


def write(landscapes: Sequence[Landscape], out: Path, settings: str = "") -> list[Path]:
    paths = plotting.save(plot(landscapes), out, STEM)
    data = out / f"{STEM}.csv"
    to_frame(landscapes).to_csv(data, index=False, float_format="%.6g")
    caption = out / f"{STEM}.txt"
    lines = [(__doc__ or "").split("\n\n")[1].replace("\n", " "), settings]
    lines += [
        f"{ls.label.replace(chr(10), ' | ')}: accuracy at the centre {ls.center:.4f}" for ls in landscapes
    ]
    caption.write_text("\n".join(filter(None, lines)) + "\n")
    return [*paths, data, caption]


def build_parser() -> argparse.ArgumentParser:
    p = cli.parser("analysis.landscape", __doc__, results_arg=False, filters=False)
    p.add_argument(
        "runs", nargs="+", type=Path, metavar="RUN_DIR", help="run directories (with checkpoint.pt)"
    )
    p.add_argument("--grid", type=int, default=21, help="points per axis (odd; default 21)")
    p.add_argument("--span", type=float, default=1.5, help="half-width of the grid (default 1.5)")
    p.add_argument("--batches", type=int, default=4, help="validation batches per grid point (default 4)")
    p.add_argument("--direction-seed", type=int, default=0, help="seed of the random directions (default 0)")
    p.add_argument("--norm", choices=NORMS, default="row", help="normalize directions per row or per tensor")
    p.add_argument("--data-dir", type=Path, default=None, help="where bench.data put CIFAR-10 (nb101 runs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return p


def _body(args: argparse.Namespace, _res: object) -> list[Path]:
    landscapes = [
        compute(run, grid=args.grid, span=args.span, batches=args.batches, seed=args.direction_seed,
                norm=args.norm, data_dir=args.data_dir, device=args.device)
        for run in args.runs
    ]  # fmt: skip
    settings = (
        f"grid {args.grid}x{args.grid} over [-{args.span:g}, {args.span:g}]^2, {args.batches} batch(es), "
    )
    settings += f"direction seed {args.direction_seed}, {args.norm}-normalized"
    return write(landscapes, args.out, settings)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_command(_body, build_parser, argv, needs_results=False)


if __name__ == "__main__":
    raise SystemExit(main())

"""Figures 3 and 4, the regret curves and the bandwidth plot, inspected as matplotlib objects.

All results here are synthetic TEST FIXTURES (tests/test_analysis_fixtures.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from analysis import figure3, figure4, plotting, regret, table4
from analysis.load import Results, load
from bench import results
from tests.analysis.fixtures import read_all, write_run

GROUPS = [
    "DARTS",
    "SDARTS-RS",
    "MS-DARTS [bandwidth=0.3]",
    "MS-DARTS [bandwidth=1]",
    "MS-DARTS [bandwidth=3]",
]
LEGEND = [f"{g} (n={2 if g.endswith('=3]') else 3})" for g in GROUPS]


def panels(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_title().startswith("Search space")]


def title(fig: Figure) -> str:
    """The suptitle with its wrapping undone."""
    return " ".join(fig.get_suptitle().split())


def legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def line(ax, label: str):
    return next(ln for ln in ax.lines if ln.get_label() == label)


def test_figure3_panels_lines_labels(grid_results: Path, grid: Results) -> None:
    res = grid
    fig = figure3.plot(figure3.compute(res), res)
    axes = panels(fig)
    assert len(fig.axes) == 2 and [ax.get_title() for ax in axes] == ["Search space 1", "Search space 2"]
    for ax in axes:
        assert [ln.get_label() for ln in ax.lines] == LEGEND
        assert legend_texts(ax) == LEGEND
        assert len(ax.collections) == 5  # one 95% band per line
        assert ax.get_xlabel() == "search epoch" and "dominant Hessian eigenvalue" in ax.get_ylabel()
        assert ax.get_yscale() == "linear"
    assert "embedded digits benchmark — not NAS-Bench-101" in title(fig)
    # The plotted DARTS mean in space 2 is the plain mean over seeds per epoch.
    direct = read_all(grid_results)
    darts = direct[(direct["optimizer"] == "darts") & (direct["space"] == 2)]
    want = darts.groupby("epoch")["hessian_eig_max"].mean()
    ln = line(axes[1], "DARTS (n=3)")
    np.testing.assert_allclose(ln.get_xdata(), want.index + 1)
    np.testing.assert_allclose(ln.get_ydata(), want.to_numpy())
    assert figure3.plot(figure3.compute(res), res, log=True).axes[0].get_yscale() == "log"


def test_figure3_states_the_benchmark(tmp_path: Path) -> None:
    write_run(tmp_path, benchmark="nb101")
    res = load(tmp_path)
    assert "NAS-Bench-101 (CIFAR-10)" in title(figure3.plot(figure3.compute(res), res))


def test_figure3_reports_missing_epochs_and_nan(tmp_path: Path, caplog, stub_savefig: None) -> None:
    root = tmp_path / "r"
    for seed in range(3):
        write_run(root, seed=seed, epochs=5)
    write_run(root, seed=3, epochs=5, done=range(2), state="running")
    write_run(root, seed=4, epochs=5, nan_eig_epochs=[1, 2])
    write_run(root, seed=5, epochs=5, cfg={"hessian_every": 2})  # measured at 0, 2, 4 only: not a problem
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        assert figure3.main([str(root), "-o", str(out)]) == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "1 run(s) with missing epochs" in w and "seed3 (2 of 5 epochs, state running)" in w for w in warned
    )
    assert any("1 run(s) with NaN eigenvalues" in w and "seed4" in w and "1, 2" in w for w in warned)
    assert not any("seed5" in w for w in warned)

    res = load(root)
    f3 = figure3.compute(res)
    n_per_epoch = f3.stats.set_index("epoch")["n"].to_dict()
    # epoch 0: all 6; 1: minus seed4 (NaN), seed5 (not measured); 2: minus seed3 (cut), seed4; 3: minus 3, 5
    assert n_per_epoch == {0: 6, 1: 4, 2: 4, 3: 4, 4: 5}
    fig = figure3.plot(f3, res)
    assert legend_texts(fig.axes[0]) == ["DARTS (n=4–6)"]
    note = plotting.footnote_text(fig)
    assert "1 run(s) with missing epochs" in note and "1 run(s) with NaN eigenvalues" in note
    caption = (out / "figure3.txt").read_text()
    assert "seed3" in caption and "seed4" in caption
    assert {p.name for p in out.iterdir()} == {
        "figure3.png", "figure3.pdf", "figure3_data.csv", "figure3.txt", "warnings.txt",
        "figure3_final.csv", "figure3_final.md", "figure3_final.tex",
    }  # fmt: skip


def test_figure3_files_really_render(tmp_path: Path) -> None:
    """The one test that renders (the others stub savefig to keep the suite fast)."""
    write_run(tmp_path / "r", epochs=2)
    out = tmp_path / "out"
    assert figure3.main([str(tmp_path / "r"), "-o", str(out), "--log"]) == 0
    assert (out / "figure3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "figure3.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (out / "warnings.txt").exists()


def test_regret_curves(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for seed in range(3):
        write_run(root, space=1, optimizer="gdas", seed=seed)
        write_run(root, space=3, optimizer="gdas", seed=seed, regret=False)
    res = load(root)
    fig = regret.plot(regret.compute(res), res)
    s1, s3 = panels(fig)
    assert s1.get_yscale() == "log" and s3.get_yscale() == "log"
    assert legend_texts(s1) == ["GDAS (n=3)"] and s1.get_ylabel() == "test regret (log scale)"
    assert not s3.lines and "no optimum known" in s3.texts[0].get_text()
    direct = read_all(root)
    want = direct[direct["space"] == 1].groupby("epoch")["test_regret"].mean()
    np.testing.assert_allclose(s1.lines[0].get_ydata(), want.to_numpy())


def test_figure4_loss_against_alpha_distance(grid_results: Path, grid: Results) -> None:
    res = grid
    f4 = figure4.compute(res)
    fig = figure4.plot(f4, res)
    axes = panels(fig)
    assert len(axes) == 2 and all(legend_texts(ax) == LEGEND for ax in axes)
    assert "α_final" in axes[0].get_xlabel() and axes[0].get_ylabel() == "one-shot training loss"
    ln = line(axes[0], "DARTS (n=3)")
    # Direct: each seed's distance from its own last alphas, then the mean over seeds per epoch.
    dists, losses = [], []
    direct = read_all(grid_results)
    for seed in range(3):
        run = grid_results / "digits" / "space1" / "darts" / "paper" / f"seed{seed}"
        _, arrays = results.read_alphas(run / results.ALPHAS_NPZ)
        flat = np.concatenate([arrays[k].reshape(len(arrays[k]), -1) for k in arrays], axis=1)
        dists.append(np.linalg.norm(flat - flat[-1], axis=1))
        losses.append(
            direct[direct["path"] == str(run)].sort_values("epoch")["oneshot_train_loss"].to_numpy()
        )
    np.testing.assert_allclose(ln.get_xdata(), np.mean(dists, axis=0))
    np.testing.assert_allclose(ln.get_ydata(), np.mean(losses, axis=0))
    assert ln.get_xdata()[-1] == pytest.approx(0.0)


def test_figure4_leaves_out_and_reports_runs_without_alphas(tmp_path: Path) -> None:
    write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1, alphas=False)
    write_run(tmp_path, seed=2, done=range(2))
    f4 = figure4.compute(load(tmp_path))
    assert set(f4.points["run"].str[-5:]) == {"seed0"}
    assert {(i.run[-5:], i.kind) for i in f4.issues} == {("seed1", "no_alphas"), ("seed2", "missing_epochs")}


def test_bandwidth_plot(grid: Results) -> None:
    res = grid
    t4 = table4.compute(res)
    fig = table4.plot(t4, res)
    axes = panels(fig)
    assert len(axes) == 2
    for ax in axes:
        assert ax.get_xscale() == "log" and len(ax.lines) == 1
        assert legend_texts(ax) == ["MS-DARTS (runs per h: 3, 3, 2)"]
        np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.3, 1.0, 3.0])
        assert [t.get_text() for t in ax.texts] == ["n=3", "n=3", "n=2"]
    assert "final epoch" in axes[0].get_ylabel()


def test_figure3_window_is_a_trailing_mean_per_run(grid_results: Path, grid: Results) -> None:
    # Independent: each run's values averaged over its last 2 epochs (epoch 0 alone), then over seeds.
    direct = read_all(grid_results)
    darts = direct[(direct["optimizer"] == "darts") & (direct["space"] == 2)].sort_values(["seed", "epoch"])
    smooth = darts.assign(
        eig=[
            np.mean(g["hessian_eig_max"].to_numpy()[max(0, i - 1) : i + 1])
            for _, g in darts.groupby("seed")
            for i in range(len(g))
        ]
    )
    f3 = figure3.compute(grid, window=2)
    got = f3.stats[(f3.stats["space"] == 2) & (f3.stats["group"] == "DARTS")].sort_values("epoch")
    np.testing.assert_allclose(got["mean"], smooth.groupby("epoch")["eig"].mean().to_numpy())
    final = f3.final[(f3.final["space"] == 2) & (f3.final["group"] == "DARTS")]
    last_two = darts[darts["epoch"] >= 2].groupby("seed")["hessian_eig_max"].mean()
    assert final["mean"].item() == pytest.approx(last_two.mean())
    assert "last 2 measured epochs" in f3.caption
    # One epoch is the unsmoothed figure.
    assert figure3.compute(grid, window=1).stats.equals(figure3.compute(grid).stats)


def test_window_must_be_positive_and_final_only(grid_results: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as bad:  # argparse: usage line, exit code 2
        figure3.main([str(grid_results), "-o", str(tmp_path / "a"), "--window", "0"])
    assert bad.value.code == 2 and "--window: 0 must be >= 1" in capsys.readouterr().err
    assert table4.main([str(grid_results), "-o", str(tmp_path / "b"), "--over", "all", "--window", "3"]) == 2
    assert "use it with --over final" in capsys.readouterr().err

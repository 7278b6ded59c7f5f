"""analysis.table4 and analysis.regret: every number equals a direct pandas computation on the CSVs.

All results here are synthetic TEST FIXTURES (tests/test_analysis_fixtures.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import regret, table4
from analysis.load import Results, load
from tests.analysis.fixtures import read_all, write_run


def _with_bandwidth(frame: pd.DataFrame) -> pd.DataFrame:
    """Bandwidth straight from each run's config.json (independent of the loader)."""
    bw = {p: json.loads((Path(p) / "config.json").read_text())["optimizer_hyperparameters"].get("bandwidth")
          for p in frame["path"].unique()}  # fmt: skip
    return frame.assign(bandwidth=frame["path"].map(bw))


def _expected(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    return frame.groupby(keys)[value].agg(["mean", "std", "count"]).reset_index()


@pytest.mark.parametrize("over", ["final", "all"])
def test_table4_equals_pandas(grid_results: Path, grid: Results, over: str) -> None:
    direct = _with_bandwidth(read_all(grid_results))
    direct = direct[direct["optimizer"] == "msdarts"]
    if over == "final":
        direct = direct[direct["epoch"] == direct["epoch"].max()]
    want = _expected(direct, ["space", "bandwidth"], "hessian_eig_max")
    got = table4.compute(grid, over).raw.sort_values(["space", "bandwidth"]).reset_index(drop=True)
    np.testing.assert_allclose(got["eig_mean"], want["mean"])
    np.testing.assert_allclose(got["eig_std"], want["std"])
    assert got["n_values"].tolist() == want["count"].tolist()
    assert got["n_runs"].tolist() == [3, 3, 2, 3, 3, 2] and (got["n_left_out"] == 0).all()
    assert (got["over"] == over).all() and "other_settings" not in got  # epsilon is the same everywhere


def test_table4_files(grid: Results, tmp_path: Path, stub_savefig: None) -> None:
    t4 = table4.compute(grid, "all")
    paths = table4.write(grid, tmp_path, "all")
    assert {p.name for p in paths} == {"table4.csv", "table4.md", "table4.tex", "table4_bandwidth.png",
                                       "table4_bandwidth.pdf"}  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "table4.csv"), t4.raw, check_dtype=False)
    md = (tmp_path / "table4.md").read_text()
    assert "over=all" in md and "pooled over epochs and runs" in md
    assert "| space | bandwidth h | λ_max (all) mean ± std | runs | values | left out |" in md
    first = t4.raw.iloc[0]
    assert f"| 1 | 0.3 | {first['eig_mean']:.4g} ± {first['eig_std']:.3g} | 3 | 12 | 0 |" in md
    tex = (tmp_path / "table4.tex").read_text()
    assert r"$\pm$" in tex and r"$\lambda_{\max}$" in tex and "over=all" in tex


def test_table4_reports_cut_runs_and_nan_eigenvalues(tmp_path: Path, stub_savefig: None) -> None:
    root = tmp_path / "r"
    for seed in range(3):
        write_run(root, optimizer="msdarts", seed=seed, hp={"bandwidth": 1.0})
    write_run(root, optimizer="msdarts", seed=3, hp={"bandwidth": 1.0}, done=range(2), state="failed")
    write_run(root, optimizer="msdarts", seed=4, hp={"bandwidth": 1.0}, nan_eig_epochs=[3])
    out = tmp_path / "out"
    out.mkdir()
    assert table4.main([str(root), "-o", str(out)]) == 0
    raw = pd.read_csv(out / "table4.csv")
    assert raw["n_runs"].tolist() == [3] and raw["n_left_out"].tolist() == [2]
    warnings = (out / "warnings.txt").read_text()
    assert "seed3" in warnings and "missing_epochs" in warnings
    assert "seed4" in warnings and "nan_eig" in warnings
    assert "2 run(s)" not in warnings.splitlines()[0]  # the header counts issues, not runs
    md = (out / "table4.md").read_text()
    assert "1 run(s) with missing epochs" in md and "1 run(s) with NaN eigenvalues" in md
    # over=all keeps seed 3's two epochs and seed 4's three finite ones
    t4 = table4.compute(load(root), "all")
    assert t4.raw["n_values"].tolist() == [3 * 4 + 2 + 3] and t4.raw["n_runs"].tolist() == [5]


def test_table4_without_msdarts_exits_2(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r")
    assert table4.main([str(tmp_path / "r"), "-o", str(tmp_path / "out")]) == 2
    assert "no MS-DARTS runs with a bandwidth" in capsys.readouterr().err


def test_regret_table_equals_pandas(
    grid_results: Path, grid: Results, tmp_path: Path, stub_savefig: None
) -> None:
    direct = read_all(grid_results)
    final = direct[direct["epoch"] == direct["epoch"].max()]
    final = _with_bandwidth(final).assign(bandwidth=lambda f: f["bandwidth"].fillna(-1))
    keys = ["space", "optimizer", "bandwidth"]
    err = _expected(final, keys, "test_error_mean")
    reg = _expected(final, keys, "test_regret")
    res = grid
    got = regret.compute(res).final
    # The loader's groups, mapped back to (optimizer, bandwidth) through the runs table.
    key_of = res.runs.drop_duplicates("group").set_index("group")
    got = got.assign(
        optimizer=got["group"].map(key_of["optimizer"]),
        bandwidth=got["group"].map(key_of["hp.bandwidth"]).fillna(-1),
    ).sort_values(keys, ignore_index=True)
    np.testing.assert_allclose(got["test_error_mean"], err["mean"])
    np.testing.assert_allclose(got["test_error_std"], err["std"])
    np.testing.assert_allclose(got["test_regret_mean"], reg["mean"])
    np.testing.assert_allclose(got["test_regret_std"], reg["std"])
    assert got["n_test_error"].tolist() == err["count"].tolist() == got["n_test_regret"].tolist()
    assert (got["regret_reference"] == got["space"].map({1: 0.05, 2: 0.06})).all()

    regret.write(res, tmp_path)
    md = (tmp_path / "regret_final.md").read_text()
    assert "| space | optimizer | seeds | test error (mean ± std) | test regret (mean ± std) |" in md
    assert "| 1 | MS-DARTS [bandwidth=3] | 2 |" in md
    assert "lowest mean test error of the fully tabulated space" in md
    assert len(pd.read_csv(tmp_path / "regret_final.csv")) == 10


def test_regret_empty_where_space_not_tabulated(tmp_path: Path) -> None:
    root = tmp_path / "r"
    for seed in range(2):
        write_run(root, space=1, seed=seed)
        write_run(root, space=3, seed=seed, regret=False)
    reg = regret.compute(load(root))
    table = reg.final.set_index("space")
    assert table.loc[3, "n_test_regret"] == 0 and np.isnan(table.loc[3, "test_regret_mean"])
    assert table.loc[3, "n_test_error"] == 2  # the test error is still there
    assert table.loc[1, "n_test_regret"] == 2
    assert regret.shown(reg).set_index("space").loc[3, "test regret (mean ± std)"] == "– (no optimum known)"
    assert any("space(s) 3" in n for n in reg.notes)
    assert sorted(i.run.split("/")[1] for i in reg.issues if i.kind == "no_regret") == ["space3", "space3"]


def test_random_baseline_row_and_band(tmp_path: Path, stub_savefig: None) -> None:
    """FIXTURE baseline for space 1 only: a row after space 1's optimizers, a dashed line in its panel."""
    root = tmp_path / "r"
    base = {"mean": 0.3, "median": 0.26, "p10": 0.1, "p90": 0.5, "n_models": 2685}
    for seed in range(2):
        write_run(root, space=1, seed=seed, baseline=base)
        write_run(root, space=2, seed=seed)
    res = load(root)
    reg = regret.compute(res)
    table = reg.final.set_index("space")
    assert table.loc[1, "random_regret_mean"] == 0.3 and table.loc[1, "random_regret_p90"] == 0.5
    assert np.isnan(table.loc[2, "random_regret_mean"])
    shown = regret.shown(reg)
    assert shown["optimizer"].tolist() == ["DARTS", regret.RANDOM, "DARTS"]
    assert shown.loc[1, "test regret (mean ± std)"] == "0.3000 [0.1000, 0.5000]"
    assert any("uniformly random unique model" in n for n in reg.notes)
    fig = regret.plot(reg, res)
    s1, s2 = (ax for ax in fig.axes if ax.get_visible())
    dashed = [line for line in s1.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [0.3, 0.3]
    assert not [line for line in s2.lines if line.get_linestyle() == "--"]
    (tmp_path / "out").mkdir()
    regret.write(res, tmp_path / "out")
    assert (
        "| 1 | random architecture | – | – | 0.3000 [0.1000, 0.5000] | – |"
        in (tmp_path / "out" / "regret_final.md").read_text()
    )


def test_table4_window_averages_each_runs_last_epochs(grid_results: Path, grid: Results) -> None:
    direct = _with_bandwidth(read_all(grid_results))
    direct = direct[(direct["optimizer"] == "msdarts") & (direct["epoch"] >= direct["epoch"].max() - 2)]
    per_run = direct.groupby(["space", "bandwidth", "seed"])["hessian_eig_max"].mean().reset_index()
    want = _expected(per_run, ["space", "bandwidth"], "hessian_eig_max")
    got = table4.compute(grid, "final", window=3).raw.sort_values(["space", "bandwidth"])
    got = got.reset_index(drop=True)
    np.testing.assert_allclose(got["eig_mean"], want["mean"])
    np.testing.assert_allclose(got["eig_std"], want["std"])
    assert (got["n_runs"] == want["count"]).all()

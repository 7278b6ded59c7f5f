"""analysis.blackbox: black-box runs (real, on the shipped digits space-1 table) beside synthetic one-shot
runs (TEST FIXTURES from tests/analysis/fixtures.py) against time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import blackbox
from analysis.load import Filters
from bench.blackbox import runs
from bench.blackbox.runs import BlackboxRequest
from tests.analysis.fixtures import write_run
from tests.blackbox.helpers import shipped_digits


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bb_analysis") / "results"
    table = shipped_digits(root.parent / "digits.sqlite")
    for method in ("rs", "re"):
        for seed in range(3):
            req = BlackboxRequest(
                method, 1, seed, "digits", 30, root, {"population": 10} if method == "re" else {}
            )
            assert runs.execute(req, table).state == "complete"
    for seed in range(2):
        write_run(root, optimizer="darts", seed=seed)
    return root


def test_step_values() -> None:
    times, values = np.array([1.0, 3.0, 10.0]), np.array([0.5, 0.2, 0.1])
    got = blackbox.step_values(times, values, np.array([0.5, 1.0, 2.9, 3.0, 9.0, 10.0, 11.0]))
    np.testing.assert_array_equal(got, [np.nan, 0.5, 0.5, 0.2, 0.2, 0.1, np.nan])


def test_curves_and_tables(mixed: Path, tmp_path: Path, stub_savefig) -> None:
    paths = blackbox.write(mixed, tmp_path, Filters())
    assert {p.name for p in paths} == {
        "blackbox_regret.png", "blackbox_regret.pdf", "blackbox_regret_curves.csv", "blackbox_regret.txt",
        "blackbox_regret_final.csv", "blackbox_regret_final.md", "blackbox_regret_final.tex",
    }  # fmt: skip
    curves = pd.read_csv(tmp_path / "blackbox_regret_curves.csv")
    assert set(curves["group"]) == {"Random search", "Regularized evolution", "DARTS"}
    assert curves.groupby("group")["n"].unique().map(list).to_dict() == {
        "DARTS": [2], "Random search": [3], "Regularized evolution": [3]
    }  # fmt: skip
    # The mean at a time equals the mean of the seeds' step functions, computed here from the CSVs.
    rs = curves[curves["group"] == "Random search"].iloc[len(curves) // 10]
    frames = [pd.read_csv(p) for p in sorted(mixed.rglob("rs/seed*/queries.csv"))]
    at = [f.loc[f["simulated_seconds"] <= rs["time"], "test_regret"].iloc[-1] for f in frames]
    assert rs["mean"] == pytest.approx(np.mean(at))
    # One-shot time: wall-clock minus the Hessian seconds so far (fixture: epoch e ends at e + 1 s,
    # each with 0.1 s of Hessian)
    darts = curves[curves["group"] == "DARTS"]
    assert darts["time"].min() >= 0.9 - 1e-9 and darts["time"].max() <= 3.6 + 1e-9
    final = pd.read_csv(tmp_path / "blackbox_regret_final.csv")
    assert set(final["kind"]) == {"black-box", "one-shot"} and final["n"].tolist() == [3, 3, 2]
    text = (tmp_path / "blackbox_regret.txt").read_text()
    assert "not NAS-Bench-101" in text and "Seeds per line: space 1: Random search n=3" in text


def test_figure_dashes_black_box_lines(mixed: Path) -> None:
    bb = blackbox.blackbox_runs(mixed, None, (), ())
    os_rows, order = blackbox.oneshot_runs(mixed, Filters())
    cols = ["run", "space", "group", "kind", "seed", "time", "test_regret"]
    stats = blackbox.curves(pd.concat([bb[cols], os_rows[cols]]))
    fig = blackbox.plot(stats, ["Random search", "Regularized evolution", *order], [1], "digits")
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    assert styles == {"Random search (n=3)": "--", "Regularized evolution (n=3)": "--", "DARTS (n=2)": "-"}
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    assert "not NAS-Bench-101" in fig._suptitle.get_text().replace("\n", " ")


def test_without_black_box_runs_exits_2(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r")
    assert blackbox.main([str(tmp_path / "r"), "-o", str(tmp_path / "out")]) == 2
    assert "no complete black-box runs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


LAYOUT_1 = Path(__file__).parents[1] / "assets" / "blackbox_v1"


def test_regret_against_queries_counts_every_query(tmp_path: Path, stub_savefig) -> None:
    """hb (LadderTable, a TEST FIXTURE of four budgets) beside rs: x is the query number at any budget,
    hb's line starts at its first full-budget query (no incumbent before), one-shot runs are left out."""
    from tests.blackbox.helpers import LadderTable

    root = tmp_path / "results"
    for method in ("hb", "rs"):
        for seed in range(2):
            req = BlackboxRequest(method, 1, seed, "ladder", 70, root)
            assert runs.execute(req, LadderTable()).state == "complete"
    write_run(root, optimizer="darts", seed=0)  # another benchmark, and no queries: not shown
    paths = blackbox.write(root, tmp_path / "out", Filters(benchmark="ladder"), x="queries")
    assert {p.name for p in paths} >= {"blackbox_regret_queries.png", "blackbox_regret_queries_curves.csv"}
    curves = pd.read_csv(tmp_path / "out" / "blackbox_regret_queries_curves.csv")
    assert set(curves["group"]) == {"Hyperband", "Random search"}
    hb = curves[curves["group"] == "Hyperband"]
    assert hb["queries"].min() >= 40 and hb["queries"].max() == 70  # 27 + 9 + 3 below 108 epochs first
    frames = [pd.read_csv(p) for p in sorted(root.rglob("hb/seed*/queries.csv"))]
    at = hb.iloc[-1]
    assert at["mean"] == pytest.approx(np.mean([f["test_regret"].iloc[-1] for f in frames]))
    final = pd.read_csv(tmp_path / "out" / "blackbox_regret_queries_final.csv")
    assert final["median_end_time"].tolist() == [70, 70]
    assert "against table queries" in (tmp_path / "out" / "blackbox_regret_queries.txt").read_text()


def test_runs_of_the_older_layout_plot_under_their_names(tmp_path: Path, stub_savefig) -> None:
    """Runs written before epoch budgets (tests/assets/blackbox_v1): their `bohb` is bohb-repeats."""
    blackbox.write(LAYOUT_1, tmp_path, Filters())
    groups = set(pd.read_csv(tmp_path / "blackbox_regret_curves.csv")["group"])
    assert groups == {
        "Random search",
        "Regularized evolution",
        "TPE",
        "BOHB over repeats (TPE + Hyperband pruner)",
    }

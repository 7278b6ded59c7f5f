"""analysis.load / stats / cli: reading results directories, filters, groups, problems and errors.

All results here are synthetic TEST FIXTURES (tests/test_analysis_fixtures.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import figure3, figure4, regret, report, table4
from analysis.load import AnalysisError, Filters, Results, load
from analysis.stats import describe, fmt_pm, n_label
from bench import results
from tests.analysis.fixtures import read_all, write_run

COMMANDS = [figure3.main, table4.main, regret.main, figure4.main, report.main]


def test_fixture_writes_the_real_layout(tmp_path: Path) -> None:
    out = write_run(tmp_path, space=2, optimizer="msdarts", seed=3, hp={"bandwidth": 1.0})
    assert out == tmp_path / "digits" / "space2" / "msdarts" / "paper" / "seed3"
    assert results.find_runs(tmp_path) == [out]
    frame = results.load_results(tmp_path)
    assert list(frame.columns[: len(results.COLUMNS)]) == list(results.COLUMNS)
    epochs, arrays = results.read_alphas(out / results.ALPHAS_NPZ)
    assert epochs == [0, 1, 2, 3] and arrays["inputs_2"].shape == (4, 1, 2)
    assert results.read_json(out / results.CONFIG_JSON)["benchmark_note"].startswith("TEST FIXTURE")


def test_every_run_with_its_settings_as_columns(grid_results: Path, grid: Results) -> None:
    res = grid
    assert len(res.runs) == 2 * (3 + 3 + 3 + 3 + 2)
    assert len(res.epochs) == len(read_all(grid_results))
    assert res.benchmark == "digits" and res.spaces == [1, 2]
    ms = res.runs[res.runs["optimizer"] == "msdarts"]
    assert sorted(ms["hp.bandwidth"].unique()) == [0.3, 1.0, 3.0]
    # Only the setting that differs names the group; epsilon is the same everywhere.
    assert res.groups() == [
        "DARTS",
        "SDARTS-RS",
        "MS-DARTS [bandwidth=0.3]",
        "MS-DARTS [bandwidth=1]",
        "MS-DARTS [bandwidth=3]",
    ]
    assert res.runs["complete"].all() and not res.issues
    assert "hp.bandwidth" in res.epochs.columns


def test_filters(grid_results: Path) -> None:
    res = load(grid_results, Filters(spaces=(2,), optimizers=("MS-DARTS",), tags=("paper_bandwidth=1",)))
    # Groups name only what differs within the selection: one bandwidth left, so no suffix.
    assert set(res.runs["space"]) == {2} and set(res.runs["group"]) == {"MS-DARTS"}
    assert set(res.runs["hp.bandwidth"]) == {1.0}
    assert len(res.runs) == 3


def test_correlation_settings_do_not_split_a_group(tmp_path: Path) -> None:
    # Scoring the correlation leaves the search unchanged, so a space-1 run that measured it and a
    # space-2 run that did not are one optimizer line in Figure 3 (as the README's grid runs them).
    corr = {"correlation_every": 50, "correlation_samples": 64}
    write_run(tmp_path, space=1, tag="paper_correlation_every=50_correlation_samples=64", cfg=corr)
    write_run(tmp_path, space=2, tag="paper")
    write_run(tmp_path, space=2, tag="paper", optimizer="darts", seed=1, cfg={"grad_clip": 1.0})
    res = load(tmp_path)
    assert res.runs.set_index(["space", "seed"])["group"].to_dict() == {
        (1, 0): "DARTS [grad_clip=5]",
        (2, 0): "DARTS [grad_clip=5]",
        (2, 1): "DARTS [grad_clip=1]",
    }


def test_missing_epochs_are_reported_not_dropped(tmp_path: Path) -> None:
    write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1, done=range(2), state="running")
    write_run(tmp_path, seed=2, done=[0, 1, 3], state="failed")
    res = load(tmp_path)
    kinds = {(i.run.split("/")[-1], i.kind): i.detail for i in res.issues}
    assert kinds[("seed1", "missing_epochs")] == "2 of 4 epochs, state running"
    assert "gaps at epochs [2]" in kinds[("seed2", "missing_epochs")]
    assert res.runs.set_index("seed")["complete"].to_dict() == {0: True, 1: False, 2: False}
    assert len(res.epochs) == 4 + 2 + 3  # the rows of cut runs stay in (curves use them)
    assert res.final_rows()["seed"].tolist() == [0]


def test_run_without_config_is_kept_and_reported(tmp_path: Path) -> None:
    write_run(tmp_path, seed=0)
    write_run(tmp_path, seed=1, config=False)
    res = load(tmp_path)
    assert [i.kind for i in res.issues] == ["no_config"]
    assert set(res.runs["group"]) == {"DARTS", "DARTS [settings unknown]"}


@pytest.mark.parametrize(
    ("make", "filters", "match"),
    [
        (lambda root: None, Filters(), "does not exist"),
        (lambda root: root.mkdir(), Filters(), "no runs under"),
        (lambda root: write_run(root, space=1), Filters(spaces=(3,)), "no runs under .* match --space 3"),
        (lambda root: (write_run(root), write_run(root, benchmark="nb101")), Filters(), "several benchmarks"),
    ],
    ids=["missing", "empty", "no-match", "mixed"],
)
def test_load_errors(tmp_path: Path, make, filters: Filters, match: str) -> None:
    root = tmp_path / "results"
    make(root)
    with pytest.raises(AnalysisError, match=match):
        load(root, filters)


def test_mixed_benchmarks_never_averaged_but_filter_picks_one(tmp_path: Path) -> None:
    write_run(tmp_path, benchmark="digits", seed=0)
    write_run(tmp_path, benchmark="nb101", seed=1)
    res = load(tmp_path, Filters(benchmark="nb101"))
    assert set(res.epochs["benchmark"]) == {"nb101"} and len(res.runs) == 1


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__module__)
def test_cli_mixed_directory_exits_2_with_one_line(tmp_path: Path, capsys, command) -> None:
    write_run(tmp_path / "r", benchmark="digits")
    write_run(tmp_path / "r", benchmark="nb101")
    assert command([str(tmp_path / "r"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--benchmark" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.__module__)
def test_cli_empty_directory_exits_2(tmp_path: Path, capsys, command) -> None:
    (tmp_path / "r").mkdir()
    assert command([str(tmp_path / "r"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no runs under" in err[0]


@pytest.mark.slow  # seconds of interpreter and import start-up; main() itself is tested above
def test_cli_as_a_process_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.figure3", str(tmp_path / "nope"), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: results directory {tmp_path / 'nope'} does not exist; pass the --out directory of bench.run"
    ]


# ---- stats ---------------------------------------------------------------------------------------
def test_describe_matches_scipy_t_interval() -> None:
    frame = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 2 + ["c"], "v": [1.0, 2.0, 4.0, np.nan, 3.0, 5.0, 7.0]})
    out = describe(frame, ["g"], "v").set_index("g")
    a = np.array([1.0, 2.0, 4.0])
    lo, hi = st.t.interval(0.95, len(a) - 1, loc=a.mean(), scale=st.sem(a))
    assert out.loc["a", "n"] == 3 and out.loc["a", "mean"] == pytest.approx(a.mean())
    assert out.loc["a", "std"] == pytest.approx(a.std(ddof=1))
    assert (out.loc["a", "ci_low"], out.loc["a", "ci_high"]) == pytest.approx((lo, hi))
    assert out.loc["c", "n"] == 1 and np.isnan(out.loc["c", "ci_low"])  # one seed: no band


def test_labels() -> None:
    assert n_label([5, 5, 5]) == "n=5" and n_label([3, 5, 4]) == "n=3–5"
    assert fmt_pm(0.12345, 0.00567) == "0.1235 ± 0.00567"
    assert fmt_pm(0.5, float("nan")) == "0.5 (one run)"


def test_a_setting_a_run_predates_reads_as_its_default(tmp_path) -> None:
    """A run written before a setting existed ran at its default: it pools with later runs at the
    default (and truth_budgets, which changes what is looked up, not the search, never splits a group)."""
    import json

    from analysis.load import load
    from bench import results
    from tests.analysis.fixtures import write_run

    old = write_run(tmp_path, seed=0)
    record = json.loads((old / results.CONFIG_JSON).read_text())
    for key in ("reproducible", "truth_budgets"):
        del record["config"][key]
    results.write_json(old / results.CONFIG_JSON, record)
    write_run(tmp_path, seed=1)
    write_run(tmp_path, seed=2, cfg={"truth_budgets": (4, 108)})
    res = load(tmp_path)
    assert res.runs["group"].nunique() == 1, res.runs["group"].tolist()

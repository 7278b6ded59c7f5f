"""analysis.correlation on correlation.csv files written by the fixtures (synthetic numbers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import correlation, report
from analysis.load import load
from bench import results
from tests.analysis.fixtures import write_run


def write_correlation(run_dir: Path, rho: list[float]) -> None:
    """TEST FIXTURE: a correlation.csv with the given Spearman per measured epoch (epochs 1, 3, ...)."""
    rows = [{"epoch": 2 * i + 1, "n": 20, "oneshot_acc_mean": 0.5, "spearman_valid": r,
             "kendall_valid": r / 2,
             "top10_overlap_valid": 0.5, "spearman_test": r, "kendall_test": r / 2, "top10_overlap_test": 0.5,
             "seconds": 1.0} for i, r in enumerate(rho)]  # fmt: skip
    results.write_table(run_dir / results.CORRELATION_CSV, rows, results.CORRELATION_COLUMNS)


@pytest.fixture
def corr_results(tmp_path: Path) -> Path:
    for seed, shift in enumerate([0.0, 0.2]):
        write_correlation(write_run(tmp_path, optimizer="darts", seed=seed), [0.1 + shift, 0.3 + shift])
        write_correlation(write_run(tmp_path, optimizer="msdarts", seed=seed), [0.5 + shift, 0.7 + shift])
    write_run(tmp_path, optimizer="gdas", seed=0)  # a run without the measurement is simply left out
    return tmp_path


def test_means_over_seeds_per_optimizer_and_epoch(corr_results: Path, stub_savefig) -> None:
    corr = correlation.compute(load(corr_results))
    s = corr.stats[corr.stats["metric"] == "spearman_valid"].set_index(["group", "epoch"])
    assert s.loc[("DARTS", 1), "mean"] == pytest.approx(0.2) and s.loc[("DARTS", 1), "n"] == 2
    assert s.loc[("MS-DARTS", 3), "mean"] == pytest.approx(0.8)
    assert "20 models" in corr.caption


def test_cli_writes_figure_and_data(corr_results: Path, tmp_path: Path, stub_savefig) -> None:
    out = tmp_path / "fig"
    assert correlation.main([str(corr_results), "-o", str(out), "--metric", "spearman_test"]) == 0
    data = pd.read_csv(out / "correlation_data.csv")
    assert set(data["metric"]) >= {"spearman_valid", "spearman_test", "top10_overlap_test"}
    assert (out / "correlation.txt").exists()


def test_no_measurement_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r")
    assert correlation.main([str(tmp_path / "r"), "-o", str(tmp_path / "o")]) == 2
    assert "correlation_every" in capsys.readouterr().err


def test_report_has_the_section(corr_results: Path, tmp_path: Path, stub_savefig) -> None:
    assert report.main([str(corr_results), "-o", str(tmp_path / "rep")]) == 0
    assert "One-shot vs ground-truth correlation" in (tmp_path / "rep" / report.REPORT_HTML).read_text()

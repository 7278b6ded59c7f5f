"""analysis.report: one self-contained HTML page from a results directory.

All results here are synthetic TEST FIXTURES (tests/test_analysis_fixtures.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from analysis import report, settings
from analysis.load import load
from tests.analysis.fixtures import write_run


def test_report_has_every_part_with_seed_counts(
    grid_results: Path, tmp_path: Path, stub_savefig: None
) -> None:
    assert report.main([str(grid_results), "-o", str(tmp_path)]) == 0
    page = (tmp_path / report.REPORT_HTML).read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    assert titles == [
        "Figure 3: dominant Hessian eigenvalue during search",
        "Table 4: eigenvalue per MS-DARTS bandwidth",
        "Test regret (NAS-Bench-1Shot1 style)",
        "Figure 4: training loss against distance to the final alphas",
        "Run settings",
        "Data problems",
    ]
    assert "Not available" not in page
    assert page.count('src="data:image/png;base64,') == 4  # figure 3, bandwidth plot, regret, figure 4
    assert not re.search(r'src="(?!data:)', page)  # nothing outside the file
    assert "embedded digits benchmark — not NAS-Bench-101" in page
    assert "<h3>over = final</h3>" in page and "<h3>over = all</h3>" in page
    assert "<td>MS-DARTS [bandwidth=3]</td><td>2</td><td>2</td><td>0–1</td>" in page  # runs, complete, seeds
    assert "<th>bandwidth</th>" in page  # the setting that differs between runs
    assert "<li>none</li>" in page  # no data problems in this fixture


def test_report_lists_problems_and_unsupported_parts(tmp_path: Path, stub_savefig: None) -> None:
    root = tmp_path / "r"
    write_run(root, seed=0)
    write_run(root, seed=1, done=range(2), state="failed", alphas=False)
    assert report.main([str(root), "-o", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / report.REPORT_HTML).read_text()
    assert "Not available: no MS-DARTS runs with a bandwidth" in page
    problems = page[page.index("<h2>Data problems") :]
    assert "1 run(s) with missing epochs" in problems and "seed1 (2 of 4 epochs, state failed)" in problems
    assert (tmp_path / "out" / "warnings.txt").exists()


def test_settings_tables(tmp_path: Path) -> None:
    write_run(tmp_path, optimizer="msdarts", seed=0, hp={"bandwidth": 1.0}, cfg={"batch_size": 32})
    write_run(tmp_path, optimizer="msdarts", seed=1, hp={"bandwidth": 1.0}, cfg={"batch_size": 64})
    res = load(tmp_path)
    diff = settings.differences(res)
    assert list(diff.columns) == ["space", "optimizer", "seeds", "batch_size"]
    assert diff["batch_size"].tolist() == ["32", "64"]
    assert settings.common(res)["bandwidth"] == "1"
    assert settings.seed_ranges([0, 1, 2, 5, 7, 8]) == "0–2, 5, 7–8"

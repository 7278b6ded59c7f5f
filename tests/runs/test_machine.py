"""config.json's machine record, and the lines that say when compared runs came from differing machines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from analysis import report
from analysis.load import load, machine_lines
from bench import results
from bench.runs import executors, machine, status
from bench.runs.config import RunConfig
from tests.analysis.fixtures import stub_savefig, write_run  # noqa: F401 (a fixture)

AVX512 = {"cpu_model": "AMD EPYC", "aten_capability": "AVX512", "torch": "2.13.0+cpu", "blas": "mkl",
          "onednn": "v3", "threads": 1, "reproducible": False}  # fmt: skip
AVX2 = {**AVX512, "cpu_model": "Intel Xeon", "aten_capability": "AVX2"}


def test_record_names_cpu_isa_build_and_threads() -> None:
    record = machine.machine_record()
    assert record["cpu_model"] and record["aten_capability"] and record["torch"]
    assert record["threads"] >= 1 and record["reproducible"] is False and "blas" in record


def test_cpu_model_reads_cpuinfo(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: AMD EPYC 9654\n")
    assert machine.cpu_model(tmp_path / "cpuinfo") == "AMD EPYC 9654"


def test_torch_build_names_blas_and_onednn() -> None:
    text = "Intel(R) MKL-DNN v3.12.0 (Git Hash x)\nBuild settings: BLAS_INFO=open, LAPACK_INFO=open, X=1"
    assert machine.torch_build(text) == {"blas": "open", "onednn": "Intel(R) MKL-DNN v3.12.0"}


def test_pinned_runs_compare_only_the_build() -> None:
    pinned = [{**m, "reproducible": True, "threads": 1} for m in (AVX512, AVX2)]
    assert machine.differences(*pinned) == []
    assert machine.differences(AVX512, AVX2) == [
        "cpu_model: AMD EPYC vs Intel Xeon",
        "aten_capability: AVX512 vs AVX2",
    ]
    assert machine.differences(AVX512, None) == [machine.NOT_RECORDED]


def test_one_line_per_group_from_differing_machines() -> None:
    lines = machine.comparison_lines(
        {"a": [AVX512, AVX512], "b": [AVX512, AVX2], "c": [None], "d": [AVX2, None]}
    )
    assert len(lines) == 3
    assert lines[0].startswith("b: runs from differing machines") and "AVX2" in lines[0]
    assert lines[1] == "c: machine not recorded (1 run(s) written before the record)"
    assert "not recorded" in lines[2]


@pytest.fixture
def two_machines(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    write_run(root, optimizer="darts", seed=0, alphas=False, machine=AVX512)
    write_run(root, optimizer="darts", seed=1, alphas=False, machine=AVX2)
    write_run(root, space=2, optimizer="darts", seed=0, alphas=False, machine=None)  # before the record
    return root


def test_status_says_when_runs_come_from_differing_machines(two_machines: Path) -> None:
    lines = status.machine_lines(status.scan(two_machines))
    assert lines[0].startswith("digits space 1 paper: runs from differing machines")
    assert lines[1].startswith("digits space 2 paper: machine not recorded")


@pytest.mark.usefixtures("stub_savefig")
def test_report_says_when_runs_come_from_differing_machines(two_machines: Path, tmp_path: Path) -> None:
    lines = machine_lines(load(two_machines).runs)
    assert lines[0].startswith("space 1: runs from differing machines")
    assert lines[1].startswith("space 2: machine not recorded")
    assert report.main([str(two_machines), "-o", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / report.REPORT_HTML).read_text()
    assert "<h2>Machines</h2>" in page and "differing machines" in page


def test_resume_on_another_machine_warns_and_keeps_the_earlier_record(caplog) -> None:
    previous = {"machine": AVX2}
    record = {"machine": AVX512}
    with caplog.at_level(logging.WARNING):
        changed = executors._machine_changed(previous, record)
    assert changed and record["machine_history"] == [AVX2]
    assert executors._machine_changed({"machine": AVX512}, {"machine": AVX512}) == []


def test_config_json_records_the_machine(tmp_path: Path, fixture_table, toy_data) -> None:
    cfg = RunConfig.resolve(
        "darts", 1, overrides={"epochs": 1, "batch_size": 16, "init_channels": 2}, device="cpu"
    )
    request = executors.RunRequest(cfg=cfg, tag="t", out_root=tmp_path)
    executors.execute(request, fixture_table, lambda c: toy_data)
    record = results.read_json(request.run_dir / results.CONFIG_JSON)
    assert record["machine"]["reproducible"] is False and record["torch_threads"] >= 1

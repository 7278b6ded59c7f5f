"""`python -m bench.run`: argument parsing, bad input, and an end-to-end run on a fixture table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import results
from bench import run as cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0-4", [0, 1, 2, 3, 4]), ("0,3,7", [0, 3, 7]), ("1-3,7", [1, 2, 3, 7]), ("5", [5]), ("2,2,1", [1, 2])],
)
def test_parse_int_list(text: str, expected: list[int]) -> None:
    assert cli.parse_int_list(text, "seeds") == expected


@pytest.mark.parametrize(("text", "match"), [("5-0", "backwards"), ("a-b", "range"), ("-1", "non-negative"),
                                             ("1,,2", "empty"), ("x", "non-negative")])  # fmt: skip
def test_parse_int_list_errors(text: str, match: str) -> None:
    with pytest.raises(cli.UsageError, match=match):
        cli.parse_int_list(text, "seeds")


def test_parse_sets() -> None:
    assert cli.parse_sets(["epochs=3", "bandwidth=0.1,1"]) == {"epochs": ["3"], "bandwidth": ["0.1", "1"]}
    with pytest.raises(cli.UsageError, match="key=value"):
        cli.parse_sets(["epochs"])


@pytest.fixture
def existing_results(tmp_path: Path) -> Path:
    """A results directory with a file in it, to prove bad input never touches what is on disk."""
    root = tmp_path / "results"
    marker = root / "digits" / "space1" / "darts" / "paper" / "seed0" / results.EPOCHS_CSV
    marker.parent.mkdir(parents=True)
    marker.write_text("epoch\n0\n")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


BAD_INPUTS = [
    (["--optimizer", "nope"], "unknown optimizer 'nope'; choose one of"),
    (["--optimizer", "darts", "--space", "4"], "choose 1, 2 or 3"),
    (["--optimizer", "darts", "--space", "0"], "choose 1, 2 or 3"),
    (["--optimizer", "darts", "--seeds", "5-0"], "runs backwards"),
    (["--optimizer", "darts", "--seeds", "a-b"], "not a range"),
    (["--optimizer", "darts", "--seeds", "-1"], "non-negative"),
    (["--optimizer", "darts", "--set", "nonsense=1"], "unknown setting"),
    (["--optimizer", "darts", "--set", "batch_size=big"], "expected an int"),
    (["--optimizer", "darts", "--set", "unrolled=maybe"], "expected true or false"),
    (["--optimizer", "darts", "--set", "batch_size=0"], "at least 1"),
    (["--optimizer", "darts", "--set", "seed=3"], "--seed"),
    (["--optimizer", "pcdarts", "--set", "init_channels=6"], "not divisible"),
    (["--optimizer", "darts", "--set", "hessian_method=power"], "choose lanczos or exact"),
    (["--optimizer", "darts", "--set", "hessian_hvp=fd"], "choose reverse, forward, segmented"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS)
def test_bad_input_one_line_exit_2(argv, message, existing_results, capsys) -> None:
    before = snapshot(existing_results)
    code = cli.main([*argv, "--benchmark", "digits", "--out", str(existing_results), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert snapshot(existing_results) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_gpu(existing_results, capsys) -> None:
    code = cli.main(["--optimizer", "darts", "--device", "cuda", "--out", str(existing_results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cpu" in err[0]


def test_unwritable_out(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = cli.main(["--optimizer", "darts", "--benchmark", "digits", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0]


def test_nb101_missing_data(tmp_path, capsys) -> None:
    code = cli.main(["--optimizer", "darts", "--benchmark", "nb101", "--data-dir", str(tmp_path / "empty")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "python -m bench.data download nb101" in err[0]


def test_bad_input_through_a_real_process(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--optimizer", "darts", "--space", "4", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr


TINY = [
    "--set",
    "batch_size=16",
    "--set",
    "init_channels=2",
    "--set",
    "cells_per_stack=1",
    "--set",
    "hessian=false",
]


def test_end_to_end_grid_and_skip(tmp_path, fixture_cli, capsys) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--space", "1,2", "--seeds", "0-1", "--epochs", "2",
            "--benchmark", "digits", "--out", str(out), "--no-progress", *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    runs = results.find_runs(out)
    assert len(runs) == 4
    for run in runs:
        cfg = json.loads((run / results.CONFIG_JSON).read_text())
        assert cfg["config"]["epochs"] == 2 and cfg["config"]["batch_size"] == 16
        assert cfg["versions"]["torch"] == torch.__version__ and "git_revision" in cfg
        assert (run / "run.log").read_text().count("epoch ") >= 2
        assert json.loads((run / "status.json").read_text())["state"] == "complete"
    frame = results.load_results(out)
    assert len(frame) == 8 and sorted(frame["space"].unique()) == [1, 2]
    assert set(frame.groupby("run_dir")["epoch"].apply(list).map(tuple)) == {(0, 1)}
    assert "paper_batch_size=16" in str(runs[0])
    summary = capsys.readouterr().out
    assert summary.count("complete") == 4
    before = snapshot(out)
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.count("skipped") == 4
    assert snapshot(out) == before


def test_changed_settings_refuse_to_mix(tmp_path, fixture_cli, capsys) -> None:
    out = tmp_path / "results"
    base = [
        "--optimizer",
        "darts",
        "--epochs",
        "1",
        "--benchmark",
        "digits",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert cli.main([*base, *TINY]) == 0
    run = results.find_runs(out)[0]
    cfg_path = run / results.CONFIG_JSON
    record = json.loads(cfg_path.read_text())
    record["config"]["w_lr"] = 0.5  # as if written by a different setting under the same tag
    cfg_path.write_text(json.dumps(record))
    (run / "status.json").unlink()
    capsys.readouterr()
    assert cli.main([*base, *TINY]) == 2
    assert "other settings (w_lr)" in capsys.readouterr().err


def test_quick_preset_and_optimizer_setting_tag(tmp_path, fixture_cli) -> None:
    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--preset", "quick", "--epochs", "1", "--benchmark", "digits", "--out",
            str(out), "--no-progress", "--set", "unrolled=true", *TINY]  # fmt: skip
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    assert run.parent.name.startswith("quick_") and "unrolled=true" in run.parent.name
    cfg = json.loads((run / results.CONFIG_JSON).read_text())
    assert cfg["optimizer_hyperparameters"]["unrolled"] is True
    assert cfg["config"]["preset"] == "quick"
    assert len(pd.read_csv(run / results.EPOCHS_CSV)) == 1

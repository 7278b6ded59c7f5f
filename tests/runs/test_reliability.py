"""Crash safety, failures and reruns: nothing is lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench import results
from bench import run as cli
from bench.runs.trainer import Trainer
from optimizers import available
from tests.runs.fixture_cli import main as fixture_main

REPO = Path(__file__).resolve().parents[2]
TINY = ["--set", "batch_size=16", "--set", "init_channels=2", "--set", "cells_per_stack=1",
        "--benchmark", "digits", "--no-progress"]  # fmt: skip


def comparable(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / results.EPOCHS_CSV, dtype={"arch_hash": str})
    return frame.drop(columns=list(results.TIMING_COLUMNS))


def only_run(root: Path) -> Path:
    """The one run directory under root (found by config.json: a run killed before its first
    epoch was written has no epochs.csv yet)."""
    (config,) = root.rglob(results.CONFIG_JSON)
    return config.parent


def fixture_process(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.runs.fixture_cli", *argv],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _kill_cases() -> list[tuple[str, str]]:
    cases = [("darts", p) for p in ("step:1", "before-checkpoint:1", "after-checkpoint:1", "after-tables:0")]
    cases += [("msdarts", p) for p in ("step:1", "after-checkpoint:0")]
    return cases


@pytest.mark.parametrize(("optimizer", "kill_at"), _kill_cases())
def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, optimizer: str, kill_at: str) -> None:
    if optimizer not in available():
        pytest.skip(f"{optimizer} not registered")
    argv = ["--optimizer", optimizer, "--epochs", "3", *TINY]
    assert fixture_main([*argv, "--out", str(tmp_path / "ref")]) == 0
    killed = fixture_process([*argv, "--out", str(tmp_path / "killed")], env={"NB1SHOT1_KILL_AT": kill_at})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = only_run(tmp_path / "killed")
    assert json.loads((run / "status.json").read_text())["state"] == "running"
    resumed = fixture_process([*argv, "--out", str(tmp_path / "killed")])
    assert resumed.returncode == 0, resumed.stderr
    pd.testing.assert_frame_equal(comparable(only_run(tmp_path / "ref")), comparable(run))
    _, a_ref = results.read_alphas(only_run(tmp_path / "ref") / results.ALPHAS_NPZ)
    epochs, a_run = results.read_alphas(run / results.ALPHAS_NPZ)
    assert epochs == [0, 1, 2]
    for name, arr in a_ref.items():
        assert (arr == a_run[name]).all()
    assert not list(run.glob(".*.tmp"))


def test_rerun_of_finished_run_does_nothing(tmp_path, capsys) -> None:
    argv = ["--optimizer", "darts", "--epochs", "1", "--out", str(tmp_path), *TINY]
    assert fixture_main(argv) == 0
    run = only_run(tmp_path)
    mtime = (run / results.EPOCHS_CSV).stat().st_mtime_ns
    capsys.readouterr()
    assert fixture_main(argv) == 0
    assert "skipped" in capsys.readouterr().out
    assert (run / results.EPOCHS_CSV).stat().st_mtime_ns == mtime


def test_force_moves_old_run_aside(tmp_path) -> None:
    argv = ["--optimizer", "darts", "--epochs", "1", "--out", str(tmp_path), *TINY]
    assert fixture_main(argv) == 0
    run = only_run(tmp_path)
    (run / "marker").write_text("old")
    assert fixture_main([*argv, "--force"]) == 0
    assert not (run / "marker").exists() and (run / results.EPOCHS_CSV).exists()
    moved = list((tmp_path / ".replaced").rglob("marker"))
    assert len(moved) == 1
    assert results.find_runs(tmp_path) == [run]  # the replaced run is never loaded as a result


def test_nan_run_fails_and_grid_goes_on(tmp_path, capsys) -> None:
    argv = [
        "--optimizer",
        "darts",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        *TINY,
        "--set",
        "w_lr=1e30,0.025",
    ]
    assert fixture_main(argv) == 1
    err = capsys.readouterr().err
    states = {}
    for status_file in tmp_path.rglob("status.json"):
        states[status_file.parent.parent.name] = json.loads(status_file.read_text())
    bad = next(s for tag, s in states.items() if "1e30" in tag)
    good = next(s for tag, s in states.items() if "0.025" in tag)
    assert bad["state"] == "failed" and "DivergedError" in bad["reason"]
    assert good["state"] == "complete"
    assert "FAILED" in err and "1e30" in err


def test_ctrl_c_keeps_last_epoch_and_resumes(tmp_path, monkeypatch, capsys) -> None:
    argv = ["--optimizer", "darts", "--epochs", "2", "--out", str(tmp_path), *TINY]
    original = Trainer._hessian

    def interrupt_in_second_epoch(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_hessian", interrupt_in_second_epoch)
    assert fixture_main(argv) == 130
    assert "rerun the same command" in capsys.readouterr().err
    run = only_run(tmp_path)
    assert json.loads((run / "status.json").read_text())["state"] == "interrupted"
    assert comparable(run)["epoch"].tolist() == [0]
    monkeypatch.setattr(Trainer, "_hessian", original)
    assert fixture_main(argv) == 0
    assert comparable(run)["epoch"].tolist() == [0, 1]


def test_parallel_jobs_equal_serial(tmp_path) -> None:
    argv = ["--optimizer", "darts", "--seeds", "0-3", "--epochs", "1", *TINY]
    assert fixture_main([*argv, "--out", str(tmp_path / "serial"), "--jobs", "1"]) == 0
    assert fixture_main([*argv, "--out", str(tmp_path / "parallel"), "--jobs", "2"]) == 0
    serial, parallel = results.find_runs(tmp_path / "serial"), results.find_runs(tmp_path / "parallel")
    assert len(serial) == len(parallel) == 4
    for a, b in zip(serial, parallel, strict=True):
        pd.testing.assert_frame_equal(comparable(a), comparable(b))


def test_jobs_must_be_positive(tmp_path, capsys) -> None:
    assert cli.main(["--optimizer", "darts", "--jobs", "0", "--out", str(tmp_path)]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_dask_local_cluster(tmp_path, monkeypatch) -> None:
    """Each run as a task on a Dask cluster (workers on 127.0.0.1) writes the same files as a local run."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    argv = ["--optimizer", "darts", "--seeds", "0-1", "--epochs", "1", *TINY]
    assert fixture_main([*argv, "--out", str(tmp_path / "local"), "--jobs", "1"]) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert (
            fixture_main([*argv, "--out", str(tmp_path / "dask"), "--dask", cluster.scheduler_address]) == 0
        )
    local, remote = results.find_runs(tmp_path / "local"), results.find_runs(tmp_path / "dask")
    assert len(remote) == 2
    for a, b in zip(local, remote, strict=True):
        pd.testing.assert_frame_equal(comparable(a), comparable(b))


def test_sigterm_stops_parallel_runs_and_their_workers(tmp_path) -> None:
    """A scheduler's SIGTERM (Slurm, a shell's kill) is Ctrl-C: exit 130, no orphaned workers, resumable."""
    import time

    argv = ["--optimizer", "darts", "--seeds", "0-1", "--epochs", "200", "--jobs", "2", *TINY]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.runs.fixture_cli", *argv, "--out", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while len(list(tmp_path.rglob(results.EPOCHS_CSV))) < 2:  # both workers are inside a run
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    for _ in range(100):  # the whole process group (loky workers included) is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("worker processes outlived the parent after SIGTERM")
    for run in results.find_runs(tmp_path):
        assert json.loads((run / "status.json").read_text())["state"] in ("interrupted", "running")
        assert comparable(run)["epoch"].tolist() == list(range(len(comparable(run))))


def test_threads_default_to_one_per_run_and_are_recorded(tmp_path, capsys) -> None:
    """Every CPU run is single-threaded unless told otherwise, so a seed's numbers never depend on --jobs."""
    argv = ["--optimizer", "darts", "--epochs", "1", *TINY]
    assert fixture_main([*argv, "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0
    assert results.read_json(only_run(tmp_path / "one") / results.CONFIG_JSON)["torch_threads"] == 1
    assert fixture_main([*argv, "--out", str(tmp_path / "two"), "--threads", "2"]) == 0
    assert results.read_json(only_run(tmp_path / "two") / results.CONFIG_JSON)["torch_threads"] == 2
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(tmp_path / "bad"), "--threads", "0"]) == 2
    assert "--threads 0: must be at least 1" in capsys.readouterr().err

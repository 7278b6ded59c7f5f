"""`python -m bench.status`: one table of where every run of a results tree stands."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bench import results
from bench import status as cli
from bench.runs import status
from tests.analysis.fixtures import BEST, FIXTURE_MACHINE, synthetic_eig, synthetic_test_error, write_run
from tests.runs.test_reliability import REPO, TINY, fixture_process


def _set_status(run_dir: Path, **fields) -> None:
    record = results.read_json(run_dir / results.STATUS_JSON) or {}
    record.update(fields)
    results.write_json(run_dir / results.STATUS_JSON, record)


def dead_pid() -> int:
    """The pid of a process that has exited (reaped, so it is gone for os.kill)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """TEST FIXTURE runs (tests/analysis/fixtures.py numbers) in every state bench.status tells apart."""
    root = tmp_path / "results"
    here = socket.gethostname()
    write_run(root, optimizer="darts", seed=0, epochs=4, alphas=False)  # complete
    write_run(root, optimizer="darts", seed=1, epochs=4, done=[0, 1], alphas=False, state="interrupted")
    killed = write_run(root, optimizer="gdas", seed=0, epochs=4, done=[0], alphas=False)
    _set_status(killed, pid=dead_pid(), host=here)  # `running`, but its process is gone
    alive = write_run(root, optimizer="gdas", seed=1, epochs=4, done=[0, 1, 2], alphas=False)
    _set_status(alive, pid=os.getpid(), host=here)  # this test process: really running
    elsewhere = write_run(root, space=2, optimizer="gdas", seed=0, epochs=4, done=[0], alphas=False)
    _set_status(elsewhere, pid=12345, host="node-that-is-not-here")
    failed = write_run(root, space=2, optimizer="darts", seed=0, epochs=4, done=[], alphas=False)
    _set_status(failed, state="failed", reason="DivergedError: training loss became nan in epoch 0")
    early = results.run_dir(root, "digits", 2, "darts", "paper", 1)  # killed before its first epoch
    early.mkdir(parents=True)
    config = {"config": {"optimizer": "darts", "space": 2, "seed": 1}, "machine": FIXTURE_MACHINE}
    results.write_json(early / results.CONFIG_JSON, config)
    write_run(root / ".replaced" / "old", optimizer="darts", alphas=False)  # --force's shelf: not a run
    return root


def by_name(runs: list[status.RunStatus]) -> dict[str, status.RunStatus]:
    return {f"{r.optimizer} s{r.space} seed{r.seed}": r for r in runs}


def test_scan_reads_every_state(tree: Path) -> None:
    runs = by_name(status.scan(tree))
    assert {k: v.state for k, v in runs.items()} == {
        "darts s1 seed0": "complete",
        "darts s1 seed1": "interrupted",
        "gdas s1 seed0": "interrupted",  # `running` in its status.json, process gone
        "gdas s1 seed1": "running",
        "gdas s2 seed0": "running",  # another host: cannot be checked, said so
        "darts s2 seed0": "failed",
        "darts s2 seed1": "unknown",
    }
    assert "is gone" in runs["gdas s1 seed0"].reason and "rerun" in runs["gdas s1 seed0"].reason
    assert "node-that-is-not-here" in runs["gdas s2 seed0"].reason
    done = runs["darts s1 seed0"]
    assert (done.epochs_done, done.epochs, done.wall_s) == (4, 4, 4.0)
    assert done.last_eig == pytest.approx(synthetic_eig("darts", 1, 0, 3))
    assert done.last_regret == pytest.approx(synthetic_test_error("darts", 1, 0, 3) - BEST[1])
    assert (runs["gdas s1 seed1"].epochs_done, runs["gdas s1 seed1"].epochs) == (3, 4)
    assert runs["darts s2 seed0"].epochs_done == 0 and math.isnan(runs["darts s2 seed0"].last_eig)


def test_last_eigenvalue_skips_epochs_without_one(tmp_path: Path) -> None:
    run = write_run(tmp_path, epochs=3, nan_eig_epochs=[2], alphas=False)
    assert status.read_run(run).last_eig == pytest.approx(synthetic_eig("darts", 1, 0, 1))


def test_cli_table_and_summary(tree: Path, capsys) -> None:
    assert cli.main([str(tree)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "run",
        "state",
        "epochs",
        "last",
        "eig",
        "last",
        "regret",
        "wall",
        "updated",
        "reason",
    ]
    rows = {line.split()[0]: line.split() for line in out[2:-1]}
    assert len(rows) == 7 and not any(".replaced" in name for name in rows)
    complete = rows["digits/space1/darts/paper/seed0"]
    assert complete[1:4] == ["complete", "4/4", f"{synthetic_eig('darts', 1, 0, 3):.4g}"]
    assert complete[5] == "0:00:04"
    assert "DivergedError:" in rows["digits/space2/darts/paper/seed0"]
    assert out[-1] == "7 runs: 1 complete, 2 running, 2 interrupted, 1 failed, 1 unknown"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--optimizer", "gdas"], "3 runs: 2 running, 1 interrupted"),
        (["--space", "2"], "3 runs: 1 running, 1 failed, 1 unknown"),
        (["--space", "1", "--optimizer", "darts,gdas"], "4 runs: 1 complete, 1 running, 2 interrupted"),
        (["--benchmark", "nb101"], "0 runs"),
    ],
)
def test_cli_filters(tree: Path, capsys, flags: list[str], expected: str) -> None:
    assert cli.main([str(tree), *flags]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == expected


def test_cli_empty_tree(tmp_path: Path, capsys) -> None:
    assert cli.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"no runs under {tmp_path}", "0 runs"]


@pytest.mark.parametrize("bad", ["missing", "a-file"])
def test_cli_bad_path_one_line_exit_2(tmp_path: Path, capsys, bad: str) -> None:
    (tmp_path / "a-file").write_text("not a results tree")
    assert cli.main([str(tmp_path / bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path / bad) in err[0]


def test_cli_bad_space_exit_2(tree: Path, capsys) -> None:
    assert cli.main([str(tree), "--space", "one"]) == 2
    assert capsys.readouterr().err.startswith("error: --space")


def test_cli_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.status", str(tmp_path / "nope")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_a_sigkilled_run_reads_as_interrupted(tmp_path: Path) -> None:
    """A real run killed mid-search (the reliability tests' fault hook): status.json still says running,
    bench.status says interrupted (the reliability tests show the rerun resumes it)."""
    argv = ["--optimizer", "darts", "--epochs", "2", *TINY, "--out", str(tmp_path)]
    killed = fixture_process(argv, env={"NB1SHOT1_KILL_AT": "after-tables:0"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (run,) = status.scan(tmp_path)
    on_disk = json.loads((run.run_dir / results.STATUS_JSON).read_text())
    assert on_disk["state"] == "running" and on_disk["host"] == socket.gethostname()
    assert (run.state, run.epochs_done, run.epochs) == ("interrupted", 1, 2)

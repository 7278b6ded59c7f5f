"""What a researcher sees while runs execute: named log lines, the display, -q and -v."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

from bench import results
from bench.runs import runlog
from bench.runs.progress import Display, Watched, describe_epoch, describe_outcome
from bench.runs.runlog import Console
from bench.runs.trainer import RunOutcome
from tests.analysis.fixtures import write_run
from tests.runs.fixture_cli import main as fixture_main
from tests.runs.test_reliability import TINY, fixture_process

# A per-epoch line as a file (nohup, CI, Slurm) gets it: a time stamp, the level, the run's name.
EPOCH_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO \[(?P<run>[^\]]+)\] epoch (?P<k>\d+)/(?P<n>\d+): "
)


def test_two_jobs_in_a_file_every_epoch_line_names_its_run(tmp_path) -> None:
    """stderr is a pipe here, as under nohup or Slurm: no bars, one attributable line per epoch."""
    argv = ["--optimizer", "darts", "--seeds", "0-1", "--epochs", "2", "--jobs", "2", *TINY]
    argv.remove("--no-progress")  # not a terminal: plain lines without being asked
    proc = fixture_process([*argv, "--out", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "█" not in proc.stderr  # no bar was drawn
    epoch_lines = [line for line in proc.stderr.splitlines() if " epoch " in line]
    seen = Counter()
    for line in epoch_lines:
        m = EPOCH_LINE.match(line)
        assert m, f"epoch line not attributable to one run: {line!r}"
        assert m["n"] == "2"
        seen[(m["run"], int(m["k"]))] += 1
    labels = {run for run, _ in seen}
    assert labels == {
        f"darts s1 seed{s} paper_batch_size=16_cells_per_stack=1_epochs=2_init_channels=2" for s in (0, 1)
    }
    assert seen == {(run, k): 1 for run in labels for k in (1, 2)}  # every epoch exactly once
    assert sum(line.endswith("] starting: 2 epochs") for line in proc.stderr.splitlines()) == 2
    finished = [line for line in proc.stderr.splitlines() if "runs finished" in line]
    assert len(finished) == 2 and all(re.search(r"\] complete, 2/2 epochs", line) for line in finished)
    for run in results.find_runs(tmp_path):  # run.log: the run's own lines only, each named
        lines = (run / results.RUN_LOG).read_text().splitlines()
        label = f"darts s1 seed{run.name[-1]} "
        assert lines and all(f"[{label}" in line for line in lines)
        assert sum(" epoch " in line for line in lines) == 2


def test_quiet_prints_only_the_summary(tmp_path, capsys) -> None:
    argv = ["--optimizer", "darts", "--epochs", "1", "--out", str(tmp_path), "-q", *TINY]
    assert fixture_main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "complete" in out and "run" in out.splitlines()[0]
    assert " epoch " in (results.find_runs(tmp_path)[0] / results.RUN_LOG).read_text()  # still recorded


def test_quiet_still_shows_failures(tmp_path, capsys) -> None:
    argv = [
        "--optimizer",
        "darts",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "-q",
        *TINY,
        "--set",
        "w_lr=1e30",
        "--set",
        "w_lr_min=1e30",  # the paper schedule steps first: a 1-epoch run trains at w_lr_min
    ]
    assert fixture_main(argv) == 1
    err = capsys.readouterr().err
    assert "ERROR [darts s1 seed0" in err and "DivergedError" in err and "FAILED" in err
    assert "Traceback" not in err  # the traceback is in run.log
    assert "Traceback" in (next(tmp_path.rglob(results.RUN_LOG))).read_text()


def test_verbose_shows_debug_lines_and_logger_names(tmp_path, capsys) -> None:
    argv = ["--optimizer", "darts", "--epochs", "1", "--out", str(tmp_path), "-v", *TINY]
    assert fixture_main(argv) == 0
    err = capsys.readouterr().err
    assert re.search(r"DEBUG \[darts s1 seed0 [^\]]+\] bench\.runs\.trainer: epoch 0: eigenvalue", err)
    assert "DEBUG" in (results.find_runs(tmp_path)[0] / results.RUN_LOG).read_text()


def test_quiet_and_verbose_exclude_each_other(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        fixture_main(["--optimizer", "darts", "-q", "-v"])
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


# ---- the pieces ------------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_for_cli() -> None:
    tty, pipe = FakeTTY(), io.StringIO()
    assert Console.for_cli(stream=tty) == Console(logging.INFO, False, bars=True, timestamps=False)
    assert Console.for_cli(stream=pipe) == Console(logging.INFO, False, bars=False, timestamps=True)
    assert Console.for_cli(stream=tty, progress=False).bars is False
    quiet = Console.for_cli(stream=tty, quiet=True)
    assert quiet.level == logging.WARNING and not quiet.bars and quiet.run_log_level == logging.INFO
    assert Console.for_cli(stream=pipe, verbose=True).run_log_level == logging.DEBUG


def test_terminal_lines_name_their_run_and_configure_replaces_its_handler() -> None:
    stream = io.StringIO()
    runlog.configure(Console(timestamps=False), stream)
    handler = runlog.configure(Console(timestamps=False), stream)  # a reused worker calls it again
    try:
        assert sum(isinstance(h, runlog.TerminalHandler) for h in logging.getLogger().handlers) == 1
        log = logging.getLogger("bench.test")
        log.info("outside any run")
        with runlog.naming("darts s1 seed0 quick"):
            log.info("inside")
        log.info("announced", extra={"run": "gdas s2 seed1 quick"})
        log.error("details", extra={runlog.RUN_LOG_ONLY: True})  # run.log only, unless --verbose
        assert stream.getvalue().splitlines() == [
            "INFO outside any run",
            "INFO [darts s1 seed0 quick] inside",
            "INFO [gdas s2 seed1 quick] announced",
        ]
    finally:
        logging.getLogger().removeHandler(handler)


def test_run_logs_of_concurrent_runs_stay_apart(tmp_path) -> None:
    """Dask runs several tasks as threads of one worker: each run.log gets its own run's lines only."""
    log = logging.getLogger("bench.test")
    barrier = threading.Barrier(2)

    def one(label: str) -> None:
        with runlog.naming(label), runlog.run_log(tmp_path / f"{label}.log", label):
            barrier.wait()
            for i in range(20):
                log.info("line %d of %s", i, label)

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        lines = (tmp_path / f"{name}.log").read_text().splitlines()
        assert len(lines) == 20 and all(
            f"[{name}] bench.test: line" in x and x.endswith(f"of {name}") for x in lines
        )


ROW = {"epoch": 2, "oneshot_valid_acc": 0.5, "test_acc_mean": 0.91, "test_regret": 0.0123,
       "hessian_eig_max": float("nan"), "epoch_seconds": 2.44, "wallclock_s": 61.0}  # fmt: skip


def test_describe_epoch_and_outcome() -> None:
    assert describe_epoch(ROW, 10) == (
        "epoch 3/10: one-shot acc 0.5000, test acc 0.9100, regret 0.0123, eig -, 2.4s"
    )
    done = RunOutcome(Path("x"), "complete", 10, ROW)
    assert (
        describe_outcome(done, 10)
        == "complete, 10/10 epochs: test acc 0.9100, regret 0.0123, eig -, wall 0:01:01"
    )
    failed = RunOutcome(Path("x"), "failed", 0, None, "DivergedError: nan")
    assert describe_outcome(failed, 10).endswith("wall -; DivergedError: nan")
    assert "DivergedError" not in describe_outcome(failed, 10, reason=False)


def _status(run_dir: Path, state: str, epochs_done: int, epochs: int = 3) -> None:
    """status.json as the trainer writes it (with its pid and host)."""
    record = {"state": state, "reason": "", "epochs_done": epochs_done, "epochs": epochs, "pid": os.getpid(),
              "host": socket.gethostname()}  # fmt: skip
    results.write_json(run_dir / results.STATUS_JSON, record)


def test_display_announces_new_epochs_of_other_processes_once(tmp_path, caplog) -> None:
    """The parent reads the runs' files: epochs from before this command (a resumed run) or of a run not
    started by it (a stale `running` left by a killed command) are not announced."""
    resumed = write_run(tmp_path, seed=0, epochs=3, done=[0], state="interrupted", alphas=False)
    stale = write_run(tmp_path, seed=1, epochs=3, done=[0], state="running", alphas=False)
    rows = results.read_epochs(
        write_run(tmp_path / "full", seed=0, epochs=3, alphas=False) / results.EPOCHS_CSV
    )
    display = Display([Watched("resumed", resumed, 3), Watched("stale", stale, 3)], Console(bars=False),
                      announce=True, interval=3600)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="bench.progress"), display:
        display.refresh()  # nothing has started
        _status(resumed, "running", epochs_done=1)  # a worker resumed it after epoch 0 ...
        results.write_epochs(resumed / results.EPOCHS_CSV, rows[:2])  # ... and finished epoch 1
        display.refresh()
        display.refresh()  # nothing new: nothing announced twice
        display.finished(RunOutcome(stale, "skipped", 1, None, "already complete"))
        results.write_epochs(resumed / results.EPOCHS_CSV, rows)
        _status(resumed, "complete", epochs_done=3)
        display.finished(RunOutcome(resumed, "complete", 3, rows[-1]))
    announced = [(r.run, r.getMessage()) for r in caplog.records]
    assert [(run, msg.split(":")[0]) for run, msg in announced if msg.startswith("epoch")] == [
        ("resumed", "epoch 2/3"),
        ("resumed", "epoch 3/3"),
    ]
    assert ("resumed", "resuming: 1 of 3 epochs done") in announced
    assert not any(run == "stale" and "runs finished" not in msg for run, msg in announced)
    assert [(run, msg.split(",")[0]) for run, msg in announced if "runs finished" in msg] == [
        ("stale", "skipped: already complete (--force starts over) (1 of 2 runs finished)"),
        ("resumed", "complete"),
    ]


def test_display_lines_on_a_terminal(tmp_path, capsys) -> None:
    run_dir = write_run(tmp_path, seed=0, epochs=4, done=[0, 1], state="running", alphas=False)
    waiting = results.run_dir(tmp_path, "digits", 1, "darts", "paper", 1)
    display = Display([Watched("darts s1 seed0 paper", run_dir, 4), Watched("seed1", waiting, 4)],
                      Console(bars=True), interval=3600)  # fmt: skip
    _status(run_dir, "running", epochs_done=2, epochs=4)  # (re)started by this command
    with display:
        display.refresh()
        lines = display.lines()
    assert len(lines) == 1  # the run not started has no line yet
    assert re.match(
        r"  darts s1 seed0 paper \|█{10} {10}\| 2/4  one-shot 0\.500  test 0\.\d{3}  eig [\d.]+  ETA ",
        lines[0],
    )
    err = capsys.readouterr().err
    assert "runs 0/2 done, 1 running" in err and "darts s1 seed0 paper" in err

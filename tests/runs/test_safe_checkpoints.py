"""Checkpoints that could run code, are cut short or have another format are refused, never loaded.

Every face that opens checkpoint.pt (resume in bench.run, bench.runs.restore, analysis.landscape and the
report's landscape section) answers with one line naming the file and the fix, and leaves the run's
files as they were. The "code" checkpoint would create a marker file when unpickled: it must not exist.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from analysis import landscape, report
from bench import results
from bench.runs import checkpoint
from bench.runs.restore import RestoreError, load_run
from bench.runs.trainer import Trainer
from optimizers import available
from tests.analysis.fixtures import stub_savefig  # noqa: F401 - the fixture
from tests.helpers import FixtureTable, TouchOnLoad
from tests.runs.fixture_cli import main as fixture_main
from tests.runs.test_reliability import TINY, only_run
from tests.runs.test_trainer import tiny_config

ARGV = ["--optimizer", "darts", "--epochs", "1", *TINY]
KINDS = ("code", "truncated", "version", "legacy")


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root holding one complete run, written by bench.run (fixture table, toy data)."""
    root = tmp_path_factory.mktemp("finished") / "results"
    assert fixture_main([*ARGV, "--out", str(root)]) == 0
    return root


@pytest.fixture
def root(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(finished, copy)
    return copy


def spoil(kind: str, path: Path, marker: Path) -> None:
    """Replace the checkpoint at `path` by a bad one of `kind`."""
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return
    state = torch.load(path, weights_only=True)
    if kind == "code":
        state["rows"] = [TouchOnLoad(marker)]
    elif kind == "version":
        state[checkpoint.FORMAT_KEY] = checkpoint.FORMAT_VERSION + 1
    elif kind == "legacy":  # what earlier harness versions wrote: no version, NumPy arrays inside
        del state[checkpoint.FORMAT_KEY]
        state["alpha_history"] = {
            e: [a.numpy() for a in arrays] for e, arrays in state["alpha_history"].items()
        }
    torch.save(state, path)


def files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def assert_refused(err: str, path: Path, marker: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "--force" in lines[0]
    assert not marker.exists()


def test_the_code_checkpoint_really_runs_code_when_unpickled(root: Path, tmp_path: Path) -> None:
    """Guards the other tests: a full unpickling (what the harness did before) creates the marker."""
    path = only_run(root) / results.CHECKPOINT
    marker = tmp_path / "marker"
    spoil("code", path, marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_legacy_checkpoints_cannot_be_read_as_plain_data(root: Path, tmp_path: Path) -> None:
    path = only_run(root) / results.CHECKPOINT
    spoil("legacy", path, tmp_path / "marker")
    with pytest.raises(checkpoint.CheckpointError, match="before format 2"):
        checkpoint.read(path)


@pytest.mark.parametrize("kind", KINDS)
def test_resume_refuses_bad_checkpoint(kind: str, root: Path, tmp_path: Path, capsys) -> None:
    run = only_run(root)
    status = json.loads((run / results.STATUS_JSON).read_text())
    (run / results.STATUS_JSON).write_text(json.dumps({**status, "state": "interrupted"}))
    marker = tmp_path / "marker"
    spoil(kind, run / results.CHECKPOINT, marker)
    before = files(run)
    capsys.readouterr()
    assert fixture_main([*ARGV, "--out", str(root)]) == 2
    assert_refused(capsys.readouterr().err, run / results.CHECKPOINT, marker)
    after = files(run)
    assert after[results.EPOCHS_CSV] == before[results.EPOCHS_CSV]
    assert after[results.CONFIG_JSON] == before[results.CONFIG_JSON]
    assert after == before


@pytest.mark.parametrize("kind", KINDS)
def test_restore_refuses_bad_checkpoint(kind: str, root: Path, tmp_path: Path, toy_data) -> None:
    run = only_run(root)
    marker = tmp_path / "marker"
    spoil(kind, run / results.CHECKPOINT, marker)
    before = files(run)
    with pytest.raises(RestoreError) as exc:
        load_run(run, data=toy_data, device="cpu")
    assert_refused(str(exc.value), run / results.CHECKPOINT, marker)
    assert files(run) == before


@pytest.mark.parametrize("kind", KINDS)
def test_landscape_refuses_bad_checkpoint(kind: str, root: Path, tmp_path: Path, capsys) -> None:
    run = only_run(root)
    marker = tmp_path / "marker"
    spoil(kind, run / results.CHECKPOINT, marker)
    before = files(run)
    capsys.readouterr()
    assert landscape.main([str(run), "-o", str(tmp_path / "out")]) == 2
    assert_refused(capsys.readouterr().err, run / results.CHECKPOINT, marker)
    assert files(run) == before


@pytest.mark.usefixtures("stub_savefig")
def test_report_landscape_section_refuses_code(root: Path, tmp_path: Path) -> None:
    run = only_run(root)
    marker = tmp_path / "marker"
    spoil("code", run / results.CHECKPOINT, marker)
    before = files(run)
    assert report.main([str(root), "-o", str(tmp_path / "out"), "--landscape", "--device", "cpu"]) == 0
    page = (tmp_path / "out" / report.REPORT_HTML).read_text()
    section = page[page.index("<h2>Accuracy landscapes") :].split("</section>")[0]
    assert "Not available" in section and "not plain data" in section
    assert not marker.exists()
    assert files(run) == before


def test_a_checkpoint_that_does_not_fit_loads_nothing(tmp_path: Path, toy_data) -> None:
    """The last thing loaded (the weights optimizer's momentum) has a wrong shape, which torch's own
    load_state_dict would accept: the resume refuses before the model or alphas change."""
    cfg = tiny_config(epochs=2)
    Trainer(cfg, tmp_path, FixtureTable(), toy_data).run()
    path = tmp_path / results.CHECKPOINT
    state = torch.load(path, weights_only=True)
    state["epoch"], state["rows"] = 0, state["rows"][:1]
    state["alpha_history"] = {0: state["alpha_history"][0]}
    state["w_optim"]["state"][0]["momentum_buffer"] = torch.zeros(3)
    torch.save(state, path)
    fresh = Trainer(cfg, tmp_path, FixtureTable(), toy_data)
    model = {k: v.clone() for k, v in fresh.model.state_dict().items()}
    alphas = [a.detach().clone() for a in fresh.alphas]
    with pytest.raises(checkpoint.CheckpointError, match="momentum_buffer"):
        fresh.run()
    assert all(torch.equal(v, model[k]) for k, v in fresh.model.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(fresh.alphas, alphas, strict=True))
    assert fresh.w_optim.state_dict()["state"] == {} and fresh.rows == []


@pytest.mark.parametrize("optimizer", available())
def test_every_plugin_checkpoints_plain_data(optimizer: str, tmp_path: Path, toy_data) -> None:
    """With everything a checkpoint can hold: the eigenvector, correlation rows, the plug-in's state."""
    cheap = {"enas": {"controller_steps": 5, "reward_batches": 2}, "rsws": {"eval_archs": 4, "rerank_top": 1}}
    params = cheap.get(optimizer, {})
    cfg = tiny_config(optimizer=optimizer, epochs=1, init_channels=4, hessian=True, correlation_every=1,
                      correlation_samples=3, optimizer_params=params)  # fmt: skip
    Trainer(cfg, tmp_path, FixtureTable(), toy_data).run()
    torch.load(tmp_path / results.CHECKPOINT, weights_only=True)  # raises on anything but plain data
    ck = checkpoint.read(tmp_path / results.CHECKPOINT)
    assert ck.epoch == 0 and len(ck.rows) == 1 and len(ck.correlation) == 1
    assert ck.eig_vector is not None or cfg.hessian_method == "exact"

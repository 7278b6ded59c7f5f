"""DARTS-PT selection (bench.runs.selection) against the rules of ruocwang/darts-pt,
`sota/cnn/projection.py`: `project_op` keeps the op whose removal leaves the lowest accuracy (strict
`<`, ties to the lowest index); `project_edge` drops, until k remain, the edge whose removal leaves the
highest accuracy (`not x < y`, ties to the later edge), earlier drops of the node staying active."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import results
from bench import run as cli
from bench.runs.oneshot import Score
from bench.runs.selection import Projection, decide_edges, decide_op


def linear_scorer(values: list[torch.Tensor]):  # noqa: ANN201
    """A toy supernet whose accuracy is sum(weights * values): each entry's worth known by construction."""

    def score(weights):  # noqa: ANN001, ANN202
        acc = float(sum((w * v).sum() for w, v in zip(weights, values, strict=True)))
        return Score(loss=-acc, acc=acc)

    return score


def _weights() -> list[torch.Tensor]:
    return [torch.full((2, 3), 1 / 3), torch.full((1, 4), 0.25)]


def test_op_decision_keeps_the_op_whose_removal_hurts_most() -> None:
    values = [torch.tensor([[0.1, 0.9, 0.3], [0.0, 0.0, 0.0]]), torch.zeros(1, 4)]
    rows: list[dict] = []
    assert decide_op(_weights(), 0, linear_scorer(values), rows) == 1
    assert [r["outcome"] for r in rows] == ["", "chosen", ""]


def test_op_ties_go_to_the_lowest_index() -> None:
    assert decide_op(_weights(), 1, linear_scorer([torch.ones(2, 3), torch.zeros(1, 4)]), []) == 0


def test_edge_decision_drops_the_least_useful_edges() -> None:
    values = [torch.zeros(2, 3), torch.tensor([[0.3, -0.2, 0.5, 0.1]])]
    rows: list[dict] = []
    assert decide_edges(_weights(), 1, 2, linear_scorer(values), rows) == [0, 2]
    assert [r["candidate"] for r in rows if r["outcome"] == "dropped"] == [1, 3]


def test_edge_ties_drop_the_later_edge() -> None:
    flat = linear_scorer([torch.zeros(2, 3), torch.ones(1, 4)])
    assert decide_edges(_weights(), 1, 3, flat, []) == [0, 1, 2]


def test_projection_pins_decided_entries_and_keeps_the_gradient_of_the_rest() -> None:
    a = [torch.zeros(2, 3, requires_grad=True), torch.zeros(1, 4, requires_grad=True)]
    p = Projection(a)
    p.pin(0, 0, range(3), torch.tensor([0.0, 1.0, 0.0]))
    p.pin(1, 0, [1, 3], 0.0)
    w = p([torch.softmax(t, -1) for t in a])
    assert w[0][0].tolist() == [0.0, 1.0, 0.0] and w[1][0, 1] == 0 and w[1][0, 3] == 0
    (g,) = torch.autograd.grad((w[0] * torch.arange(6.0).view(2, 3)).sum(), a[0])
    assert bool((g[0] == 0).all()) and float(g[1].abs().sum()) > 0


TINY = ["--benchmark", "digits", "--epochs", "2", "--no-progress", "--set", "batch_size=32",
        "--set", "init_channels=2", "--set", "cells_per_stack=1", "--set", "data_limit=256"]  # fmt: skip


def _run(out: Path, optimizer: str, *sets: str) -> Path:
    argv = ["--optimizer", optimizer, "--out", str(out), *TINY]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    return run


def _epochs(run: Path) -> pd.DataFrame:
    frame = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})
    return frame.drop(columns=[*results.TIMING_COLUMNS, "optimizer", "tag"])


def test_darts_pt_searches_as_darts_and_selects_once(tmp_path: Path) -> None:
    """Search phase bit for bit darts' (Hessian included); the PT architecture in selection.csv."""
    darts = _run(tmp_path / "darts", "darts")
    pt = _run(tmp_path / "pt", "darts-pt", "pt_tune_epochs=1")
    pd.testing.assert_frame_equal(_epochs(darts), _epochs(pt), check_exact=True)
    assert not (darts / results.SELECTION_CSV).exists()
    (row,) = pd.read_csv(pt / results.SELECTION_CSV, dtype={"arch_hash": str}).to_dict("records")
    assert row["selection"] == "pt" and row["epoch"] == 1 and 0 < row["test_acc_mean"] <= 1
    decisions = pd.read_csv(pt / results.SELECTION_DECISIONS_CSV)
    assert (decisions.loc[decisions.kind == "op", "outcome"] == "chosen").sum() == 4  # space 1: 4 blocks
    again = _run(tmp_path / "again", "darts-pt", "pt_tune_epochs=1")
    same = pd.read_csv(again / results.SELECTION_DECISIONS_CSV)
    pd.testing.assert_frame_equal(decisions, same)  # a rerun decides the same, in the same order


@pytest.mark.parametrize("setting", ["selection=best", "pt_tune_epochs=-1"])
def test_bad_selection_settings_exit_2(setting: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--optimizer", "darts", "--benchmark", "digits", "--out", str(tmp_path), "--set", setting]
    code = cli.main(argv)
    assert code == 2
    assert setting.split("=")[0] in capsys.readouterr().err

"""DARTS- against a transcription of its released mixed op (Meituan-AutoML/DARTS-,
`src/search/model_search.py`, `MixedOp.forward`: `sum(w * op(x)) + auxiliary_op(x) * decay_rate`, an
identity at stride 1) and its linear beta schedule (`src/utils.py`, `DecayScheduler`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import results
from bench import run as cli
from bench.search.supernet import MixedOp
from optimizers.darts_minus import skip_beta
from tests.helpers import batch, make_optimizer


def release_decay_rate(base: float, epoch: int, t_max: int) -> float:
    """DecayScheduler(base_lr=base, T_max=t_max, T_start=0, T_stop=t_max, 'linear').step(epoch)."""
    return base * (t_max - epoch) / (t_max - 0) if epoch <= t_max else 0.0


@pytest.mark.parametrize(("epoch", "epochs"), [(0, 50), (1, 50), (25, 50), (49, 50), (3, 10)])
def test_beta_follows_the_release_schedule(epoch: int, epochs: int) -> None:
    assert skip_beta(1.0, epoch, epochs) == pytest.approx(release_decay_rate(1.0, epoch, epochs))
    assert skip_beta(0.7, epoch, epochs, "constant") == 0.7


def test_beta_is_set_per_epoch() -> None:
    opt = make_optimizer("darts-minus", epochs=10)
    opt.on_epoch_start(4)
    assert opt.beta == pytest.approx(0.6)


def release_mixed_op(beta: float):  # noqa: ANN201
    def forward(self: MixedOp, x, weights, choice=None):  # noqa: ANN001, ANN202
        res = sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))
        return res + x * beta

    return forward


def test_arch_gradient_equals_the_release_mixed_op(monkeypatch: pytest.MonkeyPatch) -> None:
    """The architecture gradient (not an Adam step, which hides scales) at beta = 0.6."""
    opt = make_optimizer("darts-minus", epochs=10)
    opt.on_epoch_start(4)
    alphas = opt.ctx.alphas
    with torch.no_grad():  # alphas away from 0, where the ops' weights differ
        for a in alphas:
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(3)))
    x, y = batch(0)
    ours = torch.autograd.grad(opt.arch_loss((x, y), alphas), alphas)
    with monkeypatch.context() as m:
        m.setattr(MixedOp, "forward", release_mixed_op(0.6))
        opt.beta = 0.0  # the hook adds nothing: the patched op carries the path
        logits = opt.ctx.model(x, [F.softmax(a, dim=-1) for a in alphas])
        ref = torch.autograd.grad(F.cross_entropy(logits, y), alphas)
    for g, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(g, r)
    assert any(not torch.equal(g, r) for g, r in zip(ours, make_optimizer_grads(alphas, x, y), strict=True))


def make_optimizer_grads(alphas, x, y):  # noqa: ANN001, ANN201
    """darts' gradient at the same alphas and weights: the path must change it."""
    opt = make_optimizer("darts", epochs=10)
    return torch.autograd.grad(opt.arch_loss((x, y), alphas), alphas)


def _digits_run(out: Path, optimizer: str, *sets: str) -> pd.DataFrame:
    argv = ["--optimizer", optimizer, "--epochs", "2", "--benchmark", "digits", "--out", str(out),
            "--no-progress", "--set", "batch_size=32", "--set", "init_channels=2",
            "--set", "cells_per_stack=1", "--set", "data_limit=256", "--set", "hessian_every=1"]  # fmt: skip
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    frame = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str})
    return frame.drop(columns=[*results.TIMING_COLUMNS, "optimizer", "tag"])


def test_beta_zero_is_darts_bit_for_bit(tmp_path: Path) -> None:
    """Two epochs on the embedded benchmark (Hessian included): every non-timing column equal."""
    darts = _digits_run(tmp_path / "darts", "darts")
    minus = _digits_run(tmp_path / "minus", "darts-minus", "beta=0")
    assert len(darts) == 2
    pd.testing.assert_frame_equal(darts, minus, check_exact=True)


def test_beta_changes_the_search(tmp_path: Path) -> None:
    darts = _digits_run(tmp_path / "darts", "darts")
    minus = _digits_run(tmp_path / "minus", "darts-minus")
    assert not darts["oneshot_train_loss"].equals(minus["oneshot_train_loss"])


@pytest.mark.parametrize("setting", ["beta=-0.5", "beta_schedule=cosine"])
def test_bad_hyperparameters_exit_2(setting: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["--optimizer", "darts-minus", "--benchmark", "digits", "--out", str(tmp_path),
                     "--set", setting])  # fmt: skip
    assert code == 2
    assert setting.split("=")[0] in capsys.readouterr().err

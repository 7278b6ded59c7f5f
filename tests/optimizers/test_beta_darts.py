"""beta-DARTS against a transcription of its released update (Sunshine-Ye/Beta-DARTS,
optimizers/darts/architect.py: `mlc_loss` and `_backward_step`), and its exact anchor to `darts`."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import results
from bench import run as cli
from optimizers.beta_darts import beta_weight
from tests.helpers import batch, make_optimizer


def release_mlc_loss(arch_param: torch.Tensor) -> torch.Tensor:
    """architect.py `mlc_loss`, verbatim."""
    y_pred_neg = arch_param
    neg_loss = torch.logsumexp(y_pred_neg, dim=-1)
    aux_loss = torch.mean(neg_loss)
    return aux_loss


def test_arch_gradient_matches_the_release() -> None:
    # Inputs where the term matters: non-zero alphas, weight 50 * 30 / 100 = 15 at the release's budget.
    opt = make_optimizer("beta-darts", epochs=100)
    opt.on_epoch_start(30)
    with torch.no_grad():
        for a in opt.ctx.alphas:
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(a.numel())))
    alphas, (x, y) = opt.ctx.alphas, batch(1)
    mine = torch.autograd.grad(opt.arch_loss((x, y), alphas), alphas)

    # The release's `_backward_step` (weights = 0 + 50*epoch/100), its one alpha matrix replaced by the
    # rows of all NAS-Bench-1Shot1 alpha tensors, pooled into one mean (the plug-in's adaptation).
    weights = 0 + 50 * 30 / 100
    rows = torch.cat([torch.logsumexp(a, dim=-1).flatten() for a in alphas])
    ssr = torch.mean(rows)
    loss = F.cross_entropy(opt.ctx.model(x, [F.softmax(a, dim=-1) for a in alphas]), y) + weights * ssr
    ref = torch.autograd.grad(loss, alphas)
    for m, r in zip(mine, ref, strict=True):
        torch.testing.assert_close(m, r, rtol=1e-6, atol=1e-7)
    # The pooled mean is the release's formula wherever the rows form one matrix (the op alphas).
    ops = alphas[0]
    assert torch.allclose(release_mlc_loss(ops), torch.logsumexp(ops, -1).mean())
    # ... and the term moved the gradient (a test that passes with any weight would be worthless).
    plain = torch.autograd.grad(
        F.cross_entropy(opt.ctx.model(x, [F.softmax(a, -1) for a in alphas]), y), alphas
    )
    assert not torch.allclose(mine[0], plain[0])


def test_weight_is_the_release_ramp_scaled_to_the_run() -> None:
    assert [beta_weight(50.0, e, 100) for e in (0, 1, 50, 99)] == [0.0, 0.5, 25.0, 49.5]
    assert beta_weight(50.0, 5, 10) == 25.0  # a 10-epoch run reaches the same ramp
    opt = make_optimizer("beta-darts", epochs=4, lambda_max=8.0)
    opt.on_epoch_start(3)
    assert opt.regularization_weight() == 6.0


TINY = ["--benchmark", "digits", "--no-progress", "--epochs", "2", "--set", "batch_size=16",
        "--set", "init_channels=4", "--set", "cells_per_stack=1", "--set", "hessian=false"]  # fmt: skip


def test_epoch_zero_reproduces_darts_bit_for_bit(tmp_path) -> None:
    frames, alphas = {}, {}
    for name in ("darts", "beta-darts"):
        out = tmp_path / name
        assert cli.main(["--optimizer", name, "--out", str(out), *TINY]) == 0
        (run,) = results.find_runs(out)
        frames[name] = pd.read_csv(run / results.EPOCHS_CSV, dtype={"arch_hash": str}).drop(
            columns=[*results.TIMING_COLUMNS, "optimizer"]
        )
        alphas[name] = results.read_alphas(run / results.ALPHAS_NPZ)[1]
    darts, beta = frames["darts"], frames["beta-darts"]
    pd.testing.assert_frame_equal(darts.iloc[:1], beta.iloc[:1])  # epoch 0: weight 0, every column equal
    assert not darts.iloc[1:].equals(beta.iloc[1:])  # epoch 1: weight 25, the search differs
    first = {k: v[0] for k, v in alphas["darts"].items()}
    assert all((first[k] == alphas["beta-darts"][k][0]).all() for k in first)


@pytest.mark.parametrize(
    ("setting", "message"), [("lambda_max=-1", "lambda_max=-1.0"), ("lambda=3", "unknown setting")]
)
def test_bad_hyperparameters_one_line_exit_2(setting, message, tmp_path, capsys) -> None:
    code = cli.main(["--optimizer", "beta-darts", "--set", setting, "--out", str(tmp_path / "r"), *TINY])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists() or not results.find_runs(tmp_path / "r")

"""FairDARTS against a transcription of its released arch step (xiaomi-automl/FairDARTS,
fairdarts/architect.py `step` with fairdarts/separate_loss.py `ConvSeparateLoss`), its sigmoid
mixing and discretization."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench import run as cli
from bench.runs.config import RunConfig
from bench.search.spaces import SearchSpace
from tests.helpers import batch, make_optimizer


def spread_alphas(opt) -> None:
    """Alphas away from 0, where sigmoid - 0.5 and the zero-one gradient are not ~0."""
    with torch.no_grad():
        for a in opt.ctx.alphas:
            a.copy_(2 * torch.randn(a.shape, generator=torch.Generator().manual_seed(a.numel())))


@pytest.mark.parametrize("w01", [10.0, 3.0])
def test_arch_gradient_matches_the_release(w01: float) -> None:
    opt = make_optimizer("fair-darts", space=2, w01=w01)
    spread_alphas(opt)
    alphas, (x, y) = opt.ctx.alphas, batch(3)
    mine = torch.autograd.grad(opt.arch_loss((x, y), alphas), alphas)

    # architect.step: aux_input = cat(sigmoid(alphas)); ConvSeparateLoss(weight=aux_loss_weight):
    # loss1 = CE(logits, target); loss2 = -mse_loss(aux_input, 0.5); loss = loss1 + weight * loss2.
    aux_input = torch.cat([torch.sigmoid(a).flatten() for a in alphas], dim=0)
    logits = opt.ctx.model(x, [torch.sigmoid(a) for a in alphas])
    loss1 = F.cross_entropy(logits, y)
    loss2 = -F.mse_loss(aux_input, torch.tensor(0.5).expand_as(aux_input))
    ref = torch.autograd.grad(loss1 + w01 * loss2, alphas, retain_graph=True)
    for m, r in zip(mine, ref, strict=True):
        torch.testing.assert_close(m, r, rtol=1e-6, atol=1e-7)
    without = torch.autograd.grad(loss1, alphas)
    assert not torch.allclose(mine[0], without[0])  # the zero-one term carries weight


def test_l1_variant_is_the_release_tri_separate_loss() -> None:
    from optimizers.fair_darts import zero_one_loss

    alphas = [torch.tensor([[0.3, -2.0, 1.0]]), torch.tensor([[4.0, 0.0]])]
    s = torch.sigmoid(torch.cat([a.flatten() for a in alphas]))
    assert torch.allclose(zero_one_loss(alphas, "l1"), -(s - 0.5).abs().mean())
    assert torch.allclose(zero_one_loss(alphas, "l2"), -((s - 0.5) ** 2).mean())


@pytest.mark.parametrize("space", [1, 2, 3])
def test_mixing_is_sigmoid_and_discretization_ranks_by_it(space: int) -> None:
    opt = make_optimizer("fair-darts", space=space)
    spread_alphas(opt)
    sig = [torch.sigmoid(a) for a in opt.ctx.alphas]
    for got in (opt.arch_weights(opt.ctx.alphas), opt.eval_weights(opt.ctx.alphas)):
        assert all(torch.equal(g, s) for g, s in zip(got, sig, strict=True))
    sp = SearchSpace(space)
    assert sp.argmax_architecture(sig) == sp.argmax_architecture(opt.ctx.alphas)


def test_paper_preset_uses_the_release_arch_optimizer() -> None:
    cfg = RunConfig.resolve("fair-darts", 1, preset="paper")
    assert (cfg.a_lr, cfg.a_beta1, cfg.a_weight_decay) == (3e-3, 0.9, 1e-3)
    assert cfg.plugin().reference_epochs == 50


@pytest.mark.parametrize(("setting", "message"), [("w01=-1", "w01=-1.0"), ("zero_one=l3", "choose l2 or l1")])
def test_bad_hyperparameters_one_line_exit_2(setting, message, tmp_path, capsys) -> None:
    argv = ["--optimizer", "fair-darts", "--set", setting, "--benchmark", "digits", "--no-progress",
            "--out", str(tmp_path / "r")]  # fmt: skip
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]

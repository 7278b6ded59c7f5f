"""DrNAS against a transcription of its released arch step (xiangning-chen/DrNAS,
201-space/search_model.py `_loss` / `_get_kl_reg` and utils.py `process_step_matrix`), and its sampler."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions.dirichlet import Dirichlet
from torch.distributions.kl import kl_divergence

from bench import run as cli
from bench.runs.config import RunConfig
from optimizers.drnas import dirichlet_mean, dirichlet_sample
from tests.helpers import batch, make_optimizer


def release_process_step_matrix(x: torch.Tensor) -> torch.Tensor:
    """utils.py: process_step_matrix(x, 'dirichlet', mask=None), i.e. one rsample per row."""
    return torch.stack([Dirichlet(F.elu(line) + 1).rsample() for line in x])


def spread_alphas(opt) -> None:
    with torch.no_grad():
        for a in opt.ctx.alphas:
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(a.numel())))


@pytest.mark.parametrize("reg_scale", [1e-3, 0.5])
def test_arch_gradient_matches_the_release(reg_scale: float) -> None:
    opt = make_optimizer("drnas", space=3, reg_scale=reg_scale)
    spread_alphas(opt)
    alphas, (x, y) = opt.ctx.alphas, batch(2)
    torch.manual_seed(7)
    mine = torch.autograd.grad(opt.arch_loss((x, y), alphas), alphas)

    # _loss: CE(self(input)) + reg_scale * sum(KL(Dir(elu(alpha) + 1) || anchor Dir(1))), per alpha tensor.
    torch.manual_seed(7)
    weights = [release_process_step_matrix(a) for a in alphas]
    loss = F.cross_entropy(opt.ctx.model(x, weights), y)
    for a in alphas:
        anchor = Dirichlet(torch.ones_like(a))
        loss = loss + reg_scale * torch.sum(kl_divergence(Dirichlet(F.elu(a) + 1), anchor))
    ref = torch.autograd.grad(loss, alphas)
    for m, r in zip(mine, ref, strict=True):
        torch.testing.assert_close(m, r, rtol=1e-5, atol=1e-7)


def test_sampler_on_fixed_inputs() -> None:
    alphas = [torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]], requires_grad=True), torch.zeros(1, 4)]
    torch.manual_seed(0)
    first = dirichlet_sample(alphas)
    for w, a in zip(first, alphas, strict=True):
        assert w.shape == a.shape and (w > 0).all()
        torch.testing.assert_close(w.sum(-1), torch.ones(a.shape[0]))
    (grad,) = torch.autograd.grad(first[0][0, 2], alphas[0])  # pathwise gradient reaches the alphas
    assert grad.abs().sum() > 0
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(first, dirichlet_sample(alphas), strict=True))
    second = dirichlet_sample(alphas)  # the RNG moved on: a new sample ...
    assert not torch.equal(first[0], second[0])
    # ... while the deterministic weights (Dirichlet mean beta / sum beta) do not move
    beta = F.elu(alphas[0].detach()) + 1
    torch.testing.assert_close(dirichlet_mean(alphas)[0], beta / beta.sum(-1, keepdim=True))
    assert torch.equal(dirichlet_mean(alphas)[1], torch.full((1, 4), 0.25))


def test_eval_and_hessian_weights_are_the_dirichlet_mean() -> None:
    opt = make_optimizer("drnas")
    spread_alphas(opt)
    mean = dirichlet_mean(opt.ctx.alphas)
    for got in (opt.eval_weights(opt.ctx.alphas), opt.hessian_mixing()(opt.ctx.alphas)):
        assert all(torch.equal(g, m) for g, m in zip(got, mean, strict=True))


def test_kl_is_off_with_reg_type_l2_and_presets_drop_arch_weight_decay() -> None:
    opt = make_optimizer("drnas", reg_type="l2")
    spread_alphas(opt)
    torch.manual_seed(1)
    loss = opt.arch_loss(batch(0), opt.ctx.alphas)
    torch.manual_seed(1)
    plain = F.cross_entropy(opt.ctx.model(batch(0)[0], dirichlet_sample(opt.ctx.alphas)), batch(0)[1])
    assert torch.equal(loss, plain)
    for preset in ("paper", "corrected", "quick"):
        assert RunConfig.resolve("drnas", 1, preset=preset).a_weight_decay == 0.0


@pytest.mark.parametrize(
    ("setting", "message"), [("reg_scale=-0.1", "reg_scale=-0.1"), ("reg_type=l1", "choose kl or l2")]
)
def test_bad_hyperparameters_one_line_exit_2(setting, message, tmp_path, capsys) -> None:
    argv = ["--optimizer", "drnas", "--set", setting, "--benchmark", "digits", "--no-progress",
            "--out", str(tmp_path / "r")]  # fmt: skip
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]

"""The Hessian as the SDARTS/MS-DARTS scripts measured it (the paper preset): GDAS through its own
Gumbel forward (stochastic, ~1/tau^2), and a measurement whose train-mode forward updates the BN
running statistics. Each checked against an independent computation written from the scripts'
behaviour (torch.autograd.functional.hessian of the loss as the script defines it)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.search.hessian import hessian_matrix, supernet_eigenvalue_info, supernet_loss_fn
from optimizers.base import row_softmax
from tests.helpers import batch, make_optimizer


def gdas_double(tau: float):
    opt = make_optimizer("gdas")
    opt.ctx.model.double().train()
    with torch.no_grad():
        for a in opt.ctx.alphas:
            a.data = a.data.double() + 0.3 * torch.randn_like(a.data.double())
    opt.tau = tau
    return opt


def shared_noise(opt, seed: int = 0) -> list[torch.Tensor]:
    """Gumbel noise, the same in every cell (so one alpha shift moves every cell's logits alike)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for a in opt.ctx.alphas:
        g0 = -torch.empty(a.shape, dtype=torch.float64).exponential_(generator=g).log()
        out.append(g0.expand(opt.num_cells, *a.shape).contiguous())
    return out


def reference_gdas_hessian(opt, alphas, noise, tau, xy) -> torch.Tensor:
    """The script's loss written out: per cell and choice block softmax((alpha + g) / tau); ops hard
    one-hot with the soft gradient (straight-through), edges soft; only the sampled op runs, times its
    weight; cross-entropy. (Weight decay 0: only the tau scaling is under test.)"""
    x, y = xy
    shapes = [a.shape for a in alphas]
    sizes = [a.numel() for a in alphas]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = [p.view(s) for p, s in zip(flat.split(sizes), shapes, strict=True)]
        weights = []
        for k, (a, g) in enumerate(zip(parts, noise, strict=True)):
            soft = torch.softmax((a.unsqueeze(0) + g) / tau, dim=-1)
            if k == 0:
                hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
                soft = hard + soft - soft.detach()
            weights.append(soft)
        logits = opt.ctx.model(x, weights, op_choice=weights[0].detach().argmax(-1))
        return F.cross_entropy(logits, y)

    flat = torch.cat([a.detach().reshape(-1) for a in alphas])
    return torch.autograd.functional.hessian(loss, flat)


def harness_gdas_hessian(opt, alphas, noise, tau, xy) -> np.ndarray:
    loss = supernet_loss_fn(opt.ctx.model, opt.gumbel_mixing(noise, tau), xy, 0.0, forward=opt.forward)
    return hessian_matrix(loss, alphas)


def test_gdas_hessian_is_the_scripts_and_scales_with_one_over_tau_squared() -> None:
    opt = gdas_double(2.0)
    xy = (batch(3, n=8)[0].double(), batch(3, n=8)[1])
    noise = shared_noise(opt)
    alphas = [a.detach().clone() for a in opt.ctx.alphas]
    h1 = harness_gdas_hessian(opt, alphas, noise, 2.0, xy)
    assert np.allclose(h1, reference_gdas_hessian(opt, alphas, noise, 2.0, xy).numpy(), atol=1e-8)
    assert np.abs(h1).max() > 1e-6

    # Same logits (alpha + g) / tau at tau = 4: the Hessian is (2/4)^2 times the one at tau = 2.
    shifted = [(a + g[0]) * 2.0 - g[0] for a, g in zip(alphas, noise, strict=True)]
    h2 = harness_gdas_hessian(opt, shifted, noise, 4.0, xy)
    assert np.allclose(h2 * 4.0**2, h1 * 2.0**2, atol=1e-8)

    # Not the softmax Hessian of the corrected protocol.
    softmax = hessian_matrix(supernet_loss_fn(opt.ctx.model, row_softmax, xy, 0.0), alphas)
    assert not np.allclose(softmax, h1, atol=1e-4)


def test_gdas_hessian_hook_draws_fresh_noise_once_per_measurement() -> None:
    opt = gdas_double(5.0)
    xy = (batch(4, n=16)[0].double(), batch(4, n=16)[1])
    torch.manual_seed(0)
    mix = opt.hessian_mixing()
    w1, w2 = mix(opt.ctx.alphas), mix(opt.ctx.alphas)
    assert all(torch.equal(a, b) for a, b in zip(w1, w2, strict=True))
    values = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        info = supernet_eigenvalue_info(
            opt.ctx.model, opt.ctx.alphas, opt.hessian_mixing(), xy, 0.0, forward=opt.forward, method="exact"
        )
        values.append(info.eigenvalue)
    assert values[0] != pytest.approx(values[1])  # stochastic: a new Gumbel sample per measurement


@pytest.mark.parametrize("restore", [True, False])
def test_measurement_updates_bn_statistics_unless_restored(restore: bool) -> None:
    """Scripts: the Hessian's one train-mode forward writes its batch statistics into the running ones."""
    opt = make_optimizer("darts")
    model = opt.ctx.model
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.997
    model.eval()
    xy = batch(5, n=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    expected = copy.deepcopy(model).train()
    with torch.no_grad():
        expected(xy[0], row_softmax(opt.ctx.alphas))  # one train-mode forward at softmax(alpha)
    supernet_eigenvalue_info(model, opt.ctx.alphas, row_softmax, xy, 1e-3, restore_bn=restore)
    assert not model.training  # the mode comes back either way
    for name, value in model.state_dict().items():
        target = before[name] if restore else expected.state_dict()[name]
        assert torch.allclose(value.float(), target.float(), atol=1e-5), name

"""DARTS: first-order steps touch only what they should; second order matches exact autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from bench.search.spaces import SearchSpace
from bench.search.supernet import Supernet
from optimizers import SearchContext, build_hyperparameters, get_optimizer


class SmoothNet(torch.nn.Module):
    """A smooth stand-in with the supernet's `forward(x, weights)` signature, where weights and
    mixing weights interact (the supernet's ReLUs and max-pools make finite differences kink)."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        n_mix = space.num_alphas
        self.inp = torch.nn.Linear(64, 16)
        self.gain = torch.nn.Linear(n_mix, 16)
        self.bn = torch.nn.BatchNorm1d(16)
        self.out = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor, weights) -> torch.Tensor:
        mix = torch.cat([w.flatten() for w in weights])
        h = torch.tanh(self.inp(x.flatten(1)) * (1 + self.gain(mix)))
        return self.out(torch.tanh(self.bn(h)))


def make(
    opt: str = "darts", momentum: float = 0.9, wd: float = 3e-4, dtype=torch.float32, smooth=False, **hp
):
    torch.manual_seed(0)
    space = SearchSpace(1)
    if smooth:
        model = SmoothNet(space).to(dtype)
    else:
        model = Supernet(space, init_channels=2, num_classes=10, in_channels=1, cells_per_stack=1).to(dtype)
    alphas = [
        a.detach().to(dtype).requires_grad_(True) for a in space.init_alphas(torch.Generator().manual_seed(0))
    ]
    params = list(model.parameters())
    w_optim = torch.optim.SGD(params, lr=0.05, momentum=momentum, weight_decay=wd)
    a_optim = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ctx = SearchContext(model, space, alphas, w_optim, a_optim, 5.0, 10, params)
    cls = get_optimizer(opt)
    return cls(ctx, build_hyperparameters(cls, hp)), ctx


def batch(seed: int, n: int = 8, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g).to(dtype), torch.randint(0, 10, (n,), generator=g)


def snapshot(tensors):
    return [t.detach().clone() for t in tensors]


def test_arch_step_moves_alphas_not_weights() -> None:
    opt, ctx = make()
    w0, a0 = snapshot(ctx.weight_params), snapshot(ctx.alphas)
    opt.arch_step(batch(1))
    assert all(torch.equal(a, b) for a, b in zip(w0, ctx.weight_params, strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(a0, ctx.alphas, strict=True))
    assert all(p.grad is None for p in ctx.weight_params)  # no weight gradients were even computed


def test_weight_step_moves_weights_not_alphas() -> None:
    opt, ctx = make()
    a0 = snapshot(ctx.alphas)
    w0 = snapshot(ctx.weight_params)
    stats = opt.weight_step(batch(2), opt.weight_step_weights(batch(2)))
    assert stats.n == 8 and 0 <= stats.correct <= 8 and stats.loss > 0
    assert all(torch.equal(a, b) for a, b in zip(a0, ctx.alphas, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(w0, ctx.weight_params, strict=True))


def test_full_step_changes_both() -> None:
    opt, ctx = make()
    a0, w0 = snapshot(ctx.alphas), snapshot(ctx.weight_params)
    opt.step(batch(1), batch(2))
    assert any(not torch.equal(a, b) for a, b in zip(a0, ctx.alphas, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(w0, ctx.weight_params, strict=True))


def exact_unrolled_grads(opt, ctx, batch_train, batch_val, eta: float) -> list[torch.Tensor]:
    """d/dalpha L_val(w - eta * dL_train(w, alpha)/dw, alpha), by autograd through the unrolled step."""
    model = ctx.model
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach().clone().requires_grad_(True) for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    x, y = batch_train
    loss = F.cross_entropy(
        functional_call(model, {**params, **buffers}, (x, opt.arch_weights(ctx.alphas))), y
    )
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
    unrolled = {n: params[n] - eta * g for n, g in zip(names, grads, strict=True)}
    xv, yv = batch_val
    loss_val = F.cross_entropy(
        functional_call(model, {**unrolled, **buffers}, (xv, opt.arch_weights(ctx.alphas))), yv
    )
    return list(torch.autograd.grad(loss_val, ctx.alphas))


def test_second_order_matches_exact_autograd() -> None:
    """Without momentum and weight decay the unrolled step is w - eta*g; the finite-difference
    mixed derivative must then agree with differentiating through that step exactly."""
    opt, ctx = make(momentum=0.0, wd=0.0, dtype=torch.float64, smooth=True, unrolled=True)
    bt, bv = batch(1, dtype=torch.float64), batch(2, dtype=torch.float64)
    expected = exact_unrolled_grads(opt, ctx, bt, bv, eta=0.05)
    got = opt.unrolled_arch_grads(bt, bv)
    first_order = torch.autograd.grad(opt.arch_loss(bv, ctx.alphas), ctx.alphas)
    flat = lambda ts: torch.cat([t.flatten() for t in ts])  # noqa: E731
    err = (flat(got) - flat(expected)).norm() / flat(expected).norm()
    assert err < 1e-3
    # ... and the second-order term is not negligible, so the test can tell the two apart.
    assert (flat(first_order) - flat(expected)).norm() / flat(expected).norm() > 10 * err


@pytest.mark.parametrize("smooth", [False, True])
def test_second_order_restores_weights_and_bn_stats(smooth: bool) -> None:
    opt, ctx = make(smooth=smooth, unrolled=True)
    opt.weight_step(batch(3), opt.weight_step_weights(batch(3)))  # fill momentum buffers
    w0, b0 = snapshot(ctx.weight_params), snapshot(ctx.model.buffers())
    opt.unrolled_arch_grads(batch(1), batch(2))
    assert all(torch.equal(a, b) for a, b in zip(w0, ctx.weight_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(b0, ctx.model.buffers(), strict=True))


def test_second_order_needs_training_batch() -> None:
    opt, _ = make(unrolled=True)
    with pytest.raises(ValueError, match="training batch"):
        opt.arch_step(batch(1))

"""SDARTS-RS/ADV and MS-DARTS: the perturbation is discarded, the weight step sees it; the math behind it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from optimizers.msdarts import mean_shift, mean_shift_update
from optimizers.perturb import linear_ramp, project_box_simplex, simplex_clip
from optimizers.sdarts import pgd_attack
from tests.helpers import batch, make_optimizer, record_forwards, snapshot

PERTURBED = ["sdarts-rs", "sdarts-adv", "msdarts"]


def on_simplex(rows: torch.Tensor, atol: float = 1e-5) -> bool:
    return bool(
        (rows >= -atol).all()
        and (rows <= 1 + atol).all()
        and torch.allclose(rows.sum(-1), torch.ones(()), atol=atol)
    )


# ---- the three optimizers inside one search step -------------------------------------------------
@pytest.mark.parametrize("name", PERTURBED)
def test_alphas_get_the_darts_arch_step_only(name: str) -> None:
    opt, darts = make_optimizer(name), make_optimizer("darts")
    assert all(torch.equal(a, b) for a, b in zip(opt.ctx.alphas, darts.ctx.alphas, strict=True))
    for o in (opt, darts):
        o.on_epoch_start(5)
    opt.step(batch(1), batch(2))
    darts.arch_step(batch(2))
    assert all(torch.equal(a, b) for a, b in zip(opt.ctx.alphas, darts.ctx.alphas, strict=True))


@pytest.mark.parametrize("name", PERTURBED)
def test_weight_step_sees_perturbed_mixing_weights(name: str) -> None:
    # SDARTS-ADV with the exact projection (corrected), which provably stays in the box.
    opt = make_optimizer(name, epochs=10, **({"projection": "exact"} if name == "sdarts-adv" else {}))
    opt.on_epoch_start(5)
    eps = opt.epsilon()
    calls = record_forwards(opt.ctx.model)
    opt.step(batch(1), batch(2))
    clean = [F.softmax(a.detach(), -1) for a in opt.ctx.alphas]  # after the arch step
    arch_call, *sampling, weight_call = calls
    assert arch_call["training"] and weight_call["training"] and weight_call["grad"]
    assert all(not c["training"] for c in sampling)  # sampling / attack in eval mode
    used = weight_call["weights"]
    assert all(not torch.allclose(u, c) for u, c in zip(used, clean, strict=True))
    diffs = [(u - c).abs().max().item() for u, c in zip(used, clean, strict=True)]
    if name == "sdarts-rs":
        # Renormalizing after the clamp can move a row a little past the eps-box (the reference clip).
        assert all(on_simplex(u) for u in used) and max(diffs) <= 2 * eps
    elif name == "sdarts-adv":
        assert len(sampling) == 2 + opt.hp.steps  # clean loss, one per attack step, attacked loss
        assert all(on_simplex(u) for u in used) and max(diffs) <= eps + 1e-6
    else:
        hp = opt.hp
        assert len(sampling) == hp.samples * hp.iterations
        assert all(not c["grad"] and c["inference"] for c in sampling)  # no graphs while sampling
        assert max(diffs) <= hp.iterations * eps + 1e-6  # each iteration moves at most eps
        assert not all(on_simplex(u) for u in used)  # faithful: the unclipped mean leaves the simplex


@pytest.mark.parametrize("name", PERTURBED)
def test_perturbation_leaves_network_and_alphas_alone(name: str) -> None:
    opt = make_optimizer(name)
    opt.on_epoch_start(5)
    model = opt.ctx.model
    model.train()
    before = snapshot([*model.parameters(), *model.buffers(), *opt.ctx.alphas])
    weights = opt.weight_step_weights(batch(3))
    after = [*model.parameters(), *model.buffers(), *opt.ctx.alphas]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # BN stats too: eval mode
    assert model.training and all(not w.requires_grad for w in weights)
    assert all(p.grad is None for p in model.parameters())  # the attack computed no weight gradients


def test_epsilon_ramps() -> None:
    assert linear_ramp(0.03, 0.3, 0, 100) == pytest.approx(0.03)
    assert linear_ramp(0.03, 0.3, 50, 100) == pytest.approx(0.165)
    rs = make_optimizer("sdarts-rs", epochs=10)
    assert rs.epsilon() == pytest.approx(0.03)
    rs.on_epoch_start(9)
    assert rs.epsilon() == pytest.approx(0.03 + 0.27 * 0.9)
    ms = make_optimizer("msdarts", epochs=80)
    assert ms.epsilon() == pytest.approx(0.025)
    ms.on_epoch_start(40)
    assert ms.epsilon() == pytest.approx(0.025 + 0.225 * 0.5)


def test_msdarts_defaults_and_clip_option() -> None:
    opt = make_optimizer("msdarts")
    hp = opt.hp
    assert (hp.epsilon, hp.bandwidth, hp.samples, hp.iterations, hp.clip_result) == (0.25, 1.0, 3, 2, False)
    clipped = make_optimizer("msdarts", clip_result=True, epsilon=0.5)
    clipped.on_epoch_start(9)
    assert all(on_simplex(w) for w in clipped.weight_step_weights(batch(4)))


# ---- mean-shift math on toy losses ---------------------------------------------------------------
CENTRE = [torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]), torch.tensor([[0.25, 0.25, 0.25, 0.25]])]


def draws(seed: int, n: int, eps: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    pert = [c + torch.empty((n, *c.shape)).uniform_(-eps, eps, generator=g) for c in CENTRE]
    return pert, [simplex_clip(p) for p in pert]


def test_mean_shift_huge_bandwidth_equal_losses_is_plain_mean() -> None:
    pert, clip = draws(0, 4, 0.2)
    out = mean_shift_update(CENTRE, pert, clip, torch.zeros(4), bandwidth=1e6)
    for o, p in zip(out, pert, strict=True):
        assert torch.allclose(o, p.mean(0), atol=1e-6)


def test_mean_shift_tiny_bandwidth_picks_nearest_sample() -> None:
    pert, clip = draws(1, 5, 0.3)
    out = mean_shift_update(CENTRE, pert, clip, torch.tensor([5.0, 0, 0, 0, 0]), bandwidth=1e-3)
    for o, c, p, q in zip(out, CENTRE, pert, clip, strict=True):
        nearest = (q - c).pow(2).flatten(1).sum(1).argmin()  # distance of the CLIPPED sample
        assert torch.equal(o, p[nearest])  # ... but the UNclipped sample is averaged (released code)


def test_mean_shift_sample_weights_are_softmax_of_losses() -> None:
    pert, clip = draws(2, 3, 0.2)
    losses = torch.tensor([0.5, 2.0, 1.0])
    out = mean_shift_update(CENTRE, pert, clip, losses, bandwidth=1e6)
    w = torch.softmax(losses, 0)
    for o, p in zip(out, pert, strict=True):
        assert torch.allclose(o, (w[:, None, None] * p).sum(0), atol=1e-6)


def test_mean_shift_kernel_per_arch_tensor() -> None:
    pert, clip = draws(3, 3, 0.3)
    h, losses = 0.2, torch.tensor([0.1, 0.4, 0.2])
    out = mean_shift_update(CENTRE, pert, clip, losses, bandwidth=h)
    for o, c, p, q in zip(out, CENTRE, pert, clip, strict=True):
        g = [
            math.exp(-0.5 * float((c - q[i]).pow(2).sum()) / h**2) / (h * math.sqrt(2 * math.pi))
            for i in range(3)
        ]
        omega = torch.softmax(losses, 0).tolist()
        num = sum(omega[i] * g[i] * p[i] for i in range(3))
        assert torch.allclose(o, num / sum(omega[i] * g[i] for i in range(3)), atol=1e-6)


def test_mean_shift_iterations_compose_and_use_sample_losses() -> None:
    seen = []

    def toy_loss(weights):  # a known loss: squared distance of the (clipped) sample to a target
        seen.append([w.clone() for w in weights])
        return sum((w - 0.5).pow(2).sum() for w in weights)

    twice = mean_shift(
        CENTRE, toy_loss, 0.2, 0.5, iterations=2, samples=3, generator=torch.Generator().manual_seed(7)
    )
    assert len(seen) == 6 and all(on_simplex(w) for s in seen for w in s)  # losses at clipped samples
    g = torch.Generator().manual_seed(7)
    once = mean_shift(CENTRE, toy_loss, 0.2, 0.5, iterations=1, samples=3, generator=g)
    again = mean_shift(once, toy_loss, 0.2, 0.5, iterations=1, samples=3, generator=g)
    assert all(torch.equal(a, b) for a, b in zip(twice, again, strict=True))
    # One iteration by hand: the same draws, losses and update.
    g = torch.Generator().manual_seed(7)
    pert = [c.unsqueeze(0) + torch.empty((3, *c.shape)).uniform_(-0.2, 0.2, generator=g) for c in CENTRE]
    clip = [simplex_clip(p) for p in pert]
    losses = torch.stack([toy_loss([c[i] for c in clip]) for i in range(3)])
    by_hand = mean_shift_update(CENTRE, pert, clip, losses, 0.5)
    assert all(torch.allclose(a, b) for a, b in zip(once, by_hand, strict=True))


def test_mean_shift_zero_radius_stays_put() -> None:
    out = mean_shift(CENTRE, lambda w: torch.tensor(1.0), 0.0, 1.0, iterations=2, samples=3)
    assert all(torch.allclose(o, c) for o, c in zip(out, CENTRE, strict=True))


# ---- simplex clip, projection and PGD ------------------------------------------------------------
def test_simplex_clip() -> None:
    rows = torch.tensor([[0.5, 0.7, -0.2], [-0.1, -0.3, -0.2], [0.2, 0.3, 0.5]])
    out = simplex_clip(rows)
    assert torch.allclose(out[0], torch.tensor([0.5, 0.7, 0.0]) / 1.2)
    assert torch.equal(out[1], torch.tensor([1.0, 0.0, 0.0]))  # all clamped away: one-hot at the max
    assert torch.allclose(out[2], rows[2])


def bisect_projection(y: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Reference: bisection on the shift tau of clamp(y - tau, lo, hi), one row at a time."""
    out = []
    for yr, lr, hr in zip(y, lo, hi, strict=True):
        a, b = float((yr - hr).min()) - 1, float((yr - lr).max()) + 1
        for _ in range(200):
            mid = (a + b) / 2
            a, b = (mid, b) if float((yr - mid).clamp(lr, hr).sum()) > 1 else (a, mid)
        out.append((yr - (a + b) / 2).clamp(lr, hr))
    return torch.stack(out)


def test_project_box_simplex_is_exact() -> None:
    g = torch.Generator().manual_seed(0)
    centre = torch.softmax(torch.randn(50, 5, generator=g, dtype=torch.float64), -1)
    eps = 0.15
    lo, hi = (centre - eps).clamp_min(0), (centre + eps).clamp_max(1)
    y = centre + 0.5 * torch.randn(50, 5, generator=g, dtype=torch.float64)
    got = project_box_simplex(y, lo, hi)
    assert torch.allclose(got, bisect_projection(y, lo, hi), atol=1e-9)
    assert (got >= lo - 1e-12).all() and (got <= hi + 1e-12).all()
    assert torch.allclose(got.sum(-1), torch.ones(50, dtype=torch.float64))
    inside = centre.clone()
    assert torch.allclose(project_box_simplex(inside, lo, hi), inside)  # feasible points stay


def test_pgd_on_a_toy_loss_ends_in_box_and_simplex() -> None:
    target = [torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0, 0.0]])]

    def toward(weights):  # maximized by moving toward `target`
        return sum((w * t).sum() for w, t in zip(weights, target, strict=True))

    eps = 0.1
    torch.manual_seed(0)
    weights, attacked, clean = pgd_attack(CENTRE, toward, eps, steps=7)
    assert attacked >= clean
    for w, c in zip(weights, CENTRE, strict=True):
        assert on_simplex(w) and (w - c).abs().max() <= eps + 1e-6
    # The best in box ∩ simplex is 0.6 + 0.7 + 0.35 = 1.65 (clean: 1.35); 7 sign steps get most of it.
    assert 1.55 < float(attacked) <= 1.65 + 1e-6


def test_pgd_keeps_clean_weights_when_the_attack_loses() -> None:
    def peaked(weights):  # maximal at the centre: every perturbation lowers it
        return -sum((w - c).pow(2).sum() for w, c in zip(weights, CENTRE, strict=True))

    torch.manual_seed(0)
    weights, attacked, clean = pgd_attack(CENTRE, peaked, 0.1, steps=7)
    assert attacked < clean and all(w is c or torch.equal(w, c) for w, c in zip(weights, CENTRE, strict=True))


def test_pgd_reference_clip_projection_stays_on_simplex() -> None:
    torch.manual_seed(0)
    weights, _, _ = pgd_attack(CENTRE, lambda w: (w[0] * w[0]).sum(), 0.2, steps=3, projection="clip")
    assert all(on_simplex(w) for w in weights)


def test_sdarts_adv_attack_on_the_supernet() -> None:
    opt = make_optimizer("sdarts-adv", epochs=10, steps=7, projection="exact")  # the reference attack
    opt.on_epoch_start(9)
    eps = opt.epsilon()
    with torch.no_grad():
        clean = opt.arch_weights(opt.ctx.alphas)
    torch.manual_seed(0)
    weights = opt.perturb(clean, batch(5), eps)
    x, y = batch(5)
    opt.ctx.model.eval()
    with torch.no_grad():
        loss_clean = F.cross_entropy(opt.ctx.model(x, clean), y)
        loss_used = F.cross_entropy(opt.ctx.model(x, weights), y)
    assert loss_used >= loss_clean
    for w, c in zip(weights, clean, strict=True):
        assert on_simplex(w) and (w - c).abs().max() <= eps + 1e-6

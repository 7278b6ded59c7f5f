"""SNAS against transcriptions of SNAS-Series/SNAS-Series: `SNAS/model_search.py` (`_get_categ_mask`:
softmax((log_alpha - log(-log U)) / temp), the whole network run on the soft sample),
`SNAS/train_search.py` (arch gradient clipped to norm 10) and `SNAS/utils.py` (`Temp_Scheduler`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench import run as cli
from optimizers.snas import relaxed_sample, snas_tau
from tests.helpers import batch, make_optimizer


def release_temperature(base: float, temp_min: float, epoch: int, total: int) -> float:
    """Temp_Scheduler: one step() in __init__, then one per epoch before training (total = run's epochs)."""
    last_epoch = epoch + 1
    temp = (1 - last_epoch / total) * (base - temp_min) + temp_min
    return max(temp, temp_min)


@pytest.mark.parametrize(("epoch", "epochs"), [(0, 150), (74, 150), (149, 150), (0, 10), (9, 10)])
def test_temperature_schedule(epoch: int, epochs: int) -> None:
    assert snas_tau(1.0, 0.03, epoch, epochs) == pytest.approx(release_temperature(1.0, 0.03, epoch, epochs))
    opt = make_optimizer("snas", epochs=epochs)
    opt.on_epoch_start(epoch)
    assert opt.tau == pytest.approx(release_temperature(1.0, 0.03, epoch, epochs))


def test_last_epoch_trains_at_tau_min() -> None:
    assert snas_tau(1.0, 0.03, 9, 10) == pytest.approx(0.03)


def _alphas() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(4, 3, generator=g).requires_grad_(), torch.randn(1, 5, generator=g).requires_grad_()]


def test_sampler_values_simplex_and_gradient() -> None:
    alphas = _alphas()
    sample = relaxed_sample(alphas, 0.5, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    for a, w in zip(alphas, sample, strict=True):
        u_log = torch.empty(a.shape).exponential_(generator=g)  # -log U, U ~ U(0, 1)
        ref = F.softmax((a - u_log.log()) / 0.5, dim=-1)  # (log_alpha - log(-log U)) / temp
        torch.testing.assert_close(w, ref)
        torch.testing.assert_close(w.sum(-1), torch.ones(a.shape[0]))
        assert bool((w > 0).all() and (w < 1).all())
        assert not bool((w == w.max(-1, keepdim=True).values).all())  # soft, not one-hot
    weights = torch.arange(12.0).view(4, 3)
    (grad,) = torch.autograd.grad((sample[0] * weights).sum(), alphas[0])
    assert bool((grad != 0).all())


def test_sample_changes_with_the_rng_eval_weights_do_not() -> None:
    opt = make_optimizer("snas")
    alphas = opt.ctx.alphas
    torch.manual_seed(0)
    a = opt.arch_weights(alphas)
    b = opt.arch_weights(alphas)
    torch.manual_seed(0)
    c = opt.arch_weights(alphas)
    assert not torch.equal(a[0], b[0])
    assert all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    e1, e2 = opt.eval_weights(alphas), opt.eval_weights(alphas)
    assert all(torch.equal(x, y) for x, y in zip(e1, e2, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(opt.oneshot_weights(alphas), e1, strict=True))


def test_arch_step_gradient_equals_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """One arch step's gradient (before Adam) against the release's soft forward and norm-10 clip."""
    opt = make_optimizer("snas", epochs=10)
    opt.on_epoch_start(3)
    alphas = opt.ctx.alphas
    seen: list[torch.Tensor] = []
    monkeypatch.setattr(opt.ctx.a_optim, "step", lambda: seen.extend(a.grad.clone() for a in alphas))
    x, y = batch(0)
    torch.manual_seed(5)
    opt.arch_step((x, y))
    torch.manual_seed(5)
    weights = []
    for a in alphas:
        u = -torch.empty(a.shape).exponential_().log()  # the Gumbel noise, as drawn
        weights.append(F.softmax((a + u) / opt.tau, dim=-1))
    ref = torch.autograd.grad(F.cross_entropy(opt.ctx.model(x, weights), y), alphas)
    norm = torch.cat([g.flatten() for g in ref]).norm()
    clip = min(1.0, 10.0 / (float(norm) + 1e-6))
    for s, r in zip(seen, ref, strict=True):
        torch.testing.assert_close(s, r * clip)


def test_arch_gradient_is_clipped_at_norm_10() -> None:
    opt = make_optimizer("snas")
    opt.ctx.a_optim.step = lambda: None  # type: ignore[method-assign]
    big = [torch.full(a.shape, 100.0) for a in opt.ctx.alphas]
    opt.apply_arch_grads(big)
    norm = torch.cat([a.grad.flatten() for a in opt.ctx.alphas]).norm()
    assert float(norm) == pytest.approx(10.0, rel=1e-5)


@pytest.mark.parametrize("setting", ["tau_min=-0.1", "tau_max=0", "arch_grad_clip=-1"])
def test_bad_hyperparameters_exit_2(setting: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--optimizer", "snas", "--benchmark", "digits", "--out", str(tmp_path), "--set", setting]
    code = cli.main(argv)
    assert code == 2
    assert setting.split("=")[0] in capsys.readouterr().err

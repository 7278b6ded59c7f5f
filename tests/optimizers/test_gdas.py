"""GDAS against an independent re-implementation of NAS-Bench-1Shot1's sampled forward, and GDAS's
one-shot evaluation (the argmax cell with one-hot weights, never softmax-scaled single ops).

The re-implementation below follows the documented reference behaviour (shared/specs/nb1shot1.md and
reference_protocols.md, NB1 `optimizers/gdas`): inside the loop over cells, every cell draws its own
Gumbel samples; the op weights are a hard straight-through one-hot and only the sampled op runs, times
its weight; input and output edges use the soft Gumbel-softmax at tau. It is wired from the supernet's
modules (the same network weights) but shares no code with `Supernet.forward` or the plug-in.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analysis import landscape
from bench.runs.config import RunConfig
from bench.runs.trainer import Trainer
from bench.search.supernet import Supernet
from tests.helpers import batch, make_optimizer, record_forwards


# ---- the reference, re-implemented ------------------------------------------------------------------
def gumbel_noise(alphas: list[Tensor], num_cells: int) -> list[Tensor]:
    """Gumbel(0, 1) noise per alpha tensor and cell, drawn as torch's gumbel_softmax draws it.

    The plug-in draws one (num_cells, *shape) tensor per alpha tensor; drawing the same shapes in the
    same order from the same seed gives the reference the same samples."""
    return [-torch.empty((num_cells, *a.shape)).exponential_().log() for a in alphas]


def reference_cell_weights(alphas: list[Tensor], noise: list[Tensor], cell: int, tau: float) -> list[Tensor]:
    """One cell's weights: hard straight-through Gumbel one-hot for the ops, soft Gumbel for the edges."""
    out = []
    for k, (a, g) in enumerate(zip(alphas, noise, strict=True)):
        soft = torch.softmax((a + g[cell]) / tau, dim=-1)
        if k == 0:
            hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
            out.append(hard - soft.detach() + soft)
        else:
            out.append(soft)
    return out


def reference_forward(model: Supernet, x: Tensor, alphas: list[Tensor], noise: list[Tensor], tau: float,
                      ran: list | None = None) -> Tensor:  # fmt: skip
    names = list(model.space.alpha_shapes())
    s = model.stem(x)
    for c, cell in enumerate(model.cells):
        if c in model.downsample_before:
            s = model.downsample(s)
        w = dict(zip(names, reference_cell_weights(alphas, noise, c, tau), strict=True))
        states: list[Tensor] = []
        for i, block in enumerate(cell.blocks):
            inputs = [cell.projections[i](s), *states]
            node = i + 1
            if f"inputs_{node}" in w:
                inputs = [wj * t for wj, t in zip(w[f"inputs_{node}"][0], inputs, strict=True)]
            h = sum(inputs)
            # NB1's MixedOpGDAS: only ops whose weight is nonzero run (one, for a hard one-hot).
            outs = []
            for o, op in enumerate(block.ops):
                if abs(float(w["ops"][i, o].detach())) > 1e-10:
                    outs.append(w["ops"][i, o] * op(h))
                    if ran is not None:
                        ran.append((c, i, o))
            states.append(sum(outs))
        out_w = w["output"][0]
        weighted = [wj * t for wj, t in zip(out_w[1:], states, strict=True)]
        s = out_w[0] * cell.projections[-1](s) + torch.cat(weighted, 1)
    s = model.head_bn(model.head_conv(F.relu(s)))
    return model.classifier(s.mean(dim=(2, 3)))


def grads_or_zeros(loss: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    grads = torch.autograd.grad(loss, tensors, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, tensors, strict=True)]


@pytest.fixture
def gdas():
    opt = make_optimizer("gdas")
    with torch.no_grad():  # alphas far from uniform, so cells sample different ops
        for a in opt.ctx.alphas:
            a.copy_(torch.randn(a.shape, generator=torch.Generator().manual_seed(5)))
    opt.on_epoch_start(3)  # tau between tau_max and tau_min
    return opt


# ---- one weight step against the reference ------------------------------------------------------------
def test_sampled_forward_loss_and_gradients_match_the_reference(gdas) -> None:
    model, alphas = gdas.ctx.model, gdas.ctx.alphas
    ref_model = copy.deepcopy(model)
    x, y = batch(0, n=12)
    model.train(), ref_model.train()

    torch.manual_seed(11)
    weights = gdas.arch_weights(alphas)
    loss = F.cross_entropy(gdas.forward(x, weights), y)
    ours = grads_or_zeros(loss, [*model.parameters(), *alphas])

    torch.manual_seed(11)
    noise = gumbel_noise(alphas, model.num_cells)
    ran: list = []
    ref_loss = F.cross_entropy(reference_forward(ref_model, x, alphas, noise, gdas.tau, ran), y)
    theirs = grads_or_zeros(ref_loss, [*ref_model.parameters(), *alphas])

    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
    assert sum(int(g.abs().sum() > 0) for g in ours[-len(alphas) :]) == len(alphas)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # One op per cell and block, the per-cell samples differ (the alphas are far from uniform).
    assert len(ran) == model.num_cells * model.num_blocks
    choices = {c: tuple(o for cc, _, o in ran if cc == c) for c in range(model.num_cells)}
    assert len(set(choices.values())) > 1
    for b1, b2 in zip(model.buffers(), ref_model.buffers(), strict=True):  # BN statistics of the same ops
        torch.testing.assert_close(b1, b2, rtol=1e-5, atol=1e-7)


def test_one_search_step_matches_the_reference_step(gdas) -> None:
    """Arch step first (first order, search batch, train mode, fresh sample, arch grad clip 5, Adam),
    then the weight step on a fresh sample (grad clip 5, SGD): same alphas, weights and BN statistics."""
    ctx = gdas.ctx
    ref_model = copy.deepcopy(ctx.model)
    ref_alphas = [a.detach().clone().requires_grad_(True) for a in ctx.alphas]
    a_cfg, w_cfg = ctx.a_optim.defaults, ctx.w_optim.defaults
    ref_a_optim = torch.optim.Adam(ref_alphas, lr=a_cfg["lr"], betas=a_cfg["betas"],
                                   weight_decay=a_cfg["weight_decay"])  # fmt: skip
    ref_w_optim = torch.optim.SGD(ref_model.parameters(), lr=w_cfg["lr"], momentum=w_cfg["momentum"],
                                  weight_decay=w_cfg["weight_decay"])  # fmt: skip
    train, val = batch(1, n=12), batch(2, n=12)

    torch.manual_seed(7)
    stats = gdas.step(train, val)

    torch.manual_seed(7)
    arch_noise = gumbel_noise(ref_alphas, ref_model.num_cells)
    weight_noise = gumbel_noise(ref_alphas, ref_model.num_cells)
    ref_model.train()
    ref_a_optim.zero_grad()
    F.cross_entropy(reference_forward(ref_model, val[0], ref_alphas, arch_noise, gdas.tau), val[1]).backward()
    nn.utils.clip_grad_norm_(ref_alphas, 5.0)
    ref_a_optim.step()
    ref_w_optim.zero_grad()
    logits = reference_forward(ref_model, train[0], [a.detach() for a in ref_alphas], weight_noise, gdas.tau)
    ref_loss = F.cross_entropy(logits, train[1])
    ref_loss.backward()
    nn.utils.clip_grad_norm_(list(ref_model.parameters()), ctx.grad_clip)
    ref_w_optim.step()

    assert stats.loss == pytest.approx(ref_loss.item(), rel=1e-6)
    for a, b in zip(ctx.alphas, ref_alphas, strict=True):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-8)
    for p, q in zip(ctx.model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-7)
    for b1, b2 in zip(ctx.model.buffers(), ref_model.buffers(), strict=True):
        torch.testing.assert_close(b1, b2, rtol=1e-5, atol=1e-7)


# ---- one-shot evaluation: the argmax cell, one-hot ---------------------------------------------------
def test_oneshot_weights_are_the_argmax_cell_one_hot(gdas) -> None:
    space, alphas = gdas.ctx.space, gdas.ctx.alphas
    weights = gdas.oneshot_weights(alphas)
    expected = space.one_hot(space.argmax_architecture(alphas))
    assert all(torch.equal(w, e) for w, e in zip(weights, expected, strict=True))
    assert all(set(w.unique().tolist()) <= {0.0, 1.0} for w in weights)
    assert not any(w.requires_grad for w in weights)
    # Deterministic: no Gumbel noise in the evaluation.
    assert all(torch.equal(a, b) for a, b in zip(weights, gdas.oneshot_weights(alphas), strict=True))


def block_and_op_outputs(opt, weights: list[Tensor], chosen: tuple[int, ...]) -> tuple[dict, dict]:
    """Per (cell, block): the mixed op's output and its chosen op's raw output, in one eval forward."""
    model = opt.ctx.model
    block_out, op_out, handles = {}, {}, []
    for c, cell in enumerate(model.cells):
        for b, block in enumerate(cell.blocks):
            handles.append(block.register_forward_hook(lambda m, i, o, k=(c, b): block_out.__setitem__(k, o)))
            op = block.ops[chosen[b]]
            handles.append(op.register_forward_hook(lambda m, i, o, k=(c, b): op_out.__setitem__(k, o)))
    try:
        with torch.no_grad():
            opt.forward(batch(3)[0], weights)
    finally:
        for h in handles:
            h.remove()
    assert len(block_out) == len(op_out) == model.num_cells * model.num_blocks
    return block_out, op_out


def test_oneshot_forward_feeds_unscaled_chosen_ops(gdas) -> None:
    """Each block passes on exactly its chosen op's output (weight 1), the discrete cell's network: the
    input the supernet trained on, not the op output times softmax(alpha)."""
    alphas = gdas.ctx.alphas
    gdas.ctx.model.eval()
    chosen = gdas.ctx.space.argmax_architecture(alphas).ops
    block_out, op_out = block_and_op_outputs(gdas, gdas.oneshot_weights(alphas), chosen)
    assert all(torch.equal(out, op_out[key]) for key, out in block_out.items())
    # What the old evaluation fed (softmax weights, argmax op running) fails the same check.
    soft = [F.softmax(a.detach(), -1) for a in alphas]
    block_out, op_out = block_and_op_outputs(gdas, soft, chosen)
    assert not any(torch.allclose(out, op_out[key]) for key, out in block_out.items())


def test_trainer_evaluates_gdas_on_its_argmax_cell(tmp_path, fixture_table, toy_data) -> None:
    """Every eval-mode forward of the one-shot evaluation gets the 0/1 argmax cell of the final alphas."""
    cfg = RunConfig(optimizer="gdas", space=1, epochs=1, batch_size=16, init_channels=4, cells_per_stack=1,
                    hessian=False, device="cpu")  # fmt: skip
    trainer = Trainer(cfg, tmp_path, fixture_table, toy_data)
    calls = record_forwards(trainer.model)
    trainer.run()
    seen = [(c["weights"], c["op_choice"]) for c in calls if not c["training"]]
    assert seen
    space = trainer.space
    arch = space.argmax_architecture(trainer.alphas)
    for weights, choice in seen:
        assert all(torch.equal(w, e) for w, e in zip(weights, space.one_hot(arch), strict=True))
        assert torch.equal(torch.as_tensor(choice), torch.tensor(arch.ops))


@pytest.mark.parametrize("name", ["gdas", "rsws"])
def test_landscape_centre_is_the_plugins_oneshot_accuracy(
    name: str, tmp_path, fixture_table, toy_data
) -> None:
    """The landscape evaluates through the plug-in: at the centre it is the trainer's one-shot accuracy."""
    from bench import results
    from bench.runs.trainer import config_record

    params = {"eval_archs": 4} if name == "rsws" else {}
    cfg = RunConfig(optimizer=name, space=1, epochs=1, batch_size=16, init_channels=4, cells_per_stack=1,
                    hessian=False, device="cpu", optimizer_params=params)  # fmt: skip
    run_dir = results.run_dir(tmp_path / "results", "fixture", 1, name, "tiny", 0)
    trainer = Trainer(cfg, run_dir, fixture_table, toy_data, meta={"tag": "tiny"})
    trainer.run()
    results.write_json(run_dir / results.CONFIG_JSON, config_record(cfg, trainer, {"tag": "tiny"}))
    ls = landscape.compute(run_dir, grid=3, batches=4, data=toy_data, device="cpu")
    row = trainer.rows[-1]
    assert ls.center == pytest.approx(row["oneshot_valid_acc"])

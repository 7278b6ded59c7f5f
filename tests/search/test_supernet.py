"""The one-shot supernet: structure, gradients, GDAS / PC-DARTS paths, reference quirks, perf baseline."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.search.spaces import PRIMITIVES, SearchSpace
from bench.search.supernet import (
    BN_MOMENTUM,
    REFERENCE_BN_MOMENTUM,
    ConvBnRelu,
    MixedOp,
    Supernet,
    SupernetInputError,
    channel_shuffle,
)

C = 4  # tiny configs: 4 initial channels, 8×8 inputs, batch 2
SPACES = (1, 2, 3)


def tiny(space: int = 1, dtype: torch.dtype = torch.float32, **kw) -> Supernet:
    return Supernet(SearchSpace(space), init_channels=C, **kw).to(dtype)


def soft_weights(space: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Softmax of alphas scaled up from 1e-3 so that the mixing weights differ visibly."""
    g = torch.Generator().manual_seed(seed)
    return [(1e3 * a.detach()).to(dtype).softmax(-1) for a in SearchSpace(space).init_alphas(generator=g)]


def images(n: int = 2, size: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def count_op_calls(model: Supernet) -> tuple[dict[tuple[int, int, int], int], list]:
    calls: dict[tuple[int, int, int], int] = {}
    handles = []
    for c, cell in enumerate(model.cells):
        for b, block in enumerate(cell.blocks):
            for o, op in enumerate(block.ops):
                calls[(c, b, o)] = 0

                def hook(*_, key=(c, b, o)) -> None:
                    calls[key] += 1

                handles.append(op.register_forward_hook(hook))
    return calls, handles


# ---- an independent functional re-statement of the reference model -------------------------------
def _cbr(x: torch.Tensor, m: ConvBnRelu) -> torch.Tensor:
    y = F.conv2d(x, m.conv.weight, padding=m.conv.weight.shape[-1] // 2)
    return F.relu(F.batch_norm(y, None, None, m.bn.weight, m.bn.bias, training=True, eps=m.bn.eps))


def _mixed(block: MixedOp, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    k, c = block.partial_channels, x.shape[1]
    xa = x[:, : c // k]
    ops = [
        F.max_pool2d(xa, 3, 1, 1),
        _cbr(xa, block.ops[1]),
        _cbr(xa, block.ops[2]),
    ]
    y = sum(w[o] * ops[o] for o in range(len(PRIMITIVES)))
    return y if k == 1 else channel_shuffle(torch.cat([y, x[:, c // k :]], dim=1), k)


def naive_forward(model: Supernet, space: SearchSpace, x: torch.Tensor, weights: list[torch.Tensor]):
    """The spec's model in plain functional form: what the module (channels_last, in place) must equal."""
    named = dict(zip(space.alpha_shapes(), weights, strict=True))
    s = _cbr(x, model.stem)
    for i, cell in enumerate(model.cells):
        if i in model.downsample_before:
            s = F.max_pool2d(s, 2, 2)
        states: list[torch.Tensor] = []
        for node in range(1, cell.num_blocks + 1):
            inputs = [_cbr(s, cell.projections[node - 1]), *states]
            if f"inputs_{node}" in named:
                x_in = sum(w * t for w, t in zip(named[f"inputs_{node}"][0], inputs, strict=True))
            else:
                x_in = sum(inputs)
            states.append(_mixed(cell.blocks[node - 1], x_in, named["ops"][node - 1]))
        w_out = named["output"][0]
        proj_out = _cbr(s, cell.projections[-1])
        s = w_out[0] * proj_out + torch.cat([w * t for w, t in zip(w_out[1:], states, strict=True)], dim=1)
    s = F.conv2d(F.relu(s), model.head_conv.weight)
    s = F.batch_norm(s, None, None, training=True, eps=model.head_bn.eps)
    return model.classifier(s.mean(dim=(2, 3)))


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("k", [1, 2])
def test_matches_the_naive_model(space: int, k: int) -> None:
    torch.manual_seed(0)
    model = tiny(space, torch.float64, partial_channels=k)
    w = soft_weights(space, dtype=torch.float64)
    x = images(dtype=torch.float64)
    torch.testing.assert_close(
        model(x, w), naive_forward(model, SearchSpace(space), x, w), rtol=1e-10, atol=1e-10
    )


# ---- structure ---------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
def test_output_shape_and_cell_layout(space: int) -> None:
    model = tiny(space, num_classes=7)
    b = SearchSpace(space).num_blocks
    assert model(images(), soft_weights(space)).shape == (2, 7)
    assert model.num_cells == 9 and len(model.cells) == 9
    assert [cell.channels for cell in model.cells] == [C] * 3 + [2 * C] * 3 + [4 * C] * 3
    # Cell input channels: the stem's C for the first cell, then the previous cell's C·B.
    c_in = [cell.projections[0].conv.in_channels for cell in model.cells]
    assert c_in == [C, C * b, C * b, C * b, 2 * C * b, 2 * C * b, 2 * C * b, 4 * C * b, 4 * C * b]
    for cell in model.cells:  # one projection per choice block (to C) and one for the output edge (to C·B)
        assert [p.conv.out_channels for p in cell.projections] == [cell.channels] * b + [cell.channels * b]
    assert model.classifier.in_features == 4 * C and model.head_conv.in_channels == 4 * C * b


def test_in_channels_and_small_config() -> None:
    model = Supernet(
        SearchSpace(2), init_channels=2, num_classes=3, in_channels=1, num_stacks=2, cells_per_stack=1
    )
    assert model(torch.randn(2, 1, 8, 8), soft_weights(2)).shape == (2, 3)
    assert model.num_cells == 2 and model.downsample_before == {1}


def spatial_sizes(model: Supernet, size: int) -> list[int]:
    seen: list[int] = []
    handles = [
        c.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[-1])) for c in model.cells
    ]
    model(images(size=size), soft_weights(1))
    for h in handles:
        h.remove()
    return seen


def test_reference_quirks_pooling_and_bn_momentum() -> None:
    default, quirky = tiny(1), tiny(1, reference_quirks=True)
    assert spatial_sizes(default, 16) == [16] * 3 + [8] * 3 + [4] * 3  # NB-101: 32→16→8 at full size
    assert spatial_sizes(quirky, 16) == [16] * 3 + [9] * 3 + [5] * 3  # reference: padding 1 (32→17→9)
    assert spatial_sizes(default, 7) == [7] * 3 + [4] * 3 + [2] * 3  # TF 'same' on odd sizes
    for model, momentum in ((default, BN_MOMENTUM), (quirky, REFERENCE_BN_MOMENTUM)):
        cbrs = [m for m in model.modules() if isinstance(m, ConvBnRelu)]
        assert len(cbrs) == 1 + 9 * (4 + 1 + 2 * 4)
        assert {m.bn.momentum for m in cbrs} == {momentum}
        assert all(m.bn.affine for m in cbrs)
    assert default.head_bn.momentum == BN_MOMENTUM and quirky.head_bn.momentum == 0.1
    assert not default.head_bn.affine


def test_cpu_activations_are_channels_last() -> None:
    model = tiny(1)
    formats = []
    handles = [
        c.register_forward_pre_hook(lambda _m, a: formats.append(a[0].is_contiguous())) for c in model.cells
    ]
    model(images(size=16), soft_weights(1))
    for h in handles:
        h.remove()
    assert formats == [False] * 9  # channels_last, not NCHW-contiguous


def test_weight_parameters_are_all_parameters() -> None:
    model = tiny(3)
    params = model.weight_parameters()
    assert len(params) == len(list(model.parameters())) and all(isinstance(p, nn.Parameter) for p in params)


def test_rejects_bad_config_and_inputs() -> None:
    with pytest.raises(SupernetInputError, match="partial_channels"):
        tiny(1, partial_channels=3)
    model, w = tiny(1), soft_weights(1)
    with pytest.raises(SupernetInputError, match="mixing-weight tensors"):
        model(images(), w[:-1])
    with pytest.raises(SupernetInputError, match="shape"):
        model(images(), [w[0].T, *w[1:]])
    with pytest.raises(SupernetInputError, match="op_choice"):
        model(images(), w, op_choice=[0, 1, 2])
    with pytest.raises(SupernetInputError, match="op indices"):
        model(images(), w, op_choice=[0, 1, 2, 3])
    with pytest.raises(SupernetInputError, match="op_choice"):
        model(images(), w, op_choice=torch.zeros(4))


# ---- gradients ---------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
def test_gradients_reach_every_weight_and_mixing_weight(space: int) -> None:
    torch.manual_seed(0)
    model = tiny(space)
    alphas = [(1e3 * a).detach().requires_grad_() for a in SearchSpace(space).init_alphas()]
    weights = [a.softmax(-1) for a in alphas]
    for w in weights:
        w.retain_grad()
    loss = F.cross_entropy(model(images(), weights), torch.tensor([1, 2]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    for name, w in zip(SearchSpace(space).alpha_shapes(), weights, strict=True):
        assert (w.grad != 0).all(), name  # every mixing weight influences the loss
    for name, a in zip(SearchSpace(space).alpha_shapes(), alphas, strict=True):
        assert a.grad.abs().sum() > 0, name


def test_hessian_vector_product_matches_finite_differences() -> None:
    """Double backward works through every op (the Hessian tracker needs it), incl. the fast max-pool."""
    torch.manual_seed(0)
    space = SearchSpace(1)
    model = Supernet(space, init_channels=2, num_stacks=2, cells_per_stack=1).double()
    x, y = images(dtype=torch.float64), torch.tensor([0, 3])
    alphas = [a.detach().double().requires_grad_() for a in space.init_alphas()]
    v = [torch.randn_like(a) for a in alphas]

    def grad(al: list[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
        loss = F.cross_entropy(model(x, [a.softmax(-1) for a in al]), y)
        return list(torch.autograd.grad(loss, al, create_graph=create_graph))

    g = grad(alphas, create_graph=True)
    hvp = torch.autograd.grad(g, alphas, v)
    eps = 1e-5
    plus = grad([(a + eps * d).detach().requires_grad_() for a, d in zip(alphas, v, strict=True)])
    minus = grad([(a - eps * d).detach().requires_grad_() for a, d in zip(alphas, v, strict=True)])
    for h, gp, gm in zip(hvp, plus, minus, strict=True):
        torch.testing.assert_close(h, (gp - gm) / (2 * eps), rtol=1e-4, atol=1e-7)


def test_per_cell_weights_equal_shared_when_repeated() -> None:
    torch.manual_seed(0)
    model = tiny(2)
    w = soft_weights(2)
    per_cell = [t.expand(model.num_cells, *t.shape) for t in w]
    mixed = [per_cell[0], *w[1:]]  # any tensor may be shared or per cell
    out = model(images(), w)
    torch.testing.assert_close(model(images(), per_cell), out)
    torch.testing.assert_close(model(images(), mixed), out)
    different = [t.clone() for t in per_cell]
    different[0][3] = different[0][3].flip(-1)
    assert not torch.allclose(model(images(), different), out)


# ---- GDAS: only the chosen op runs -------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
def test_op_choice_runs_exactly_the_chosen_op(space: int) -> None:
    model = tiny(space)
    b = SearchSpace(space).num_blocks
    choice = torch.tensor([i % 3 for i in range(b)])
    calls, handles = count_op_calls(model)
    try:
        model(images(), soft_weights(space), op_choice=choice)
        assert calls == {(c, blk, o): int(o == choice[blk]) for (c, blk, o) in calls}
        for key in calls:
            calls[key] = 0
        model(images(), soft_weights(space))  # dense: every op of every block once
        assert set(calls.values()) == {1}
        for key in calls:
            calls[key] = 0
        per_cell = torch.randint(0, 3, (model.num_cells, b), generator=torch.Generator().manual_seed(0))
        model(images(), soft_weights(space), op_choice=per_cell)
        assert calls == {(c, blk, o): int(o == per_cell[c, blk]) for (c, blk, o) in calls}
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("space", SPACES)
def test_op_choice_equals_dense_path_for_one_hot_weights(space: int) -> None:
    torch.manual_seed(0)
    model = tiny(space, torch.float64)
    w = soft_weights(space, dtype=torch.float64)
    choice = torch.tensor([(i + 1) % 3 for i in range(SearchSpace(space).num_blocks)])
    w[0] = F.one_hot(choice, 3).double()
    x = images(dtype=torch.float64)
    torch.testing.assert_close(model(x, w, op_choice=choice), model(x, w), rtol=1e-12, atol=1e-12)


def test_straight_through_one_hot_passes_gradient_to_alphas() -> None:
    torch.manual_seed(0)
    model = tiny(1)
    alphas = [a.detach().requires_grad_() for a in SearchSpace(1).init_alphas()]
    hard = F.gumbel_softmax(alphas[0], tau=10.0, hard=True)
    weights = [hard, *(F.gumbel_softmax(a, tau=10.0) for a in alphas[1:])]
    loss = F.cross_entropy(model(images(), weights, op_choice=hard.detach().argmax(-1)), torch.tensor([0, 1]))
    grads = torch.autograd.grad(loss, alphas)
    assert all(g.abs().sum() > 0 for g in grads)


# ---- PC-DARTS ----------------------------------------------------------------------------------
def test_channel_shuffle_permutation() -> None:
    n, c, k = 1, 12, 4
    x = torch.arange(c, dtype=torch.float32).view(1, c, 1, 1).expand(n, c, 2, 2)
    out = channel_shuffle(x, k)
    expected = [g * (c // k) + r for r in range(c // k) for g in range(k)]  # channel g·C/K+r → r·K+g
    assert out[0, :, 0, 0].tolist() == expected


@pytest.mark.parametrize("choice", [None, 1])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_partial_channels_mixed_op(choice: int | None, fmt: torch.memory_format) -> None:
    torch.manual_seed(0)
    c, k = 8, 4
    block = MixedOp(c, BN_MOMENTUM, partial_channels=k)
    seen = []
    handles = [
        op.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[1])) for op in block.ops
    ]
    x = torch.randn(2, c, 6, 6).contiguous(memory_format=fmt)
    w = torch.tensor([0.2, 0.5, 0.3]).unbind(0)
    out = block(x, w, choice)
    for h in handles:
        h.remove()
    assert seen == ([c // k] * 3 if choice is None else [c // k])  # only 1/K of the channels go through
    assert out.shape == x.shape and out.is_contiguous(memory_format=fmt)
    ops = [op(x[:, : c // k]) for op in block.ops]
    mixed = sum(wi * o for wi, o in zip(w, ops, strict=True)) if choice is None else w[choice] * ops[choice]
    torch.testing.assert_close(out, channel_shuffle(torch.cat([mixed, x[:, c // k :]], dim=1), k))
    # The untouched channels land at r·K + g (g ≥ 1); the mixed op's at r·K.
    for g in range(1, k):
        for r in range(c // k):
            assert torch.equal(out[:, r * k + g], x[:, g * (c // k) + r])


def test_partial_channels_supernet_builds_narrow_ops() -> None:
    model = tiny(1, partial_channels=4)
    for cell in model.cells:
        for block in cell.blocks:
            assert block.ops[1].conv.in_channels == cell.channels // 4
    assert model(images(), soft_weights(1)).shape == (2, 10)


# ---- determinism and devices -------------------------------------------------------------------
def test_deterministic_under_a_fixed_seed() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(123)
        model = tiny(3)
        alphas = [a.requires_grad_() for a in (t.detach() for t in SearchSpace(3).init_alphas())]
        x = torch.randn(2, 3, 8, 8)
        out = model(x, [a.softmax(-1) for a in alphas])
        out.sum().backward()
        results.append((out.detach(), [a.grad for a in alphas], model.stem.conv.weight.grad))
    (o1, g1, s1), (o2, g2, s2) = results
    assert torch.equal(o1, o2) and torch.equal(s1, s2)
    assert all(torch.equal(a, b) for a, b in zip(g1, g2, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu() -> None:
    torch.manual_seed(0)
    model = tiny(2)
    w, x = soft_weights(2), images()
    cpu = model(x, w)
    gpu_model = model.cuda()
    # full float32 as the trainer runs: cuDNN's default TF32 alone is ~1e-3 off the CPU
    no_tf32 = torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False)
    with no_tf32:
        out = gpu_model(x.cuda(), [t.cuda() for t in w], op_choice=torch.tensor([0, 1, 2, 1], device="cuda"))
        out.sum().backward()
        assert out.device.type == "cuda"
        dense = gpu_model(x.cuda(), [t.cuda() for t in w])
    torch.testing.assert_close(dense.cpu(), cpu, rtol=1e-3, atol=1e-4)


# ---- the benchmark's same-machine baseline -----------------------------------------------------
def test_perf_baseline_is_the_reference_function() -> None:
    """NaiveSupernet (reference style, timed by `bench.perf supernet --baseline`) = reference_quirks."""
    import re

    from bench.perf.supernet import NaiveSupernet

    torch.manual_seed(0)
    ours = tiny(2, torch.float64, reference_quirks=True)
    naive = NaiveSupernet(SearchSpace(2), c=C).double()
    renames = [
        (r"^stem\.conv\.", "stem.0."),
        (r"^stem\.bn\.", "stem.1."),
        (r"\.projections\.(\d+)\.conv\.", r".projections.\1.0."),
        (r"\.projections\.(\d+)\.bn\.", r".projections.\1.1."),
        (r"\.blocks\.(\d+)\.ops\.(\d+)\.conv\.", r".ops.\1.\2.0."),
        (r"\.blocks\.(\d+)\.ops\.(\d+)\.bn\.", r".ops.\1.\2.1."),
        (r"^head_conv\.", "head.1."),
        (r"^head_bn\.", "head.2."),
    ]
    state = {}
    for name, value in ours.state_dict().items():
        for pattern, repl in renames:
            name = re.sub(pattern, repl, name)
        state[name] = value
    naive.load_state_dict(state, strict=True)
    w, x = soft_weights(2, dtype=torch.float64), images(dtype=torch.float64)
    torch.testing.assert_close(naive(x, w), ours(x, w), rtol=1e-10, atol=1e-10)


def test_perf_cli_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.perf.supernet import main

    assert main(["--spaces", "4"]) == 2
    assert main(["--baseline", "--variant", "gdas"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--spaces" in err[0] and "--baseline" in err[1]


def test_perf_judges_every_ratio_against_both_references() -> None:
    from bench.perf.supernet import REFERENCE, Measurement, judge

    def m(impl: str, weight: float, arch: float, rss: float, space: int = 1) -> Measurement:
        return Measurement(space, 32, "darts", impl, "cpu", 2, weight, arch, weight, arch, rss, 0.5, None)

    published = REFERENCE[(1, 32)]
    fast = m("ours", published[0] / 2, published[1] / 2, published[2] / 2)
    lines, ok = judge([fast], {(1, 32): m("naive", 1.0, 1.0, 1.0)})
    assert ok and len(lines) == 2 and all(line.endswith("PASS") for line in lines)
    bigger = m("ours", published[0] / 2, published[1] / 2, published[2] * 1.01)  # 1 % more memory
    lines, ok = judge([bigger], {})
    assert not ok and lines[0].endswith("FAIL") and "peak RSS x1.01" in lines[0]
    assert judge([m("ours", 9.0, 9.0, 9.0, space=2)], {}) == ([], True)  # nothing to judge against


def test_eval_mode_folds_bn_into_the_conv_exactly() -> None:
    """The eval fast path (BN folded into the conv) equals conv -> eval BN -> ReLU, values and gradients."""
    torch.manual_seed(0)
    m = ConvBnRelu(3, 5, 3, bn_momentum=0.1).double()
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.normal_()
        m.bn.bias.normal_()
    m.eval()
    x = images(dtype=torch.float64).requires_grad_(True)
    unfolded = F.relu(m.bn(m.conv(x)))
    folded = m(x)
    torch.testing.assert_close(folded, unfolded, rtol=1e-12, atol=1e-12)
    g_unfolded = torch.autograd.grad(unfolded.square().sum(), [x, m.bn.weight, m.conv.weight])
    g_folded = torch.autograd.grad(folded.square().sum(), [x, m.bn.weight, m.conv.weight])
    for a, b in zip(g_folded, g_unfolded, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("space", SPACES)
def test_eval_forward_matches_unfolded_model(space: int) -> None:
    torch.manual_seed(0)
    model = tiny(space, torch.float64)
    w = soft_weights(space, dtype=torch.float64)
    x = images(dtype=torch.float64)
    model(x, w)  # one train-mode forward: running statistics move away from their init
    model.eval()
    folded = model(x, w)
    for m in model.modules():
        if isinstance(m, ConvBnRelu):
            m.forward = lambda t, m=m: F.relu(m.bn(m.conv(t)))  # the plain eval path
    torch.testing.assert_close(folded, model(x, w), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_inference_max_pool_equals_aten_and_keeps_the_format(fmt: torch.memory_format) -> None:
    from bench.search.supernet import MaxPool3x3

    x = F.relu(torch.randn(2, 5, 7, 6)).contiguous(memory_format=fmt)  # ReLU: many tied zeros
    x[0, 0, 0, 0] = float("nan")
    pool = MaxPool3x3()
    with torch.no_grad():
        fast = pool(x)
    expected = F.max_pool2d(x, 3, 1, 1)
    torch.testing.assert_close(fast, expected, rtol=0, atol=0, equal_nan=True)
    assert fast.is_contiguous(memory_format=fmt)
    leaf = x.detach().requires_grad_(True)  # with autograd: ATen's kernel and its tie-breaking backward
    pool(leaf).sum().backward()
    ref = x.detach().requires_grad_(True)
    F.max_pool2d(ref, 3, 1, 1).sum().backward()
    torch.testing.assert_close(leaf.grad, ref.grad, equal_nan=True)

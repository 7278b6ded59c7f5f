"""Dominant Hessian eigenvalue: Lanczos against exact Hessians and known spectra."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from bench.search.hessian import (
    HessianArgumentError,
    StagedLoss,
    _ReverseHVP,
    _SegmentedHVP,
    dominant_eigenvalue,
    dominant_eigenvalue_info,
    hessian_matrix,
    lanczos_top,
    measurement_mode,
    supernet_eigenvalue,
    supernet_eigenvalue_info,
    supernet_loss_fn,
)

# torch jit-scripts its forward-AD decompositions on first use and warns that jit is deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

RTOL = 1e-4
# Several tensors of different shapes, like the arch parameters (ops (B,3), output (1,B+1), inputs).
SHAPES = [(3, 3), (1, 4), (1, 2), (5,)]
N = sum(int(np.prod(s)) for s in SHAPES)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def split_like(x: torch.Tensor, shapes=SHAPES) -> list[torch.Tensor]:
    out, i = [], 0
    for s in shapes:
        k = int(np.prod(s))
        out.append(x[i : i + k].reshape(s))
        i += k
    return out


def quadratic(eigs: np.ndarray, seed: int = 0) -> tuple[callable, np.ndarray]:
    """0.5·xᵀAx with A = Q diag(eigs) Qᵀ over the concatenation of tensors shaped SHAPES."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigs), len(eigs))))
    a = q @ np.diag(eigs) @ q.T
    at = torch.from_numpy(a)

    def loss(alphas: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([t.reshape(-1) for t in alphas])
        return 0.5 * x @ at.to(x) @ x

    return loss, a


@pytest.fixture
def point() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]


@pytest.mark.parametrize("hvp", ["reverse", "forward"])
@pytest.mark.parametrize(
    "eigs, expected",
    [
        (np.linspace(-1.0, 4.0, N), 4.0),
        # Largest magnitude is negative: the answer is the most positive eigenvalue, 2.
        (np.concatenate([[-10.0, -7.0], np.linspace(-1.0, 2.0, N - 2)]), 2.0),
        # Negative definite: still the largest algebraic value.
        (-np.linspace(1.0, 9.0, N), -1.0),
    ],
    ids=["spread", "negative-dominant", "negative-definite"],
)
def test_quadratic_known_spectrum(point, eigs, expected, hvp) -> None:
    loss, _ = quadratic(eigs)
    info = dominant_eigenvalue_info(loss, point, hvp=hvp)
    assert info.converged and info.dim == N
    assert rel(info.eigenvalue, expected) <= RTOL
    assert rel(dominant_eigenvalue(loss, point, method="exact"), expected) <= 1e-10


def test_repeated_eigenvalues_exhaust_krylov_space(point) -> None:
    # Three distinct eigenvalues: the Krylov space has dimension 3, so Lanczos is exact after 3 HVPs.
    eigs = np.array([5.0] * 6 + [1.0] * 10 + [-2.0] * (N - 16))
    loss, _ = quadratic(eigs, seed=1)
    info = dominant_eigenvalue_info(loss, point)
    assert info.converged and info.num_hvps <= 3
    assert rel(info.eigenvalue, 5.0) <= 1e-10


def test_separated_top_eigenvalue_needs_few_hvps(point) -> None:
    eigs = np.concatenate([[30.0], np.random.default_rng(2).uniform(-1, 1, N - 1)])
    loss, _ = quadratic(eigs, seed=2)
    info = dominant_eigenvalue_info(loss, point)
    assert info.converged and info.num_hvps < N // 2
    assert rel(info.eigenvalue, 30.0) <= RTOL


def test_hessian_matrix_matches_known_matrix(point) -> None:
    loss, a = quadratic(np.linspace(-3, 3, N))
    np.testing.assert_allclose(hessian_matrix(loss, point), a, atol=1e-12)


def mlp_loss(seed: int = 0, dtype=torch.float64):
    """A non-quadratic, non-convex smooth function of the alphas (tiny MLP + log-sum-exp)."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(16, N, generator=g, dtype=dtype)
    w2 = torch.randn(5, 16, generator=g, dtype=dtype)

    def loss(alphas: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat([t.reshape(-1) for t in alphas])
        h = torch.tanh(w1 @ x)
        sm = [t.softmax(-1) for t in alphas[:3]]
        return torch.logsumexp(w2 @ h, 0) + sum((s * s).sum() for s in sm) + 0.01 * (x**4).sum()

    return loss


@pytest.mark.parametrize("hvp", ["reverse", "forward"])
def test_lanczos_matches_exact_on_nonquadratic(point, hvp) -> None:
    loss = mlp_loss()
    exact_h = torch.autograd.functional.hessian(
        lambda x: loss(split_like(x)), torch.cat([p.reshape(-1) for p in point])
    )
    truth = float(np.linalg.eigvalsh(exact_h.numpy())[-1])
    np.testing.assert_allclose(hessian_matrix(loss, point), exact_h.numpy(), rtol=1e-10, atol=1e-12)
    assert rel(dominant_eigenvalue(loss, point, method="exact"), truth) <= 1e-10
    assert rel(dominant_eigenvalue(loss, point, hvp=hvp), truth) <= RTOL


def test_float32_and_deterministic() -> None:
    loss = mlp_loss(dtype=torch.float32)
    g = torch.Generator().manual_seed(5)
    alphas = [torch.randn(s, generator=g) for s in SHAPES]
    first = dominant_eigenvalue_info(loss, alphas)
    assert first == dominant_eigenvalue_info(loss, alphas)  # fixed start vector: bitwise the same
    assert rel(first.eigenvalue, dominant_eigenvalue(loss, alphas, method="exact")) <= RTOL


def test_alphas_untouched(point) -> None:
    leaves = [p.clone().requires_grad_(True) for p in point]
    leaves[0].grad = torch.ones_like(leaves[0])
    before = [p.detach().clone() for p in leaves]
    dominant_eigenvalue(mlp_loss(), leaves)
    dominant_eigenvalue(mlp_loss(), leaves, hvp="forward")
    assert torch.equal(leaves[0].grad, torch.ones_like(leaves[0])) and leaves[1].grad is None
    assert all(torch.equal(a, b) for a, b in zip(leaves, before, strict=True))


def test_max_iter_caps_work_and_warns(point, caplog) -> None:
    loss, _ = quadratic(np.linspace(0.0, 1.0, N))  # evenly spread: slow convergence
    with caplog.at_level(logging.WARNING, logger="bench.search.hessian"):
        info = dominant_eigenvalue_info(loss, point, max_iter=2)
    assert info.num_hvps == 2 and not info.converged
    assert "Lanczos stopped" in caplog.text


def test_lanczos_top_on_matrix() -> None:
    a = np.diag([3.0, 1.0, -4.0])
    val, k, converged, _, _ = lanczos_top(lambda v: a @ v, 3)
    assert converged and k <= 3 and abs(val - 3.0) < 1e-12
    assert lanczos_top(lambda v: 0 * v, 4)[:3] == (0.0, 1, True)


def _random_spectrum(n: int = 30, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = np.concatenate([[1.0], np.linspace(-3.0, 0.9, n - 1)])  # top is small next to the bottom
    return q @ np.diag(eig) @ q.T, q[:, 0]


def test_lanczos_returns_the_ritz_vector_and_warm_start_saves_products() -> None:
    a, top = _random_spectrum()
    cold = lanczos_top(lambda v: a @ v, 30, rtol=1e-6)
    assert abs(cold[0] - 1.0) < 1e-5 and abs(abs(cold[4] @ top) - 1.0) < 1e-4
    nearby = top + 0.05 * np.random.default_rng(2).standard_normal(30) / np.sqrt(30)
    warm = lanczos_top(lambda v: a @ v, 30, rtol=1e-6, start=nearby)
    assert abs(warm[0] - 1.0) < 1e-5 and warm[1] < cold[1]


def test_warm_start_orthogonal_to_the_top_still_finds_it() -> None:
    a, top = _random_spectrum()
    wrong = np.linalg.qr(np.column_stack([top, np.ones(30)]))[0][:, 1]  # orthogonal to the top vector
    val, _, converged, _, _ = lanczos_top(lambda v: a @ v, 30, rtol=1e-8, start=wrong)
    assert converged and abs(val - 1.0) < 1e-6
    for bad in (np.zeros(30), np.full(30, np.nan), np.ones(7)):  # unusable starts fall back to cold
        assert lanczos_top(lambda v: a @ v, 30, start=bad)[:2] == lanczos_top(lambda v: a @ v, 30)[:2]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "power"}, "unknown method"),
        ({"hvp": "sideways"}, "unknown hvp mode"),
        ({"rtol": 0.0}, "rtol must be positive"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_bad_arguments(point, kwargs, match) -> None:
    with pytest.raises(HessianArgumentError, match=match):
        dominant_eigenvalue(mlp_loss(), point, **kwargs)


class NoJvp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_forward_mode_needs_jvp(point) -> None:
    def loss(al):
        return sum(NoJvp.apply(a).sum() for a in al)

    assert rel(dominant_eigenvalue(loss, point), 2.0) <= RTOL  # reverse mode: fine
    with pytest.raises(HessianArgumentError, match="use hvp='reverse'"):
        dominant_eigenvalue(loss, point, hvp="forward")


def test_bad_loss_and_alphas(point) -> None:
    with pytest.raises(HessianArgumentError, match="scalar"):
        dominant_eigenvalue(lambda al: al[0] * 2, point)
    with pytest.raises(HessianArgumentError, match="non-empty"):
        dominant_eigenvalue(mlp_loss(), [])
    with pytest.raises(HessianArgumentError, match="floating-point"):
        dominant_eigenvalue(mlp_loss(), [torch.zeros(3, dtype=torch.long)])


# ---- a tiny stand-in for the supernet: model(x, weights), BatchNorm, shared mixing weights ----------
TINY_SHAPES = [(2, 3), (1, 3), (1, 2)]  # ops of 2 blocks, output (input + 2 blocks), inputs of block 2


class TinySupernet(nn.Module):
    """Stand-in with the supernet's call signature and its BN-in-every-op structure (test fixture)."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    nn.MaxPool2d(3, 1, 1),
                    nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()),
                    nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()),
                ]
            )
            for _ in range(2)
        )
        self.head = nn.Linear(c, 3)

    def forward(self, x: torch.Tensor, weights: list[torch.Tensor]) -> torch.Tensor:
        ops, out, inputs = weights
        s0 = self.stem(x)
        n1 = sum(ops[0, j] * op(s0) for j, op in enumerate(self.blocks[0]))
        h = inputs[0, 0] * s0 + inputs[0, 1] * n1
        n2 = sum(ops[1, j] * op(h) for j, op in enumerate(self.blocks[1]))
        y = out[0, 0] * s0 + out[0, 1] * n1 + out[0, 2] * n2
        return self.head(y.mean((2, 3)))


def softmax_rows(alphas):
    return [a.softmax(-1) for a in alphas]


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    model = TinySupernet()
    g = torch.Generator().manual_seed(1)
    alphas = [(0.5 * torch.randn(s, generator=g)).requires_grad_(True) for s in TINY_SHAPES]
    batch = (torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g))
    return model, alphas, batch


def test_supernet_eigenvalue_matches_exact(tiny) -> None:
    model, alphas, batch = tiny
    exact = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, method="exact")
    info = supernet_eigenvalue_info(model, alphas, softmax_rows, batch, 1e-3)
    assert info.converged and info.dim == 11
    assert rel(info.eigenvalue, exact) <= RTOL
    assert rel(supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, hvp="forward"), exact) <= RTOL


def test_supernet_eigenvalue_definition(tiny) -> None:
    """Hessian of CE(model(x, softmax(α)), y) + (wd/2)‖α‖² in train-mode BN, written out by hand."""
    model, alphas, batch = tiny
    wd = 0.3

    def loss(al):
        return nn.functional.cross_entropy(model(batch[0], softmax_rows(al)), batch[1]) + 0.5 * wd * sum(
            (a * a).sum() for a in al
        )

    model.train()
    expected = float(np.linalg.eigvals(hessian_matrix(loss, alphas)).real.max())
    model.eval()  # supernet_eigenvalue must still use batch statistics
    got = supernet_eigenvalue(model, alphas, softmax_rows, batch, wd, method="exact")
    assert rel(got, expected) <= 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_supernet_eigenvalue_leaves_model_untouched(tiny, training) -> None:
    model, alphas, batch = tiny
    model.train(training)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    model.head.bias.requires_grad_(False)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    for method in ("lanczos", "exact"):
        supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, method=method)
    for k, v in model.named_buffers():
        assert torch.equal(v, buffers[k]), k
    for k, p in model.named_parameters():
        assert torch.equal(p, params[k]) and torch.equal(p.grad, torch.full_like(p, 0.5)), k
        assert p.requires_grad == (k != "head.bias"), k
    assert all(m.training == training for m in model.modules())
    assert all(a.grad is None for a in alphas)


def test_measurement_mode_freezes_weights_and_restores_them_on_error(tiny) -> None:
    model, _, _ = tiny
    model.head.bias.requires_grad_(False)
    with pytest.raises(KeyError), measurement_mode(model):
        assert not any(p.requires_grad for p in model.parameters())  # the graph keeps no weight paths
        raise KeyError("fails mid-measurement")
    assert all(p.requires_grad == (k != "head.bias") for k, p in model.named_parameters())


def test_real_supernet_small() -> None:
    from bench.search.spaces import SearchSpace
    from bench.search.supernet import Supernet

    space = SearchSpace(1)
    torch.manual_seed(0)
    model = Supernet(space, init_channels=2, cells_per_stack=1)
    alphas = space.init_alphas(torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g))
    exact = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, method="exact")
    info = supernet_eigenvalue_info(model, alphas, softmax_rows, batch, 1e-3)
    assert info.dim == space.num_alphas == 24
    assert info.converged and rel(info.eigenvalue, exact) <= RTOL


def _small_supernet(space_number: int, **kwargs):
    from bench.search.spaces import SearchSpace
    from bench.search.supernet import Supernet

    space = SearchSpace(space_number)
    torch.manual_seed(0)
    model = Supernet(space, init_channels=4, cells_per_stack=1, **kwargs).double()
    alphas = [a.double() for a in space.init_alphas(torch.Generator().manual_seed(0))]
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(6, 3, 8, 8, generator=g).double(), torch.randint(0, 10, (6,), generator=g))
    return model, alphas, batch


def test_supernet_stages_compose_to_forward() -> None:
    model, alphas, (x, _) = _small_supernet(2)
    s = x
    for stage in model.stages(softmax_rows):
        s = stage(s, alphas)
    assert torch.equal(s, model(x, softmax_rows(alphas)))


@pytest.mark.parametrize(("space", "kwargs"), [(1, {}), (2, {}), (3, {}), (3, {"partial_channels": 2})])
def test_segmented_hvp_equals_reverse(space, kwargs) -> None:
    """Stage-by-stage second-order adjoints give the one-graph product to rounding (float64)."""
    model, alphas, batch = _small_supernet(space, **kwargs)
    loss_fn = supernet_loss_fn(model, softmax_rows, batch, 1e-3)
    assert isinstance(loss_fn, StagedLoss)
    rng = np.random.default_rng(0)
    with measurement_mode(model):
        reverse, segmented = _ReverseHVP(loss_fn, alphas), _SegmentedHVP(loss_fn, alphas)
        for _ in range(2):
            v = rng.standard_normal(sum(a.numel() for a in alphas))
            expected = reverse.matvec(v)
            np.testing.assert_allclose(
                segmented.matvec(v), expected, rtol=0, atol=1e-12 * np.abs(expected).max()
            )
    info = supernet_eigenvalue_info(model, alphas, softmax_rows, batch, 1e-3, hvp="segmented")
    assert rel(info.eigenvalue, supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3)) <= 1e-10


def test_segmented_needs_stages(tiny) -> None:
    model, alphas, batch = tiny  # a plain module without stages()
    with pytest.raises(HessianArgumentError, match="segmented.*StagedLoss"):
        supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, hvp="segmented")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda(tiny, point) -> None:
    loss, _ = quadratic(np.concatenate([[-10.0], np.linspace(-1.0, 2.0, N - 1)]))
    assert rel(dominant_eigenvalue(loss, [p.cuda() for p in point]), 2.0) <= RTOL
    model, alphas, batch = tiny
    cpu = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, method="exact")
    model.cuda()
    on_gpu = supernet_eigenvalue(model, [a.detach().cuda() for a in alphas], softmax_rows, batch, 1e-3)
    assert rel(on_gpu, cpu) <= 1e-3  # different kernels: float32 rounding differs
    model, alphas, batch = _small_supernet(3)
    expected = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3)
    model.cuda()
    gpu_alphas, gpu_batch = [a.cuda() for a in alphas], tuple(t.cuda() for t in batch)
    segmented = supernet_eigenvalue(model, gpu_alphas, softmax_rows, gpu_batch, 1e-3, hvp="segmented")
    assert rel(segmented, expected) <= 1e-8  # float64


# ---- the benchmark's command line ----------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, match",
    [
        (["--spaces", "4"], "--spaces"),
        (["--methods", "reference,power"], "--methods"),
        (["--batch", "0"], "--batch"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_perf_cli_bad_arguments(argv, match, capsys) -> None:
    from bench.perf import hessian as perf

    assert perf.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_perf_smoke(capsys) -> None:
    """The whole benchmark at toy size (two fresh interpreters): both methods agree."""
    from bench.perf import hessian as perf

    argv = ["--spaces", "1", "--batch", "2", "--init-channels", "2", "--device", "cpu"]
    assert perf.main(argv) == 0
    out = capsys.readouterr().out
    assert "space 1 lanczos:" in out and "rel diff" in out and "FAILED" not in out


def test_supernet_eigenvalue_float64_copy(tiny) -> None:
    model, alphas, batch = tiny
    state = {k: v.clone() for k, v in model.state_dict().items()}
    f32 = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3)
    f64 = supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, dtype=torch.float64)
    assert rel(f64, f32) <= 1e-3  # same quantity, less rounding
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with pytest.raises(HessianArgumentError, match="floating-point dtype"):
        supernet_eigenvalue(model, alphas, softmax_rows, batch, 1e-3, dtype=torch.int32)

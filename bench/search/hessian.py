"""Dominant Hessian eigenvalue of a loss w.r.t. the architecture parameters (the alphas).

RobustDARTS, SDARTS and MS-DARTS track the *largest algebraic* (most positive) eigenvalue of
∇²_α L_val, not the one of largest magnitude: a sharp positive-curvature direction is what signals a
collapse towards skip-like cells, while negative curvature is not. `dominant_eigenvalue` therefore
returns max λ, which may be smaller in magnitude than the most negative eigenvalue.

The matrix is tiny (24-35 dims) but every Hessian-vector product (HVP) is a double backward pass through
the whole supernet. The reference builds all n rows (n HVPs) and calls `numpy.linalg.eigvals`; Lanczos
with full reorthogonalization needs far fewer HVPs for the top eigenvalue and is exact after n steps.

How the HVPs are computed was picked by measurement (space-1 supernet, batch 32, one CPU thread, CPU
seconds): building the gradient graph once (`create_graph`) and reusing it costs 2.2 s once plus 2.8 s
per HVP at 2.2 GB peak above the interpreter; forward-over-reverse (dual numbers through the forward, one
plain backward, nothing retained) costs 6.3 s per HVP at 2.3 GB, because every saved activation carries a
tangent; `torch.func.jvp(grad(f))` was slower still. Reverse-over-forward fails on forward-AD formulas
that run in place (softmax, log-softmax), and forward mode does not run at all through custom autograd
Functions without a jvp (the supernet's CPU max-pool is one). So `hvp="reverse"` is the default;
`hvp="forward"` stays for comparison and for loss functions whose graph cannot be retained. Either way
the peak memory is about that of the reference (the graph of a gradient that will be differentiated again
is the cost; frozen weights, see `measurement_mode`, take 0.5-3 % off it), so Lanczos alone saves time,
not memory. `hvp="segmented"` saves the memory too, for models that come apart into a chain of stages
(`StagedLoss`, `Supernet.stages`): it keeps only the stage boundaries and rebuilds one stage's
double-backward graph at a time. Batch 96, 2 threads: 0.34-0.37x the reference's peak RSS in spaces 1-3,
for ~1.4x the default's time.

How many HVPs Lanczos needs depends on the spectrum, measured on supernets at initialization: 4-6 of
24-26 (spaces 1-2, batch 32), but 15 of 24 (space 1, batch 96) and 18 of 35 (space 3, batch 32),
where the top eigenvalue is small next to the negative end of the spectrum (λmax 0.013 vs λmin −0.64);
Krylov methods converge on the top eigenvalue at a rate set by its gap relative to the spectrum's width.

Float32 accuracy: in those cases the double backward through train-mode BatchNorm loses digits to
cancellation. Space 1, batch 96: float64 gives λmax = 0.0132568; float32 gave 0.013334 with two threads
and 0.013570 with one (different reduction order), and a 1-ulp nudge of the input moved it by 0.12%.
Lanczos and the row-by-row matrix agree to ~1e-5 when they run the same kernels on the same threads.
`supernet_eigenvalue(..., dtype=torch.float64)` gives the accurate value at twice the memory.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import HarnessError

log = logging.getLogger(__name__)

LossFn = Callable[[list[Tensor]], Tensor]
METHODS: tuple[str, ...] = ("lanczos", "exact")
HVP_MODES: tuple[str, ...] = ("reverse", "forward", "segmented")
START_SEED = 0  # the Lanczos start vector: fixed, so every run and device agrees
START_MIX = 0.1  # weight of that random vector in a warm start


class HessianArgumentError(HarnessError, ValueError):
    """An argument that the eigenvalue computation cannot use."""


@dataclass(frozen=True)
class EigenInfo:
    """The eigenvalue with what it cost and how sure it is."""

    eigenvalue: float  # largest algebraic eigenvalue
    num_hvps: int  # Hessian-vector products, or Hessian rows for method="exact" (one double backward each)
    converged: bool  # error estimate within rtol, Krylov space exhausted, or exact
    error_estimate: float  # estimated |eigenvalue - true|; 0 for the exact matrix
    dim: int  # number of architecture parameters
    method: str
    # Unit Ritz vector of the eigenvalue (Lanczos only): a warm start for the next measurement.
    vector: np.ndarray | None = field(default=None, compare=False)


# ---- public API ----------------------------------------------------------------------------------
def dominant_eigenvalue(
    loss_fn: LossFn,
    alphas: Sequence[Tensor],
    *,
    method: str = "lanczos",
    rtol: float = 1e-4,
    max_iter: int | None = None,
    hvp: str = "reverse",
) -> float:
    """Largest algebraic eigenvalue of the Hessian of `loss_fn` w.r.t. all `alphas` concatenated.

    `loss_fn(alphas) -> scalar tensor` is called with fresh leaf copies of `alphas` (once for
    hvp="reverse" and method="exact", once per HVP for hvp="forward"); their `.grad` is never touched.
    Runs on whatever device the tensors are on.
    """
    return dominant_eigenvalue_info(
        loss_fn, alphas, method=method, rtol=rtol, max_iter=max_iter, hvp=hvp
    ).eigenvalue


def dominant_eigenvalue_info(
    loss_fn: LossFn,
    alphas: Sequence[Tensor],
    *,
    method: str = "lanczos",
    rtol: float = 1e-4,
    max_iter: int | None = None,
    hvp: str = "reverse",
    start: np.ndarray | None = None,
) -> EigenInfo:
    """`dominant_eigenvalue` with diagnostics (HVP count, convergence, error estimate, Ritz vector).

    `start`: a Lanczos start direction, typically the `vector` of the previous epoch's measurement;
    along a search the top eigenvector moves slowly, so a warm start needs fewer HVPs for the same rtol.
    """
    alphas = _check_alphas(alphas)
    n = sum(a.numel() for a in alphas)
    if method not in METHODS:
        raise HessianArgumentError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "exact":
        h = hessian_matrix(loss_fn, alphas)
        # As the reference: eigvals of the matrix as computed (asymmetric only by rounding).
        eig = float(np.max(np.linalg.eigvals(h).real))
        return EigenInfo(eig, n, True, 0.0, n, method)
    if hvp not in HVP_MODES:
        raise HessianArgumentError(f"unknown hvp mode {hvp!r}; choose one of {', '.join(HVP_MODES)}")
    if not rtol > 0:
        raise HessianArgumentError(f"rtol must be positive, got {rtol}; use e.g. 1e-4")
    if max_iter is not None and max_iter < 1:
        raise HessianArgumentError(f"max_iter must be at least 1, got {max_iter}; or pass None for n")
    steps = n if max_iter is None else min(max_iter, n)
    op = _HVPS[hvp](loss_fn, alphas)
    try:
        result = lanczos_top(op.matvec, n, rtol=rtol, max_iter=steps, hvp_dtype=alphas[0].dtype, start=start)
    finally:
        op.close()  # drop the retained graph before returning, not when the caller's frame dies
    eig, k, converged, err, vector = result
    if not converged:
        log.warning("Lanczos stopped after %d of %d steps at error estimate %.3g (rtol %g)", k, n, err, rtol)
    return EigenInfo(eig, k, converged, err, n, method, vector)


def hessian_matrix(loss_fn: LossFn, alphas: Sequence[Tensor]) -> np.ndarray:
    """The full n×n Hessian (float64), row by row like the reference: one gradient graph, n backwards."""
    alphas = _check_alphas(alphas)
    leaves = _leaves(alphas)
    grads = _grads_with_graph(loss_fn, leaves)
    flat = torch.cat([g.reshape(-1) for g in grads])
    rows = []
    for i in range(flat.numel()):
        if flat[i].requires_grad:
            row = torch.autograd.grad(flat[i], leaves, retain_graph=True, allow_unused=True)
            rows.append(_flatten(_zeros_for_none(row, leaves)))
        else:  # that gradient entry does not depend on the alphas at all
            rows.append(np.zeros(flat.numel()))
    return np.stack(rows)


Stage = Callable[[Tensor, Sequence[Tensor]], Tensor]


@dataclass
class StagedLoss:
    """A loss α ↦ L(α) that can also be taken apart as a chain L = s_K ∘ … ∘ s_0 applied to `x0`, each
    stage mapping (activation, α) to the next activation and the last one to the scalar loss.

    Calling it evaluates `loss` (the plain, unstaged computation); hvp="segmented" uses the stages.
    """

    loss: LossFn
    x0: Tensor
    stages: list[Stage]

    def __call__(self, alphas: list[Tensor]) -> Tensor:
        return self.loss(alphas)


def supernet_loss_fn(
    model: nn.Module,
    mixing_fn: Callable[[Sequence[Tensor]], Sequence[Tensor]],
    batch: tuple[Tensor, Tensor],
    arch_weight_decay: float,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    forward: Callable[[Tensor, Sequence[Tensor]], Tensor] | None = None,
) -> LossFn:
    """α ↦ L_val(w, mixing_fn(α)) + (arch_weight_decay/2)·‖α‖², the RobustDARTS objective.

    `forward(x, weights)` runs the network (default: `model(x, weights)`; an optimizer's own forward, e.g.
    GDAS' sampled ops). A `StagedLoss` when the model can be taken apart into stages (`Supernet.stages`)
    and runs with its plain forward."""
    x, y = batch
    crit = F.cross_entropy if criterion is None else criterion
    run = model if forward is None else forward

    def penalty(alphas: Sequence[Tensor]) -> Tensor:
        return 0.5 * arch_weight_decay * sum((a * a).sum() for a in alphas)

    def loss(alphas: list[Tensor]) -> Tensor:
        return crit(run(x, list(mixing_fn(alphas))), y) + penalty(alphas)

    if forward is not None or not callable(getattr(model, "stages", None)):
        return loss
    *body, head = model.stages(mixing_fn)

    def head_loss(s: Tensor, alphas: Sequence[Tensor]) -> Tensor:
        return crit(head(s, alphas), y) + penalty(alphas)

    return StagedLoss(loss, x, [*body, head_loss])


def supernet_eigenvalue(
    model: nn.Module,
    alphas: Sequence[Tensor],
    mixing_fn: Callable[[Sequence[Tensor]], Sequence[Tensor]],
    batch: tuple[Tensor, Tensor],
    arch_weight_decay: float,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    **kwargs,
) -> float:
    """Max eigenvalue of ∇²_α [L_val + (wd/2)‖α‖²] on `batch`, BN in train mode (as the reference).

    Raw (pre-softmax) alphas; `mixing_fn(alphas)` gives the mixing weights for `model(x, weights)`.
    The model comes back as it was: BN running statistics, other buffers, train/eval mode,
    requires_grad flags and every `.grad` are untouched. Network weights are constants here.
    `kwargs` go to `supernet_eigenvalue_info` (dtype) and `dominant_eigenvalue_info` (method, rtol,
    max_iter, hvp).
    """
    return supernet_eigenvalue_info(
        model, alphas, mixing_fn, batch, arch_weight_decay, criterion, **kwargs
    ).eigenvalue


def supernet_eigenvalue_info(
    model: nn.Module,
    alphas: Sequence[Tensor],
    mixing_fn: Callable[[Sequence[Tensor]], Sequence[Tensor]],
    batch: tuple[Tensor, Tensor],
    arch_weight_decay: float,
    criterion: Callable[[Tensor, Tensor], Tensor] | None = None,
    dtype: torch.dtype | None = None,
    forward: Callable[[Tensor, Sequence[Tensor]], Tensor] | None = None,
    restore_bn: bool = True,
    **kwargs,
) -> EigenInfo:
    """`supernet_eigenvalue` with diagnostics.

    `dtype=torch.float64` computes on a float64 copy of the model (the caller's model is not even
    touched): twice the memory and about twice the time on CPU, but the float32 eigenvalue can be off
    by a few percent where it is small next to the negative end of the spectrum (module docstring).
    `forward(x, weights)`: how the network runs (default `model(x, weights)`; it must run `model`).
    `restore_bn=False` keeps what the measurement's train-mode forwards wrote into the BN running
    statistics, as the SDARTS/MS-DARTS scripts do (their Hessian's forward re-estimates the statistics at
    the measured mixing weights right before the one-shot evaluation); the default restores every buffer.
    """
    if dtype is not None and forward is not None:
        raise HessianArgumentError("dtype copies the model, which a custom forward does not run; drop one")
    alphas = _check_alphas(alphas)
    if dtype is not None:
        if not dtype.is_floating_point:
            raise HessianArgumentError(
                f"dtype must be a floating-point dtype, got {dtype}; e.g. torch.float64"
            )
        model = copy.deepcopy(model).to(dtype)
        alphas = [a.detach().to(dtype) for a in alphas]
    device = alphas[0].device
    x, y = batch
    if dtype is not None and x.is_floating_point():
        x = x.to(dtype)
    batch = (x.to(device), y.to(device))
    loss_fn = supernet_loss_fn(model, mixing_fn, batch, arch_weight_decay, criterion, forward)
    with measurement_mode(model, restore_buffers=restore_bn):
        return dominant_eigenvalue_info(loss_fn, alphas, **kwargs)


@contextmanager
def measurement_mode(model: nn.Module, restore_buffers: bool = True) -> Iterator[None]:
    """Train mode (BN on batch statistics, as the reference) with frozen weights and no side effect left
    on the model.

    Every buffer (BN running statistics and counters, or any other state a forward updates) is
    snapshotted and written back on exit (unless `restore_buffers=False`), and each module's train/eval
    flag and each parameter's requires_grad flag are restored. The weights are constants of the
    eigenvalue, so they are frozen while it is measured: the gradient graph then keeps nothing a weight
    gradient would need. Measured (space 3, batch 96, 2 threads, one process): 8,832 MB peak RSS instead
    of 9,070 MB, the same seconds per product; the reference keeps them requiring grad, as during search.
    """
    training = {m: m.training for m in model.modules()}
    trainable = {p: p.requires_grad for p in model.parameters()}
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()} if restore_buffers else {}
    try:
        model.train()
        for p in trainable:
            p.requires_grad_(False)
        yield
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                if name in buffers:
                    b.copy_(buffers[name])
        for m, t in training.items():
            m.training = t
        for p, flag in trainable.items():
            p.requires_grad_(flag)


# ---- Lanczos -------------------------------------------------------------------------------------
def lanczos_top(
    matvec: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    rtol: float = 1e-4,
    max_iter: int | None = None,
    hvp_dtype: torch.dtype = torch.float64,
    start: np.ndarray | None = None,
) -> tuple[float, int, bool, float, np.ndarray]:
    """Largest eigenvalue of a symmetric n×n operator: (value, matvecs, converged, error estimate,
    unit Ritz vector).

    Full reorthogonalization (n ≤ a few dozen, so it is free and keeps the Ritz values honest).
    Stops when the Kahan-Parlett estimate min(r, r²/gap) of the top Ritz value's error is within
    rtol·|θ| (r = residual norm ‖Hy − θy‖ = β_k·|s_k|; gap = distance to the next Ritz value minus that
    one's residual), when the Krylov space is exhausted (β at the rounding level of the HVPs' dtype), or
    after max_iter steps; n steps are exact. On 24-35-dim test spectra this needed 5-20 products where a
    plain residual test (r ≤ rtol·|θ|) needed 8-34, with errors below rtol except for eigenvalues
    clustered within ~rtol of the top one. Like every single-vector Krylov method it can settle on the
    second eigenvalue when the start vector is almost orthogonal to the top eigenvector (seen once in
    42 random test spectra, component 1.6e-4); method="exact" is there to check.

    `start` warm-starts from a direction (e.g. the last Ritz vector). A fixed random admixture of
    START_MIX keeps every eigendirection in the Krylov space, so a top eigenvector that has changed
    since the last measurement is still found.
    """
    steps = n if max_iter is None else min(max_iter, n)
    rounding = float(torch.finfo(hvp_dtype).eps)
    basis = np.zeros((steps, n))
    diag: list[float] = []
    off: list[float] = []
    v = np.random.default_rng(START_SEED).standard_normal(n)
    v /= np.linalg.norm(v)
    if start is not None:
        start = np.asarray(start, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(start)) if start.shape == (n,) else 0.0
        if np.isfinite(norm) and norm > 0:
            v = start / norm + START_MIX * v
            v /= np.linalg.norm(v)
    theta, err = 0.0, float("inf")
    for k in range(steps):
        basis[k] = v
        w = np.asarray(matvec(v), dtype=np.float64)
        diag.append(float(v @ w))
        for _ in range(2):  # twice is enough (Parlett's "twice is enough")
            w -= basis[: k + 1].T @ (basis[: k + 1] @ w)
        beta = float(np.linalg.norm(w))
        ritz, vecs = np.linalg.eigh(np.diag(diag) + np.diag(off, 1) + np.diag(off, -1))
        theta = float(ritz[-1])
        resid = beta * abs(float(vecs[-1, -1]))
        # Gap to the rest of the spectrum: the next Ritz value may still rise by its own residual.
        gap = float(ritz[-1] - ritz[-2]) - beta * abs(float(vecs[-1, -2])) if k > 0 else 0.0
        err = min(resid, resid * resid / gap) if gap > 0 else resid
        scale = float(np.max(np.abs(ritz)))
        log.debug("lanczos step %d: theta=%.8g resid=%.3g err=%.3g beta=%.3g", k + 1, theta, resid, err, beta)
        if beta <= n * rounding * scale or err <= rtol * abs(theta):
            # invariant subspace found (to rounding: Ritz values exact), or converged
            return theta, k + 1, True, err, _ritz_vector(basis[: k + 1], vecs[:, -1])
        off.append(beta)
        v = w / beta
    return theta, steps, steps == n, err, _ritz_vector(basis[:steps], vecs[:, -1])


def _ritz_vector(basis: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    y = basis.T @ coefficients
    return y / np.linalg.norm(y)


# ---- Hessian-vector products ---------------------------------------------------------------------
class _ReverseHVP:
    """One forward and one create_graph backward, then each HVP is one backward through that graph."""

    def __init__(self, loss_fn: LossFn, alphas: list[Tensor]) -> None:
        self._leaves = _leaves(alphas)
        grads = _grads_with_graph(loss_fn, self._leaves)
        # Gradient entries that do not depend on the alphas add nothing to a product.
        self._grads: list[Tensor] | None = [g for g in grads if g.requires_grad]
        self._keep = [i for i, g in enumerate(grads) if g.requires_grad]

    def matvec(self, v: np.ndarray) -> np.ndarray:
        assert self._grads is not None, "HVP used after close()"
        if not self._grads:
            return np.zeros_like(v)
        vs = _unflatten(v, self._leaves)
        hv = torch.autograd.grad(
            self._grads, self._leaves, [vs[i] for i in self._keep], retain_graph=True, allow_unused=True
        )
        return _flatten(_zeros_for_none(hv, self._leaves))

    def close(self) -> None:
        self._grads = None


class _ForwardHVP:
    """Forward-over-reverse: α carries the direction as a tangent; one plain backward; nothing kept."""

    def __init__(self, loss_fn: LossFn, alphas: list[Tensor]) -> None:
        self._loss_fn = loss_fn
        self._alphas = alphas

    def matvec(self, v: np.ndarray) -> np.ndarray:
        leaves = _leaves(self._alphas)
        tangents = _unflatten(v, leaves)
        with fwad.dual_level():
            duals = [fwad.make_dual(a, t) for a, t in zip(leaves, tangents, strict=True)]
            try:
                loss = _scalar(self._loss_fn(duals))
                grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            except NotImplementedError as exc:  # e.g. a custom autograd.Function without jvp
                raise HessianArgumentError(
                    f"hvp='forward' needs forward-mode AD for every op of the loss ({exc}); use hvp='reverse'"
                ) from None
            hv = [None if g is None else fwad.unpack_dual(g).tangent for g in grads]
        return _flatten(_zeros_for_none(hv, leaves))

    def close(self) -> None:
        pass


class _SegmentedHVP:
    """Second-order adjoints one stage at a time: at most one stage's double-backward graph is alive.

    For L = s_K ∘ … ∘ s_0 with activations x_{k+1} = s_k(x_k, α): a forward sweep carries the
    tangent ẋ_k = dx_k/dα·v (forward-mode AD, no graph; only the stage boundaries are kept), then a
    reverse sweep rebuilds each stage's graph and propagates the adjoint λ_k = ∂L/∂x_k and its
    directional derivative x̄_k:
        λ_k = J_xᵀ λ_{k+1},   x̄_k = J_xᵀ x̄_{k+1} + ∂_x[λ_{k+1}ᵀ (J_x ẋ_k + J_α v)],
        Hv += J_αᵀ x̄_{k+1} + ∂_α[λ_{k+1}ᵀ (J_x ẋ_k + J_α v)],
    each stage's pair being one create_graph backward and one backward of its own graph. The same
    product as hvp="reverse" at about a third of the memory; each product re-runs every stage, so
    an eigenvalue takes ~1.4x as long at batch 96.
    """

    def __init__(self, loss_fn: LossFn, alphas: list[Tensor]) -> None:
        if not isinstance(loss_fn, StagedLoss):
            raise HessianArgumentError(
                "hvp='segmented' needs a StagedLoss (a model with stages(), e.g. the Supernet); "
                "use hvp='reverse'"
            )
        self._loss = loss_fn
        self._alphas = [a.detach() for a in alphas]

    def matvec(self, v: np.ndarray) -> np.ndarray:
        stages, alphas = self._loss.stages, self._alphas
        tangents = _unflatten(v, alphas)
        xs, dxs = self._forward_sweep(stages, alphas, tangents)
        hv = [torch.zeros_like(a) for a in alphas]
        lam: Tensor | None = None  # adjoint of the stage output (None: the scalar loss, adjoint 1)
        xbar: Tensor | None = None  # its directional derivative along v
        for k in range(len(stages) - 1, -1, -1):
            x = xs[k].detach().requires_grad_(k > 0)
            leaves = _leaves(alphas)
            with torch.enable_grad():
                out = stages[k](x, leaves)
                psi = _scalar(out) if lam is None else (lam * out).sum()
                inputs = [x, *leaves] if k > 0 else leaves
                first = (  # a stage with neither α nor a grad-requiring input (the stem; weights frozen)
                    torch.autograd.grad(psi, inputs, create_graph=True, allow_unused=True)
                    if psi.requires_grad
                    else [None] * len(inputs)
                )
                g_x, g_a = (first[0], first[1:]) if k > 0 else (None, first)
                s = sum(
                    ((g * t).sum() for g, t in zip(g_a, tangents, strict=True) if g is not None),
                    out.new_zeros(()),
                )
                if g_x is not None and dxs[k] is not None:
                    s = s + (g_x * dxs[k]).sum()
                if xbar is not None:
                    s = s + (xbar * out).sum()
                second = (
                    torch.autograd.grad(s, inputs, allow_unused=True)
                    if s.requires_grad
                    else [None] * len(inputs)
                )
            for h, g in zip(hv, second[-len(leaves) :], strict=True):
                if g is not None:
                    h += g
            if k > 0:
                lam = torch.zeros_like(x) if g_x is None else g_x.detach()
                xbar = torch.zeros_like(x) if second[0] is None else second[0]
        return _flatten(hv)

    def _forward_sweep(
        self, stages: Sequence[Stage], alphas: list[Tensor], tangents: list[Tensor]
    ) -> tuple[list[Tensor], list[Tensor | None]]:
        """Stage inputs x_0..x_K and their tangents (None where a stage input does not depend on α)."""
        x, xs, dxs = self._loss.x0, [self._loss.x0], [None]
        with torch.no_grad(), fwad.dual_level():
            duals = [fwad.make_dual(a, t) for a, t in zip(alphas, tangents, strict=True)]
            for k, stage in enumerate(stages[:-1]):
                dx = dxs[k]
                out = stage(x if dx is None else fwad.make_dual(x, dx), duals)
                x, dx = fwad.unpack_dual(out)
                xs.append(x)
                dxs.append(dx)
        return xs, dxs

    def close(self) -> None:
        pass


_HVPS: dict[str, type] = {"reverse": _ReverseHVP, "forward": _ForwardHVP, "segmented": _SegmentedHVP}


# ---- helpers -------------------------------------------------------------------------------------
def _check_alphas(alphas: Sequence[Tensor]) -> list[Tensor]:
    alphas = list(alphas)
    if not alphas or not all(isinstance(a, Tensor) for a in alphas):
        raise HessianArgumentError(
            "alphas must be a non-empty list of tensors; pass the architecture parameters"
        )
    if not all(a.is_floating_point() for a in alphas):
        raise HessianArgumentError("alphas must be floating-point tensors; cast them with .float()")
    devices = {a.device for a in alphas}
    if len(devices) > 1:
        raise HessianArgumentError(
            f"alphas live on several devices {sorted(map(str, devices))}; move them to one"
        )
    return alphas


def _leaves(alphas: Sequence[Tensor]) -> list[Tensor]:
    # Fresh leaves: gradients go to them only, never into the caller's parameters or their .grad.
    return [a.detach().requires_grad_(True) for a in alphas]


def _scalar(loss: Tensor) -> Tensor:
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise HessianArgumentError("loss_fn must return a scalar tensor; reduce the loss (e.g. .mean())")
    return loss.reshape(())


def _grads_with_graph(loss_fn: LossFn, leaves: list[Tensor]) -> list[Tensor]:
    loss = _scalar(loss_fn(leaves))
    if not loss.requires_grad:
        return [torch.zeros_like(a) for a in leaves]
    grads = torch.autograd.grad(loss, leaves, create_graph=True, allow_unused=True)
    return _zeros_for_none(grads, leaves)


def _zeros_for_none(ts: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    return [torch.zeros_like(a) if t is None else t for t, a in zip(ts, like, strict=True)]


def _flatten(ts: Sequence[Tensor]) -> np.ndarray:
    return torch.cat([t.detach().reshape(-1) for t in ts]).to("cpu", torch.float64).numpy()


def _unflatten(v: np.ndarray, like: Sequence[Tensor]) -> list[Tensor]:
    out, i = [], 0
    for a in like:
        chunk = torch.from_numpy(np.ascontiguousarray(v[i : i + a.numel()]))
        out.append(chunk.to(device=a.device, dtype=a.dtype).reshape(a.shape))
        i += a.numel()
    return out

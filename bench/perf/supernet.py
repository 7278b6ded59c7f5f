"""Speed and peak memory of the one-shot supernet's two training steps, against the reference's numbers.

    python -m bench.perf supernet [--spaces 1,2,3] [--batches 32,96] [--repeats 5] [--variant darts]
                                  [--threads N] [--device auto|cpu|cuda] [--baseline]

Per (space, batch), in a fresh interpreter so that peak RSS (`ru_maxrss`) belongs to that configuration:
- weight step: mixing weights softmax(α) (detached), forward, cross-entropy, backward, grad-norm clip 5,
  SGD step (lr 0.025, momentum 0.9, wd 3e-4);
- first-order arch step: mixing weights softmax(α), forward, cross-entropy, `torch.autograd.grad`
  w.r.t. the alphas only (no weight gradients are computed), Adam step on the alphas (lr 3e-4,
  betas (0.5, 0.999), wd 1e-3).
Both in train mode, on SYNTHETIC data (random 3×32×32 images, random labels), 16 initial channels,
9 cells, 10 classes: they measure cost, not learning. Times are medians over `--repeats` steps after
one warm-up step; the CPU time (user+sys of the process) is shown too, since on a shared machine it is
less disturbed by other load than the wall clock.

The fixed reference numbers (DARTS, space 1) were taken on an idle 2-core machine. `--baseline` also
times, under the same conditions as ours, `NaiveSupernet`: the reference's structure and habits
re-stated here (NCHW, out-of-place ReLUs, Python sums of weighted terms, pool padding 1) — a
same-machine ratio that load on a shared machine cannot skew as much.

`--variant gdas` times the GDAS form (hard straight-through Gumbel op weights, only the sampled op
runs); `--variant pcdarts` builds the supernet with `partial_channels=4`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.search.spaces import SearchSpace

# The reference implementation on an idle 2-core CPU machine like ours (DARTS, space 1):
# (space, batch) -> (weight step s, arch step s, peak RSS GB).
REFERENCE: dict[tuple[int, int], tuple[float, float, float]] = {
    (1, 32): (0.82, 0.84, 1.2),
    (1, 96): (2.40, 2.46, 2.8),
}
VARIANTS = ("darts", "gdas", "pcdarts")
IMPLS = ("ours", "naive")
INIT_CHANNELS = 16
NUM_CLASSES = 10
IMAGE = (3, 32, 32)


class BenchUsageError(ValueError):
    """A command-line value the benchmark cannot use."""


@dataclass(frozen=True)
class Measurement:
    space: int
    batch: int
    variant: str
    impl: str
    device: str
    threads: int
    weight_step_s: float
    arch_step_s: float
    weight_step_cpu_s: float
    arch_step_cpu_s: float
    peak_rss_gb: float  # whole process: interpreter, torch, model, activations (GB = 1e9 bytes)
    baseline_rss_gb: float  # after imports and building the model, before the first step
    cuda_peak_gb: float | None


# ---- a same-machine baseline in the reference's style -----------------------------------------
class _NaiveConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(c_out, momentum=0.997),
            nn.ReLU(inplace=False),
        )


class _NaiveCell(nn.Module):
    def __init__(self, c_in: int, c: int, blocks: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(
            [_NaiveConvBnRelu(c_in, c, 1) for _ in range(blocks)] + [_NaiveConvBnRelu(c_in, c * blocks, 1)]
        )
        self.ops = nn.ModuleList(
            nn.ModuleList([nn.MaxPool2d(3, 1, 1), _NaiveConvBnRelu(c, c, 3), _NaiveConvBnRelu(c, c, 1)])
            for _ in range(blocks)
        )

    def forward(self, s0: torch.Tensor, ops_w, out_w, input_w: dict[int, torch.Tensor]) -> torch.Tensor:
        states: list[torch.Tensor] = []
        for i, ops in enumerate(self.ops):
            inputs = [self.projections[i](s0), *states]
            w_in = input_w.get(i + 1)
            x = sum(inputs) if w_in is None else sum(w * t for w, t in zip(w_in[0], inputs, strict=True))
            states.append(sum(w * op(x) for w, op in zip(ops_w[i], ops, strict=True)))
        cat = torch.cat([w * t for w, t in zip(out_w[0][1:], states, strict=True)], dim=1)
        return out_w[0][0] * self.projections[-1](s0) + cat


class NaiveSupernet(nn.Module):
    """The reference's model structure and coding habits, for timing only (not used for search)."""

    def __init__(self, space: SearchSpace, c: int = INIT_CHANNELS, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        b = space.num_blocks
        self.input_nodes = [int(n.split("_")[1]) for n in space.alpha_shapes() if n.startswith("inputs_")]
        self.stem = _NaiveConvBnRelu(3, c, 3)
        cells, c_in = [], c
        for i in range(9):
            c = c * 2 if i in (3, 6) else c
            cells.append(_NaiveCell(c_in, c, b))
            c_in = c * b
        self.cells = nn.ModuleList(cells)
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c, 1, bias=False), nn.BatchNorm2d(c, affine=False)
        )
        self.classifier = nn.Linear(c, num_classes)

    def forward(
        self, x: torch.Tensor, weights: Sequence[torch.Tensor], op_choice: None = None
    ) -> torch.Tensor:
        input_w = dict(zip(self.input_nodes, weights[2:], strict=True))
        s = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in (3, 6):
                s = F.max_pool2d(s, 2, 2, padding=1)
            s = cell(s, weights[0], weights[1], input_w)
        return self.classifier(self.head(s).mean(dim=(2, 3)))

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())


# ---- measuring ---------------------------------------------------------------------------------
def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux


def _timed(step: Callable[[], None], repeats: int, sync: Callable[[], None]) -> tuple[float, float]:
    """Median wall and CPU seconds of `step` over `repeats` calls after one warm-up."""
    step()
    sync()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        sync()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def measure(
    space_number: int,
    batch: int,
    repeats: int,
    variant: str = "darts",
    device: str = "auto",
    threads: int | None = None,
    impl: str = "ours",
) -> Measurement:
    """Time both steps of one configuration in this process (call it in a fresh one for peak RSS)."""
    from bench.runs.device import full_float32
    from bench.search.supernet import Supernet

    full_float32()  # the numerics the trainer runs with
    if threads:
        torch.set_num_threads(threads)
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda" if use_cuda else "cpu")
    torch.manual_seed(0)
    space = SearchSpace(space_number)
    if impl == "naive":
        model: nn.Module = NaiveSupernet(space)
    else:
        k = 4 if variant == "pcdarts" else 1
        model = Supernet(space, init_channels=INIT_CHANNELS, num_classes=NUM_CLASSES, partial_channels=k)
    model = model.to(dev).train()
    alphas = space.init_alphas(device=dev)
    x = torch.randn(batch, *IMAGE, device=dev)  # SYNTHETIC inputs and labels
    y = torch.randint(0, NUM_CLASSES, (batch,), device=dev)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def mixing(alphas: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        if variant != "gdas":
            return [a.softmax(-1) for a in alphas], None
        ops = F.gumbel_softmax(alphas[0], tau=10.0, hard=True, dim=-1)
        rest = [F.gumbel_softmax(a, tau=10.0, hard=False, dim=-1) for a in alphas[1:]]
        return [ops, *rest], ops.detach().argmax(-1)

    def weight_step() -> None:
        weights, choice = mixing([a.detach() for a in alphas])
        loss = F.cross_entropy(model(x, weights, op_choice=choice), y)
        w_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), 5.0)
        w_opt.step()

    def arch_step() -> None:
        weights, choice = mixing(alphas)
        loss = F.cross_entropy(model(x, weights, op_choice=choice), y)
        grads = torch.autograd.grad(loss, alphas)
        for a, g in zip(alphas, grads, strict=True):
            a.grad = g
        a_opt.step()

    sync = torch.cuda.synchronize if use_cuda else (lambda: None)
    baseline = _rss_gb()
    if use_cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    w_wall, w_cpu = _timed(weight_step, repeats, sync)
    a_wall, a_cpu = _timed(arch_step, repeats, sync)
    return Measurement(
        space=space_number,
        batch=batch,
        variant=variant,
        impl=impl,
        device=str(dev),
        threads=torch.get_num_threads(),
        weight_step_s=w_wall,
        arch_step_s=a_wall,
        weight_step_cpu_s=w_cpu,
        arch_step_cpu_s=a_cpu,
        peak_rss_gb=_rss_gb(),
        baseline_rss_gb=baseline,
        cuda_peak_gb=torch.cuda.max_memory_allocated(dev) / 1e9 if use_cuda else None,
    )


def _run_worker(args: argparse.Namespace, space: int, batch: int, impl: str) -> Measurement:
    cmd = [sys.executable, "-m", "bench.perf.supernet", "--worker", impl]
    cmd += ["--spaces", str(space), "--batches", str(batch), "--repeats", str(args.repeats)]
    cmd += ["--variant", args.variant, "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    root = str(Path(__file__).resolve().parents[2])  # so the child imports this checkout's `bench`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} worker for space {space}, batch {batch} failed:\n{proc.stderr[-2000:]}")
    return Measurement(**json.loads(proc.stdout.strip().splitlines()[-1]))


# ---- reporting ---------------------------------------------------------------------------------
def _vs(ours: float, ref: float | None) -> str:
    return (
        f"{ours:7.2f}   {'':>5}  {'':>6}" if ref is None else f"{ours:7.2f}   {ref:5.2f}  {ours / ref:5.2f}x"
    )


def format_table(rows: Sequence[Measurement], naive: dict[tuple[int, int], Measurement] | None = None) -> str:
    trio = "{:>7}   {:>5}  {:>6}"
    cols = [
        f"{'space':>5} {'batch':>5}",
        trio.format("weight s", "ref", "ratio"),
        trio.format("arch s", "ref", "ratio"),
        trio.format("RSS GB", "ref", "ratio"),
        f"{'cpu w/a s':>11}",
        f"{'base GB':>7}",
    ]
    if naive:
        cols.append(f"{'naive w/a s, RSS GB':>21} {'speedup w/a':>11}")
    head = " | ".join(cols)
    lines = [head, "-" * len(head)]
    for m in rows:
        r = REFERENCE.get((m.space, m.batch), (None,) * 3) if m.variant == "darts" else (None,) * 3
        cells = [
            f"{m.space:>5} {m.batch:>5}",
            _vs(m.weight_step_s, r[0]),
            _vs(m.arch_step_s, r[1]),
            _vs(m.peak_rss_gb, r[2]),
            f"{m.weight_step_cpu_s:5.2f}/{m.arch_step_cpu_s:<5.2f}",
            f"{m.baseline_rss_gb:7.2f}",
        ]
        if naive and (n := naive.get((m.space, m.batch))):
            speed = f"{n.weight_step_s / m.weight_step_s:4.2f}/{n.arch_step_s / m.arch_step_s:<4.2f}x"
            cells.append(f"{n.weight_step_s:6.2f}/{n.arch_step_s:<6.2f} {n.peak_rss_gb:6.2f}  {speed:>11}")
        if m.cuda_peak_gb is not None:
            cells.append(f"cuda peak {m.cuda_peak_gb:.2f} GB")
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def judge(rows: Sequence[Measurement], naive: dict[tuple[int, int], Measurement]) -> tuple[list[str], bool]:
    """The supernet's target: no slower and no larger than the reference (every ratio ours / theirs
    <= 1), against the published numbers where they exist (DARTS, space 1) and the reference-style
    model timed in the same run. Lines with PASS/FAIL, and whether everything passed."""
    lines, ok_all = [], True
    for m in rows:
        ref = REFERENCE.get((m.space, m.batch)) if m.variant == "darts" else None
        n = naive.get((m.space, m.batch))
        same_run = n and (n.weight_step_s, n.arch_step_s, n.peak_rss_gb)
        for label, base in (("reference (published)", ref), ("reference style (this run)", same_run)):
            if base is None:
                continue
            ratios = (m.weight_step_s / base[0], m.arch_step_s / base[1], m.peak_rss_gb / base[2])
            ok = all(r <= 1.0 for r in ratios)
            ok_all &= ok
            lines.append(
                f"space {m.space} batch {m.batch} vs {label}: weight step x{ratios[0]:.2f}, arch step "
                f"x{ratios[1]:.2f}, peak RSS x{ratios[2]:.2f}: {'PASS' if ok else 'FAIL'}"
            )
    return lines, ok_all


# ---- command line ------------------------------------------------------------------------------
def _int_list(text: str, allowed: Sequence[int] | None, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values) or (allowed and any(v not in allowed for v in values)):
        choices = f" from {', '.join(map(str, allowed))}" if allowed else " ≥1"
        raise BenchUsageError(f"{what} must be a comma-separated list of integers{choices}, got {text!r}")
    return values


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line on stderr, exit 2, no usage dump
        self.exit(2, f"{self.prog}: {message}\n")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _Parser(prog="python -m bench.perf supernet", description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", default="1,2,3", help="comma-separated search spaces (default 1,2,3)")
    p.add_argument("--batches", default="32,96", help="comma-separated batch sizes (default 32,96)")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per measurement (median; default 5)")
    p.add_argument("--variant", choices=VARIANTS, default="darts", help="mixing form to time (default darts)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: CUDA if present"
    )
    p.add_argument("--baseline", action="store_true", help="also time the naive reference-style model")
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.space_list = _int_list(args.spaces, (1, 2, 3), "--spaces")
    args.batch_list = _int_list(args.batches, None, "--batches")
    if args.repeats < 1 or (args.threads is not None and args.threads < 1):
        raise BenchUsageError("--repeats and --threads must be ≥1")
    if args.baseline and args.variant != "darts":
        raise BenchUsageError("--baseline times DARTS only; drop --baseline or use --variant darts")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise BenchUsageError("--device cuda asked for but no CUDA device is visible; use --device cpu")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parse(argv)
    except BenchUsageError as exc:
        print(f"python -m bench.perf supernet: {exc}", file=sys.stderr)
        return 2
    if args.worker:
        m = measure(
            args.space_list[0],
            args.batch_list[0],
            args.repeats,
            args.variant,
            args.device,
            args.threads,
            args.worker,
        )
        print(json.dumps(asdict(m)))
        return 0
    rows, naive = [], {}
    for space in args.space_list:
        for batch in args.batch_list:
            for impl in ("ours", "naive") if args.baseline else ("ours",):
                m = _run_worker(args, space, batch, impl)
                print(
                    f"{impl} space {space} batch {batch}: weight {m.weight_step_s:.2f} s, "
                    f"arch {m.arch_step_s:.2f} s",
                    file=sys.stderr,
                )
                if impl == "ours":
                    rows.append(m)
                else:
                    naive[(space, batch)] = m
    first = rows[0]
    print(
        f"supernet steps, variant {args.variant}, {first.device}, {first.threads} torch threads; median of "
        f"{args.repeats} after 1 warm-up; SYNTHETIC random 3x32x32 data, {INIT_CHANNELS} channels, 9 cells, "
        f"{NUM_CLASSES} classes"
    )
    print(format_table(rows, naive or None))
    print(
        "ref = the reference implementation on an idle 2-core CPU (DARTS, space 1 only); ratio = ours / ref "
        "(<1 is better). RSS = peak resident set of a fresh process per row (base GB: after imports and "
        "model build). Wall times on a shared machine are noisy; cpu w/a = median CPU seconds per step."
        + (" naive = NaiveSupernet (reference style) timed here; speedup = naive / ours." if naive else "")
    )
    lines, ok = judge(rows, naive)
    print("\ntargets: no slower and no larger than the reference (each ratio ours / theirs <= 1)")
    print("\n".join(lines) if lines else "(no reference for these rows: add --baseline)")
    print(f"overall: {'PASS' if ok else 'FAIL'}" if lines else "overall: not judged")
    return 0


if __name__ == "__main__":
    sys.exit(main())

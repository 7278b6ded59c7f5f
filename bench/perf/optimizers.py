"""Benchmark: the time of one full search step (arch step + perturbation + weight step) per optimizer.

    python -m bench.perf optimizers [--space 1] [--batch 32] [--repeats 5] [--optimizers a,b,...]

Every optimizer gets the same configuration: the real supernet (16 channels, 9 cells unless told
otherwise), the trainer's default torch optimizers, and fixed random 3x32x32 batches (RANDOM DATA: the
numbers measure speed only). After one untimed warm-up step each, the repeats are interleaved (the
order rotates every repeat), so a slow spell on a shared machine hits all optimizers alike; ratios
are the medians of the per-repeat ratios. Both wall-clock and this process's CPU time are reported;
the targets (MS-DARTS <= 0.45 x SDARTS-ADV and <= 2.0 x DARTS at N = 3, T = 2) are judged on the
clock chosen with --clock (default wall). On a CPU shared with other jobs, `--threads 1` avoids
OpenMP threads spin-waiting for each other, which can slow every step several times over.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bench.runs.config import RunConfig
from bench.search.spaces import SearchSpace
from bench.search.supernet import Supernet
from optimizers import OneShotOptimizer, SearchContext, available, build_hyperparameters, get_optimizer

ORDER = ("darts", "pcdarts", "gdas", "sdarts-rs", "sdarts-adv", "msdarts", "rsws")
# Reference implementations, full step, space 1, batch 32, on a machine like the project's (seconds).
REFERENCE_S = {"darts": 1.54, "sdarts-rs": 1.52, "sdarts-adv": 7.21, "msdarts": 3.66}


@dataclass(frozen=True)
class Targets:
    ms_over_adv: float = 0.45
    ms_over_darts: float = 2.0


@dataclass
class Timing:
    wall: list[float]
    cpu: list[float]


def build(name: str, args: argparse.Namespace, device: torch.device) -> OneShotOptimizer:
    """The plug-in on a fresh supernet, seeded alike for every optimizer, as the trainer builds it."""
    cfg = RunConfig()
    cls = get_optimizer(name)
    hp = build_hyperparameters(cls, {})
    torch.manual_seed(args.seed)
    space = SearchSpace(args.space)
    model = Supernet(
        space,
        init_channels=args.channels,
        num_classes=10,
        in_channels=3,
        cells_per_stack=args.cells_per_stack,
        **cls.supernet_kwargs(hp),
    ).to(device)
    alphas = space.init_alphas(torch.Generator().manual_seed(args.seed), device=device)
    params = list(model.parameters())
    w_optim = torch.optim.SGD(params, lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_weight_decay)
    a_optim = torch.optim.Adam(
        alphas, lr=cfg.a_lr, betas=(cfg.a_beta1, cfg.a_beta2), weight_decay=cfg.a_weight_decay
    )
    epochs = cls.reference_epochs
    ctx = SearchContext(model, space, alphas, w_optim, a_optim, cfg.grad_clip, epochs, params)
    plugin = cls(ctx, hp)
    plugin.on_epoch_start(epochs // 2)  # mid-schedule; the cost does not depend on the radius
    return plugin


def random_batch(n: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x.to(device), y.to(device)


def time_step(plugin: OneShotOptimizer, batches: tuple, device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    plugin.step(*batches)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0, time.process_time() - c0


def measure(names: Sequence[str], args: argparse.Namespace, device: torch.device) -> dict[str, Timing]:
    batches = (random_batch(args.batch, 1, device), random_batch(args.batch, 2, device))
    plugins = {name: build(name, args, device) for name in names}
    for name, plugin in plugins.items():
        print(f"warm-up {name} ...", end=" ", flush=True)
        print(f"{time_step(plugin, batches, device)[0]:.2f} s", flush=True)
    timings = {name: Timing([], []) for name in names}
    for r in range(args.repeats):
        order = list(names[r % len(names) :]) + list(names[: r % len(names)])
        for name in order:
            wall, cpu = time_step(plugins[name], batches, device)
            timings[name].wall.append(wall)
            timings[name].cpu.append(cpu)
        done = ", ".join(f"{n} {timings[n].wall[-1]:.2f}" for n in names)
        print(f"repeat {r + 1}/{args.repeats} (wall s): {done}", flush=True)
    return timings


def paired_ratio(timings: dict[str, Timing], a: str, b: str, clock: str) -> float:
    """Median over repeats of time(a) / time(b) measured in the same repeat."""
    ta, tb = getattr(timings[a], clock), getattr(timings[b], clock)
    return statistics.median(x / y for x, y in zip(ta, tb, strict=True))


def report(timings: dict[str, Timing], args: argparse.Namespace, device: torch.device) -> bool:
    names = list(timings)
    base = "darts" if "darts" in timings else None
    print(
        f"\nfull search step, space {args.space}, batch {args.batch}, {args.channels} channels, "
        f"{3 * args.cells_per_stack} cells, RANDOM 3x32x32 data, {args.repeats} interleaved repeats, "
        f"device {device}, {torch.get_num_threads()} threads"
    )
    header = (
        f"{'optimizer':<12} {'wall med s':>10} {'cpu med s':>10} {'wall/DARTS':>11} {'cpu/DARTS':>10}"
        f" {'ref s':>7} {'ref/DARTS':>10}"
    )
    print(header + "\n" + "-" * len(header))
    for n in names:
        t = timings[n]
        rw = f"{paired_ratio(timings, n, base, 'wall'):.2f}" if base else "-"
        rc = f"{paired_ratio(timings, n, base, 'cpu'):.2f}" if base else "-"
        ref = REFERENCE_S.get(n)
        ref_s = f"{ref:.2f}" if ref else "-"
        ref_r = f"{ref / REFERENCE_S['darts']:.2f}" if ref else "-"
        print(
            f"{n:<12} {statistics.median(t.wall):>10.3f} {statistics.median(t.cpu):>10.3f} {rw:>11} {rc:>10}"
            f" {ref_s:>7} {ref_r:>10}"
        )
    if not {"msdarts", "sdarts-adv", "darts"} <= set(timings):
        print("\n(targets need darts, sdarts-adv and msdarts in --optimizers)")
        return True
    tg = Targets()
    ok = True
    print()
    for what, other, target in (
        ("MS-DARTS / SDARTS-ADV", "sdarts-adv", tg.ms_over_adv),
        ("MS-DARTS / DARTS", "darts", tg.ms_over_darts),
    ):
        ref = REFERENCE_S["msdarts"] / REFERENCE_S[other]
        wall = paired_ratio(timings, "msdarts", other, "wall")
        cpu = paired_ratio(timings, "msdarts", other, "cpu")
        judged = wall if args.clock == "wall" else cpu
        verdict = "PASS" if judged <= target else "FAIL"
        ok &= judged <= target
        print(
            f"{what:<22} wall {wall:.3f}  cpu {cpu:.3f}  target <= {target:.2f} ({args.clock}): {verdict}"
            f"   reference {ref:.2f}"
        )
    print(
        "\nA shared machine makes single timings noisy; the ratios pair steps of the same repeat. The cpu "
        "column counts this process's CPU seconds (all threads), closer to what an idle machine shows."
    )
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf optimizers", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--space", type=int, choices=(1, 2, 3), default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--channels", type=int, default=16, help="init_channels of the supernet")
    parser.add_argument("--cells-per-stack", type=int, default=3, help="3 stacks of this many cells")
    parser.add_argument("--optimizers", default=None, help="comma-separated names (default: all registered)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="clock the targets judge")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if min(args.batch, args.repeats, args.channels, args.cells_per_stack) < 1:
        what = "--batch, --repeats, --channels and --cells-per-stack"
        print(f"python -m bench.perf optimizers: {what} must be >= 1", file=sys.stderr)
        return 2
    names = available()
    if args.optimizers:
        wanted = [n.strip() for n in args.optimizers.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            print(f"python -m bench.perf optimizers: unknown optimizer(s) {', '.join(unknown)}; choose from "
                  f"{', '.join(names)}", file=sys.stderr)  # fmt: skip
            return 2
        names = wanted
    else:
        names = [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench.runs.device import DeviceError, full_float32, resolve_device

    full_float32()  # the numerics the trainer runs with
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        print(f"python -m bench.perf optimizers: {exc}", file=sys.stderr)
        return 2
    ok = report(measure(names, args, device), args, device)
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())

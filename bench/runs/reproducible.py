"""`reproducible=true`: CPU numbers that do not depend on the x86 machine or the thread count.

By default a CPU run is bit-for-bit reproducible only on the same machine with the same thread count:
ATen picks its vectorised kernels by the CPU's ISA (AVX-512, AVX2 or the baseline build), oneDNN picks
its convolution kernels by ISA, MKL picks its GEMM code path by ISA, and parallel reductions split their
work by thread count. Each choice changes the order of float additions, so the last bits differ from
the first epoch and a discretised cell can differ a few epochs later (docs/reproducibility.md has the
measurements).

Pinned mode removes every one of those choices:

- ATen's baseline kernels (`ATEN_CPU_CAPABILITY=default`), the same code on every x86-64 CPU;
- oneDNN (mkldnn) and NNPACK convolutions off, so convolutions run ATen's own im2col + GEMM;
- MKL's conditional numerical reproducibility (`MKL_CBWR=COMPATIBLE`), one GEMM code path on any CPU;
- one intra-op thread, so no reduction is split.

The two environment variables are read once per process, at the first ATen dispatch and the first MKL
call, so they cannot be set by a run that shares a process with earlier work: `python -m bench.run`
starts such runs in a child process with the variables set (`child_env`), and a run checks the process
(`problems`) before its first operation and refuses to start when the mode cannot be guaranteed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping

import torch

from bench.errors import HarnessError

log = logging.getLogger(__name__)

# Read by ATen and MKL once per process, before anything else computes.
PINNED_ENV: dict[str, str] = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
PINNED_THREADS = 1
PINNED_CAPABILITY = "DEFAULT"  # torch.backends.cpu.get_cpu_capability() under ATEN_CPU_CAPABILITY=default


class ReproducibleModeError(HarnessError):
    """A `reproducible=true` run in a process that cannot guarantee it."""


def capability() -> str:
    """The ISA whose kernels ATen actually dispatches to in this process (e.g. AVX512, AVX2, DEFAULT)."""
    return str(torch.backends.cpu.get_cpu_capability())


def problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """Why this process cannot run in pinned mode (empty when it can)."""
    env = os.environ if environ is None else environ
    found = [
        f"{key}={env.get(key, '<unset>')} (needs {value})"
        for key, value in PINNED_ENV.items()
        if env.get(key, "").lower() != value.lower()
    ]
    if capability() != PINNED_CAPABILITY:
        found.append(f"ATen dispatches to {capability()} kernels (needs {PINNED_CAPABILITY})")
    return found


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child process needs to run in pinned mode."""
    return {**(os.environ if environ is None else environ), **PINNED_ENV}


def how_to_fix() -> str:
    variables = " ".join(f"{k}={v}" for k, v in PINNED_ENV.items())
    return (
        f"start the process with {variables} in its environment (python -m bench.run does this itself; "
        "Dask workers need it when they are started)"
    )


def check(device: torch.device) -> None:
    """Raise ReproducibleModeError unless this process can run a pinned run on `device`."""
    if device.type != "cpu":
        raise ReproducibleModeError(
            f"reproducible=true pins CPU kernels, but this run would compute on {device}; use --device cpu"
        )
    found = problems()
    if found:
        raise ReproducibleModeError(
            f"reproducible=true cannot be guaranteed in this process: {'; '.join(found)}; {how_to_fix()}"
        )


def check_pinned(device: torch.device) -> None:
    """Raise ReproducibleModeError unless a pinned run may compute now: the process (`check`) and the
    settings `pinned` applies. The trainer calls it, so no way into a run skips the guarantee."""
    check(device)
    unpinned = [
        name
        for name, bad in (
            ("oneDNN is on", torch._C._get_mkldnn_enabled()),
            ("NNPACK is on", torch._C._get_nnpack_enabled()),
            (f"{torch.get_num_threads()} threads", torch.get_num_threads() != PINNED_THREADS),
        )
        if bad
    ]
    if unpinned:
        raise ReproducibleModeError(
            f"reproducible=true: {', '.join(unpinned)}; run it inside bench.runs.reproducible.pinned "
            "(bench.runs.executors.execute does)"
        )


@contextlib.contextmanager
def pinned(enabled: bool, device: torch.device) -> Iterator[None]:
    """Inside: the pinned kernels and thread count when `enabled` (checked first), else nothing changes.
    The process's own settings come back afterwards, so an in-process caller is left as it was."""
    if not enabled:
        yield
        return
    check(device)
    threads = torch.get_num_threads()
    if threads != PINNED_THREADS:
        log.info("reproducible=true: %d intra-op thread(s) instead of %d", PINNED_THREADS, threads)
    mkldnn, nnpack = torch._C._get_mkldnn_enabled(), torch._C._get_nnpack_enabled()
    torch.set_num_threads(PINNED_THREADS)
    torch._C._set_mkldnn_enabled(False)
    torch._C._set_nnpack_enabled(False)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch._C._set_mkldnn_enabled(mkldnn)
        torch._C._set_nnpack_enabled(nnpack)

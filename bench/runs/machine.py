"""What determines a run's CPU numbers besides its settings: the machine record in config.json.

Two runs with the same settings and seed agree bit for bit when these agree (see bench.runs.reproducible
for why each one matters). With `reproducible=true` the CPU model, its ISA and the thread count no longer
matter, only the torch build does, so `numbers_key` compares just that.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.runs import reproducible

# Environment variables that change which kernels run; recorded when set.
KERNEL_ENV = (
    "ATEN_CPU_CAPABILITY",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)
# The record's fields that decide the numbers, in the order a difference is reported.
DEFAULT_KEY = ("cpu_model", "aten_capability", "torch", "blas", "onednn", "threads", "reproducible")
PINNED_KEY = ("torch", "blas", "reproducible")
NOT_RECORDED = "machine not recorded"


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name (platform.processor() is empty on Linux)."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _build_line(config: str, pattern: str) -> str:
    match = re.search(pattern, config)
    return match.group(0).strip() if match else ""


def torch_build(config: str | None = None) -> dict[str, str]:
    """BLAS and oneDNN as torch.__config__.show() names them."""
    text = torch.__config__.show() if config is None else config
    blas = _build_line(text, r"BLAS_INFO=[^,\n]*")
    mkl = _build_line(text, r"Intel\(R\) (oneAPI )?Math Kernel Library Version [^\n]*")
    return {
        "blas": f"{blas.removeprefix('BLAS_INFO=')}: {mkl}".rstrip(": ")
        if mkl
        else blas.removeprefix("BLAS_INFO="),
        "onednn": _build_line(text, r"Intel\(R\) MKL-DNN v[0-9.]+") or "none",
    }


def machine_record(threads: int | None = None, is_reproducible: bool = False) -> dict[str, Any]:
    """The config.json `machine` record of a run computing in this process now."""
    pinned = is_reproducible
    return {
        "cpu_model": cpu_model(),
        "aten_capability": reproducible.capability(),
        "torch": torch.__version__,
        **torch_build(),
        "onednn_enabled": bool(torch._C._get_mkldnn_enabled()) and not pinned,
        "threads": reproducible.PINNED_THREADS if pinned else (threads or torch.get_num_threads()),
        "reproducible": pinned,
        "kernel_env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
    }


def numbers_key(record: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...] | None:
    """The fields that decide a run's numbers (None for runs older than the record)."""
    if not record:
        return None
    keys = PINNED_KEY if record.get("reproducible") else DEFAULT_KEY
    return tuple((k, record.get(k)) for k in keys)


def differences(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[str]:
    """`key: a vs b` for each field that decides the numbers and differs (both modes' keys)."""
    if not a or not b:
        return [] if a == b else [NOT_RECORDED]
    keys = PINNED_KEY if a.get("reproducible") and b.get("reproducible") else DEFAULT_KEY
    return [f"{k}: {a.get(k)} vs {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


def describe(record: Mapping[str, Any] | None) -> str:
    """One line naming a machine record, e.g. `AMD EPYC, AVX512, torch 2.13.0+cpu, mkl, 1 thread`."""
    if not record:
        return NOT_RECORDED
    if record.get("reproducible"):
        return f"reproducible (pinned kernels), torch {record.get('torch')}, {record.get('blas')}"
    threads = record.get("threads")
    return (
        f"{record.get('cpu_model')}, {record.get('aten_capability')}, torch {record.get('torch')}, "
        f"{record.get('blas')}, {record.get('onednn')}, {threads} thread{'s' if threads != 1 else ''}"
    )


def harness_key(record: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...] | None:
    """What identifies the harness that wrote a run: its package version and git revision, from a
    config.json's `versions.harness` and `git_revision` (None when neither is recorded)."""
    record = record or {}
    version = (record.get("versions") or {}).get("harness")
    revision = record.get("git_revision")
    return (("harness", version), ("git_revision", revision)) if version or revision else None


def describe_harness(record: Mapping[str, Any] | None) -> str:
    """One line naming a harness, e.g. `harness 0.1.0 (git 0797b98a1c2d)`."""
    key = dict(harness_key(record) or ())
    if not key:
        return "harness version not recorded"
    return f"harness {key['harness'] or 'unknown'} (git {(key['git_revision'] or 'unknown')[:12]})"


def comparison_lines(
    groups: Mapping[str, Sequence[Mapping[str, Any] | None]],
    key: Callable[[Mapping[str, Any] | None], Any] = numbers_key,
    name: Callable[[Mapping[str, Any] | None], str] = describe,
    what: str = "machine",
    unrecorded_alone: bool = True,
) -> list[str]:
    """One line per group of compared runs whose numbers came from differing machines (or from runs
    without the record); nothing for a group computed on one machine. `key`, `name` and `what` compare
    something else the same way (the harness version: `harness_lines`); `unrecorded_alone=False` says
    nothing for a group where no run has the record."""
    lines = []
    for label, records in groups.items():
        counts: dict[Any, list[Mapping[str, Any] | None]] = {}
        for record in records:
            counts.setdefault(key(record), []).append(record)
        recorded = [k for k in counts if k is not None]
        if len(recorded) < 2 and None not in counts:
            continue
        if not recorded:
            if unrecorded_alone:
                lines.append(
                    f"{label}: {what} not recorded ({len(records)} run(s) written before the record)"
                )
            continue
        parts = [
            f"{len(members)} run(s) on {name(members[0])}"
            for members in sorted(counts.values(), key=lambda m: -len(m))
        ]
        kind = f"differing {what}s" if len(recorded) > 1 else f"one {what}"
        if None in counts:
            kind += f" and runs whose {what} is not recorded"
        lines.append(f"{label}: runs from {kind}; differences may be the {what}'s: {'; '.join(parts)}")
    return lines


def harness_lines(groups: Mapping[str, Sequence[Mapping[str, Any] | None]]) -> list[str]:
    """One line per group of compared runs written by differing harness versions (e.g. runs unpacked
    from another researcher's bundle beside one's own); groups of config.json records."""
    return comparison_lines(groups, harness_key, describe_harness, "harness version", unrecorded_alone=False)

"""Where a run computes and how it stays reproducible: device choice, seeding, RNG state, full float32."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from bench.errors import HarnessError


class DeviceError(HarnessError, RuntimeError):
    """A requested device that this machine does not have."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present, else the CPU; `cuda` without a GPU is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"--device {name} asked for a GPU but CUDA is not available; use --device cpu or auto"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def full_float32() -> None:
    """Deterministic cuDNN without TF32: convolutions on Ampere and newer GPUs default to TF32 (a 10-bit
    mantissa), which moved a small Hessian eigenvalue by ~1e-4 relative and GPU outputs ~1e-3 away from
    the CPU's on an H200. The reference ran in full float32 on pre-TF32 GPUs."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch (CPU and CUDA) RNGs, and deterministic full-float32 cuDNN."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    full_float32()


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

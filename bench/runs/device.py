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
    """Every global RNG's state as plain data (tensors, ints, floats, strings): a checkpoint holds it
    and is read without unpickling Python or NumPy objects."""
    version, words, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "python": {
            "version": version,
            "state": torch.tensor(words, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "bit_generator": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _python_state(state: dict[str, Any]) -> tuple:
    s = state["python"]
    gauss = s["gauss_next"]
    return (
        int(s["version"]),
        tuple(int(w) for w in s["state"].tolist()),
        None if gauss is None else float(gauss),
    )


def _numpy_state(state: dict[str, Any]) -> tuple:
    s = state["numpy"]
    keys = np.asarray(s["keys"].cpu().numpy(), dtype=np.uint32)
    return str(s["bit_generator"]), keys, int(s["pos"]), int(s["has_gauss"]), float(s["cached_gaussian"])


def check_rng_state(state: dict[str, Any]) -> None:
    """Raise (KeyError, TypeError, ValueError, RuntimeError, AttributeError) unless `state` is one that
    `set_rng_state` can apply; tries it on private generators, so no global RNG changes."""
    random.Random().setstate(_python_state(state))
    np.random.RandomState().set_state(_numpy_state(state))
    torch.Generator().set_state(state["torch"])
    cuda = state.get("cuda", [])
    if not isinstance(cuda, list) or not all(
        isinstance(t, torch.Tensor) and t.dtype == torch.uint8 for t in cuda
    ):
        raise TypeError("cuda RNG states must be a list of uint8 tensors")


def set_rng_state(state: dict[str, Any]) -> None:
    """Apply a state of `rng_state()` to every global RNG."""
    random.setstate(_python_state(state))
    np.random.set_state(_numpy_state(state))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])

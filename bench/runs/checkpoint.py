"""checkpoint.pt: everything a run needs to resume, as plain data that loads without running code.

A pickle can run any code while it is read, and a run directory may come from anyone. So the checkpoint
holds only tensors and plain containers (dict, list, tuple, str, int, float, bool, None), and it is read
with `torch.load(weights_only=True)`, which rebuilds exactly those and refuses a file that names any
other Python object before anything in it runs. NumPy arrays (the alpha history, the eigenvector) are
stored as tensors, the Python and NumPy RNG states as tensors and numbers (bench.runs.device).

A checkpoint is read in two steps, both before anything is loaded: `read` checks the file, its format
version and its layout; `load_into` checks that it fits the freshly built run (every tensor's name and
shape, the optimizers' parameter groups, the plug-in's keys), then loads it. A file that fails either
step raises `CheckpointError`: one line naming the file and the fix (start the run over with --force).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from bench import results
from bench.errors import HarnessError
from bench.runs.device import check_rng_state

if TYPE_CHECKING:
    from bench.runs.parts import RunParts

# The layout's version, stored under FORMAT_KEY. 1 (no key): checkpoints of harness versions before it,
# which held NumPy arrays and so cannot be read without unpickling arbitrary objects.
FORMAT_VERSION = 2
FORMAT_KEY = "checkpoint_format"

_FIX = "rerun its bench.run command with --force to start this run over"


class CheckpointError(HarnessError, RuntimeError):
    """A checkpoint.pt that is not plain data, is cut short, or has another format or layout."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}; nothing was loaded from it, {_FIX}")


class _Bad(ValueError):
    """A layout problem found while checking a checkpoint (becomes a CheckpointError)."""


@dataclass
class Checkpoint:
    """A run's state after `epoch` (0-based), as the trainer writes and resumes it."""

    epoch: int
    model: Mapping[str, Tensor]
    alphas: list[Tensor]
    w_optim: dict[str, Any]
    a_optim: dict[str, Any]
    scheduler: dict[str, Any]
    plugin: dict[str, Any]  # the plug-in's extra_state()
    rng: dict[str, Any]  # bench.runs.device.rng_state()
    rows: list[dict[str, Any]]
    correlation: list[dict[str, Any]]
    correlation_archs: list[dict[str, Any]]
    alpha_history: dict[int, list[np.ndarray]]
    eig_vector: np.ndarray | None
    path: Path | None = field(default=None, compare=False)  # where it was read from


# ---- writing -------------------------------------------------------------------------------------
def plain(obj: Any, where: str = "checkpoint") -> Any:
    """`obj` with NumPy scalars as Python numbers and NumPy arrays as tensors; TypeError (a harness bug)
    for anything else that `torch.load(weights_only=True)` would refuse."""
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.array(obj))
    if isinstance(obj, Tensor):
        return obj.detach()
    if isinstance(obj, dict):  # OrderedDict stays one: torch state dicts carry _metadata in it
        out = type(obj)((k, plain(v, f"{where}[{k!r}]")) for k, v in obj.items())
        if hasattr(obj, "_metadata"):
            out._metadata = obj._metadata  # type: ignore[attr-defined]
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(plain(v, f"{where}[{i}]") for i, v in enumerate(obj))
    raise TypeError(f"{where} is a {type(obj).__name__}, which a checkpoint cannot hold (plain data only)")


def to_plain(ck: Checkpoint) -> dict[str, Any]:
    """What `save` writes: the checkpoint as plain data, with its format version."""
    return {
        FORMAT_KEY: FORMAT_VERSION,
        "results_version": results.RESULTS_VERSION,
        "epoch": int(ck.epoch),
        "model": ck.model,
        "alphas": [a.detach().cpu() for a in ck.alphas],
        "w_optim": ck.w_optim,
        "a_optim": ck.a_optim,
        "scheduler": plain(ck.scheduler, "scheduler"),
        "plugin": plain(ck.plugin, "plugin"),
        "rng": ck.rng,
        "rows": plain(ck.rows, "rows"),
        "correlation": plain(ck.correlation, "correlation"),
        "correlation_archs": plain(ck.correlation_archs, "correlation_archs"),
        "alpha_history": {int(e): plain(arrays, "alpha_history") for e, arrays in ck.alpha_history.items()},
        "eig_vector": plain(ck.eig_vector, "eig_vector"),
    }


def save(ck: Checkpoint, path: Path) -> None:
    """Write `ck` to `path` atomically (a crash leaves the previous checkpoint in place)."""
    buffer = io.BytesIO()
    torch.save(to_plain(ck), buffer)
    results.atomic_write_bytes(Path(path), buffer.getvalue())


# ---- reading -------------------------------------------------------------------------------------
def read(path: Path) -> Checkpoint:
    """The checkpoint at `path`, on the CPU, its format and layout checked; CheckpointError otherwise.

    Nothing in the file runs: only tensors and plain containers are rebuilt."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(path, _not_plain(path)) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"is cut short or not a torch file ({first})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(path, f"holds a {type(raw).__name__}, not a checkpoint")
    version = raw.get(FORMAT_KEY, 1)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            path, f"has checkpoint format {version!r}; this harness reads format {FORMAT_VERSION}"
        )
    try:
        return _from_plain(raw, path)
    except (_Bad, KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        problem = str(exc) if isinstance(exc, _Bad) else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(path, f"does not hold a valid checkpoint ({problem})") from None


def _not_plain(path: Path) -> str:
    """What is wrong with a file weights_only refused: the objects its pickle names, read from its
    opcodes without running them."""
    try:
        names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - only for the message; the file is refused either way
        names = []
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    if names and all(n.startswith("numpy") for n in names):
        return f"holds NumPy objects ({shown}), as checkpoints of harness versions before format 2 do"
    return f"is not plain data: it names Python objects ({shown or 'unknown'}), which could run code"


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise _Bad(what)


def _dicts(value: Any, name: str) -> list[dict[str, Any]]:
    _expect(
        isinstance(value, list) and all(isinstance(r, dict) for r in value), f"{name}: not a list of dicts"
    )
    return list(value)


def _optim_layout(state: Any, name: str) -> dict[str, Any]:
    _expect(isinstance(state, dict), f"{name}: not a dict")
    _expect(isinstance(state.get("state"), dict), f"{name}: no per-parameter state")
    groups = state.get("param_groups")
    _expect(
        isinstance(groups, list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups),
        f"{name}: malformed param_groups",
    )
    return state


def _from_plain(raw: dict[str, Any], path: Path) -> Checkpoint:
    epoch = raw["epoch"]
    _expect(type(epoch) is int and epoch >= 0, f"epoch {epoch!r}")
    model = raw["model"]
    _expect(
        isinstance(model, Mapping)
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in model.items()),
        "model: not a state dict of tensors",
    )
    alphas = raw["alphas"]
    _expect(isinstance(alphas, list) and all(isinstance(a, Tensor) for a in alphas), "alphas: not tensors")
    _expect(isinstance(raw["scheduler"], dict), "scheduler: not a dict")
    _expect(isinstance(raw["plugin"], dict), "plugin: not a dict")
    _expect(isinstance(raw["rng"], dict), "rng: not a dict")
    check_rng_state(raw["rng"])
    rows = _dicts(raw["rows"], "rows")
    _expect([r.get("epoch") for r in rows] == list(range(epoch + 1)), f"rows are not epochs 0..{epoch}")
    history = raw["alpha_history"]
    _expect(
        isinstance(history, dict) and sorted(history) == list(range(epoch + 1)),
        f"alpha_history is not epochs 0..{epoch}",
    )
    for arrays in history.values():
        _expect(
            isinstance(arrays, list)
            and len(arrays) == len(alphas)
            and all(
                isinstance(a, Tensor) and a.shape == b.shape for a, b in zip(arrays, alphas, strict=False)
            ),
            "alpha_history: an epoch's alphas differ from the checkpoint's",
        )
    eig = raw.get("eig_vector")
    _expect(eig is None or isinstance(eig, Tensor), "eig_vector: not a tensor")
    return Checkpoint(
        epoch=epoch,
        model=model,
        alphas=alphas,
        w_optim=_optim_layout(raw["w_optim"], "w_optim"),
        a_optim=_optim_layout(raw["a_optim"], "a_optim"),
        scheduler=raw["scheduler"],
        plugin=raw["plugin"],
        rng=raw["rng"],
        rows=rows,
        correlation=_dicts(raw.get("correlation", []), "correlation"),
        correlation_archs=_dicts(raw.get("correlation_archs", []), "correlation_archs"),
        alpha_history={e: [a.numpy() for a in arrays] for e, arrays in history.items()},
        eig_vector=None if eig is None else eig.numpy(),
        path=path,
    )


# ---- loading into a run --------------------------------------------------------------------------
def _shapes_fit(saved: Mapping[str, Tensor], live: Mapping[str, Tensor], what: str) -> None:
    missing, unexpected = sorted(set(live) - set(saved)), sorted(set(saved) - set(live))
    _expect(not missing and not unexpected, f"{what}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, tensor in live.items():
        _expect(
            saved[name].shape == tensor.shape,
            f"{what}: {name} has shape {tuple(saved[name].shape)}, the run's {tuple(tensor.shape)}",
        )


def _optimizer_fits(saved: dict[str, Any], optim: torch.optim.Optimizer, what: str) -> None:
    params = [p for g in optim.param_groups for p in g["params"]]
    groups = saved["param_groups"]
    _expect(
        [len(g["params"]) for g in groups] == [len(g["params"]) for g in optim.param_groups],
        f"{what}: other parameter groups than the run's",
    )
    ids = [i for g in groups for i in g["params"]]
    _expect(sorted(ids) == list(range(len(params))), f"{what}: parameter ids are not 0..{len(params) - 1}")
    where = dict(zip(ids, params, strict=True))
    for i, entry in saved["state"].items():
        _expect(i in where and isinstance(entry, dict), f"{what}: state of an unknown parameter {i!r}")
        for key, value in entry.items():
            if isinstance(value, Tensor) and value.dim() > 0:  # per-weight buffers; scalars like Adam's step
                _expect(value.shape == where[i].shape, f"{what}: {key} of parameter {i} has another shape")


def check_fits(parts: RunParts, ck: Checkpoint, optimizers: bool) -> None:
    """Raise CheckpointError unless every part of `ck` fits the freshly built run `parts`."""
    try:
        _shapes_fit(ck.model, parts.model.state_dict(), "model")
        _expect(
            [tuple(a.shape) for a in ck.alphas] == [tuple(a.shape) for a in parts.alphas],
            "alphas: other shapes than the run's search space",
        )
        expected = set(parts.plugin.extra_state())
        _expect(
            set(ck.plugin) in (expected, set()),
            f"plugin state: keys {sorted(ck.plugin)}, not {sorted(expected)}",
        )
        if optimizers:
            _optimizer_fits(ck.w_optim, parts.w_optim, "w_optim")
            _optimizer_fits(ck.a_optim, parts.a_optim, "a_optim")
            _expect(type(ck.scheduler.get("last_epoch")) is int, "scheduler: no last_epoch")
    except _Bad as exc:
        raise CheckpointError(ck.path or results.CHECKPOINT, f"does not fit this run ({exc})") from None


def load_into(parts: RunParts, ck: Checkpoint, optimizers: bool) -> None:
    """Check that `ck` fits `parts`, then load its supernet, alphas and plug-in state (and, with
    `optimizers`, the torch optimizers' and the schedule's, to continue training)."""
    check_fits(parts, ck, optimizers)
    try:
        parts.model.load_state_dict(ck.model)
        with torch.no_grad():
            for a, saved in zip(parts.alphas, ck.alphas, strict=True):
                a.copy_(saved.to(a.device))
        parts.plugin.load_extra_state(ck.plugin)
        if optimizers:
            parts.w_optim.load_state_dict(ck.w_optim)
            parts.a_optim.load_state_dict(ck.a_optim)
            parts.scheduler.load_state_dict(ck.scheduler)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # after the checks: not expected
        raise CheckpointError(
            ck.path or results.CHECKPOINT, f"does not fit this run ({type(exc).__name__}: {exc})"
        ) from None


def check_resumable(run_dir: Path) -> None:
    """Before bench.run touches `run_dir`: a run that will resume must have a readable checkpoint.

    Complete runs are skipped without reading theirs; a run without a checkpoint starts from scratch."""
    run_dir = Path(run_dir)
    status = results.read_json(run_dir / results.STATUS_JSON)
    path = run_dir / results.CHECKPOINT
    if (status and status.get("state") == "complete") or not path.exists():
        return
    read(path)

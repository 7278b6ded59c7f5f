"""Rebuild a run's trained supernet from its directory (config.json + checkpoint.pt), for analyses.

The model is built by the construction code the trainer uses (bench.runs.parts), so it is exactly the
network that was trained, and the checkpoint is loaded without touching the run directory (the
trainer's resume would rewrite epochs.csv and alphas.npz). It is read as plain data, so nothing in it
runs (bench.runs.checkpoint). The search data come from the same loaders bench.run uses; tests and
callers with data in memory pass it in instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bench import results
from bench.data.splits import SearchData
from bench.errors import HarnessError
from bench.runs import checkpoint, parts
from bench.runs.config import ConfigError, RunConfig

log = logging.getLogger(__name__)


class RestoreError(HarnessError, RuntimeError):
    """A run directory that cannot be turned back into a model (missing/corrupt files, no data)."""


@dataclass
class RestoredRun:
    """A trained supernet in eval mode with its final alphas, plug-in and search data."""

    run_dir: Path
    cfg: RunConfig
    model: nn.Module
    alphas: list[Tensor]
    alpha_names: list[str]
    plugin: Any  # optimizers.OneShotOptimizer
    data: SearchData
    epoch: int  # the last epoch the checkpoint holds
    device: torch.device


def read_config(run_dir: Path) -> RunConfig:
    record = results.read_json(Path(run_dir) / results.CONFIG_JSON)
    if not record or "config" not in record:
        raise RestoreError(
            f"{run_dir}: config.json is missing or unreadable; pass a run directory written by bench.run"
        )
    try:
        return RunConfig.from_dict(dict(record["config"]))
    except (ConfigError, TypeError) as exc:
        raise RestoreError(
            f"{run_dir}: config.json does not fit this harness ({exc}); use a matching version"
        ) from None


def search_data(cfg: RunConfig, data_dir: Path | None = None) -> SearchData:
    """The run's search data from the loader bench.run uses (its benchmark's)."""
    from bench.benchmarks import UnknownBenchmarkError, resolve

    try:
        _, paths = resolve(cfg.benchmark, data_dir)
    except UnknownBenchmarkError:
        raise RestoreError(
            f"benchmark {cfg.benchmark!r} is not registered here; pass the search data explicitly"
        ) from None
    return parts.load_data(cfg, paths)


def load_run(
    run_dir: Path | str, data: SearchData | None = None, data_dir: Path | None = None, device: str = "auto"
) -> RestoredRun:
    """The supernet, alphas and plug-in as of the run's last checkpoint, on `device`, in eval mode.

    Seeds the global RNGs with the run's seed (as the trainer's construction does).
    """
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    cfg.device = device
    path = run_dir / results.CHECKPOINT
    if not path.exists():
        raise RestoreError(
            f"{run_dir}: no checkpoint.pt; only runs trained by bench.run (which checkpoints) can be restored"
        )
    try:
        state = checkpoint.read(path)  # plain data only, checked before the data and model are built
        if data is None:
            data = search_data(cfg, data_dir)
        run = parts.build_parts(cfg, data)  # the trainer's own construction: same network, plug-in, alphas
        checkpoint.load_into(run, state, optimizers=False)
    except checkpoint.CheckpointError as exc:
        raise RestoreError(str(exc)) from None
    run.model.eval()
    return RestoredRun(
        run_dir=run_dir,
        cfg=cfg,
        model=run.model,
        alphas=[a.detach() for a in run.alphas],
        alpha_names=list(run.space.alpha_shapes()),
        plugin=run.plugin,
        data=data,
        epoch=state.epoch,
        device=run.device,
    )

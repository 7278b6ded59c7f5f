"""Building a run's parts: its ground-truth table and search data, and the supernet, alphas, plug-in and
torch optimizers of its config. The one way to build them, used by the trainer and by restore alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from bench.benchmarks import get_benchmark
from bench.data.splits import STREAM_PLUGIN_VALID, Augmentation, SearchData, batch_stream
from bench.runs.config import RunConfig
from bench.runs.device import resolve_device, seed_everything
from bench.search.spaces import SearchSpace
from bench.search.supernet import Supernet
from optimizers import OneShotOptimizer, SearchContext


# ---- ground truth and data -----------------------------------------------------------------------
# The trainer's and restore's one way to the benchmark's table and data (tests replace these two).
def open_table(benchmark: str, paths: Any) -> Any:
    """The ground-truth table of `benchmark` (a bench.truth.base.GroundTruth)."""
    return get_benchmark(benchmark).open_table(paths)


def load_data(cfg: RunConfig, paths: Any) -> SearchData:
    """The run's search data, from its benchmark."""
    return get_benchmark(cfg.benchmark).search_data(cfg, paths)


# ---- the search itself ---------------------------------------------------------------------------
@dataclass
class RunParts:
    """A freshly built search: what the trainer trains and what restore loads a checkpoint into
    (bench.runs.checkpoint.load_into)."""

    space: SearchSpace
    model: nn.Module
    alphas: list[Tensor]
    weight_params: list[Tensor]
    w_optim: torch.optim.Optimizer
    a_optim: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    plugin: OneShotOptimizer
    hp: Any
    epochs: int
    device: torch.device


def augmentation(cfg: RunConfig, data: SearchData) -> Augmentation | None:
    """The run's training transform on `data` (None: not augmented)."""
    if not (cfg.augment and data.augment):
        return None
    return data.augmentation(cfg.crop_padding, cfg.cutout_length if cfg.cutout else 0, cfg.cutout_prob)


def validation_stream(
    cfg: RunConfig, data: SearchData, device: torch.device, epoch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless shuffled passes over the architecture half, each with its smaller last batch, augmented
    like the search data: a plug-in's own validation iterator (RSWS' candidate scoring)."""
    return batch_stream(
        data.x_valid, data.y_valid, cfg.batch_size, cfg.seed, epoch, STREAM_PLUGIN_VALID, device,
        augment=augmentation(cfg, data), partial=True,
    )  # fmt: skip


def build_parts(cfg: RunConfig, data: SearchData) -> RunParts:
    """Seed everything with the run's seed, then build its supernet, alphas, torch optimizers and plug-in."""
    device = resolve_device(cfg.device)
    opt_cls = cfg.plugin()
    hp = cfg.hyperparameters()
    epochs = cfg.resolved_epochs(opt_cls.reference_epochs)
    space = SearchSpace(cfg.space)
    seed_everything(cfg.seed)
    model = Supernet(
        space,
        init_channels=cfg.init_channels,
        num_classes=data.num_classes,
        in_channels=data.in_channels,
        cells_per_stack=cfg.cells_per_stack,
        bn_momentum=cfg.bn_momentum,
        head_bn_momentum=cfg.head_bn_momentum,
        downsample_padding=cfg.downsample_padding,
        **opt_cls.supernet_kwargs(hp),
    ).to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    alphas = space.init_alphas(generator=gen, device=device)
    weight_params = list(model.parameters())
    w_optim = torch.optim.SGD(
        weight_params, lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optim, T_max=epochs, eta_min=cfg.w_lr_min)
    a_optim = torch.optim.Adam(
        alphas, lr=cfg.a_lr, betas=(cfg.a_beta1, cfg.a_beta2), weight_decay=cfg.a_weight_decay
    )
    ctx = SearchContext(
        model=model,
        space=space,
        alphas=alphas,
        w_optim=w_optim,
        a_optim=a_optim,
        grad_clip=cfg.grad_clip,
        epochs=epochs,
        weight_params=weight_params,
        zero_grad_set_to_none=cfg.zero_grad_set_to_none,
        validation_stream=functools.partial(validation_stream, cfg, data, device),
        validation_pass=math.ceil(len(data.x_valid) / cfg.batch_size),
    )
    plugin = opt_cls(ctx, hp)
    return RunParts(
        space, model, alphas, weight_params, w_optim, a_optim, scheduler, plugin, hp, epochs, device
    )

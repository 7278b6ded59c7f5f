"""Run configuration: one plain dataclass, presets, and `--set key=value` overrides.

Defaults are the NAS-Bench-1Shot1 reference protocol. Every value ends up in `config.json`, so a
run is described by its directory alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any

from bench.errors import ConfigError

PRESETS = ("paper", "quick")


@dataclass
class RunConfig:
    """Everything that defines one search run (one optimizer, space, seed and setting)."""

    optimizer: str = "darts"
    space: int = 1
    seed: int = 0
    benchmark: str = "digits"  # resolved: "nb101" or "digits"
    preset: str = "paper"
    epochs: int | None = None  # None: the optimizer's reference epoch count
    batch_size: int = 96
    init_channels: int = 16
    cells_per_stack: int = 3  # 3 stacks x 3 = 9 cells
    train_portion: float = 0.5  # share of the training split that trains the weights
    data_limit: int | None = None  # use only this many training images (None: all)
    # weights: SGD, cosine-annealed
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    # architecture: Adam
    a_lr: float = 3e-4
    a_beta1: float = 0.5
    a_beta2: float = 0.999
    a_weight_decay: float = 1e-3
    augment: bool = True  # random crop + flip on CIFAR-10 (never on 8x8 digits)
    reference_quirks: bool = False  # reproduce the reference supernet's pooling and BN momentum
    bn_momentum: float | None = None  # None: the supernet's default (NB-101's, or the reference's)
    # measurements
    hessian: bool = True
    hessian_every: int = 1
    hessian_method: str = "lanczos"  # or "exact"
    # Lanczos' Hessian-vector products: "reverse" keeps one double-backward graph (fastest);
    # "segmented" holds one cell's graph at a time (about a third of the memory, ~1.4x the time)
    hessian_hvp: str = "reverse"
    hessian_batch_size: int | None = None  # None: batch_size
    eval_oneshot: bool = True  # one-shot validation accuracy after each epoch
    device: str = "auto"
    # plug-in hyperparameters (validated by the optimizer's own dataclass)
    optimizer_params: dict[str, Any] = field(default_factory=dict)

    def resolved_epochs(self, reference_epochs: int) -> int:
        return self.epochs if self.epochs is not None else reference_epochs

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}")
        return cls(**d)


# The quick preset trades fidelity for CPU minutes: fewer epochs, smaller batches and width.
QUICK_OVERRIDES: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "init_channels": 8,
    "data_limit": 2000,
}


# Benchmark-specific defaults, applied before presets and overrides. Digits has ~10 search steps per
# epoch, so NB-101's BN momentum (0.003) would leave running statistics near their initial values
# for most of the search; 8x8 digits are not augmented.
BENCHMARK_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"bn_momentum": 0.1, "augment": False},
    "nb101": {},
}


def field_default(name: str) -> Any:
    for f in fields(RunConfig):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(name)


def config_keys() -> list[str]:
    return [f.name for f in fields(RunConfig) if f.name != "optimizer_params"]


def to_json(cfg: RunConfig) -> str:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True)

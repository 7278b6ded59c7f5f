"""Run configuration: one plain dataclass that resolves its preset and validates itself.

Resolution order: field defaults (the NAS-Bench-1Shot1 reference protocol) -> the benchmark's defaults ->
the preset -> explicit overrides (`--set key=value`, strings or values). Plug-in settings land in
`optimizer_params`, parsed by the plug-in's own dataclass, and the plug-in checks them against the run
(`OneShotOptimizer.check_run`). Every value ends up in `config.json`, so a run is described by its
directory alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bench.errors import ConfigError
from bench.settings import field_types, parse_value

PRESETS = ("paper", "quick")
BENCHMARKS = ("nb101", "digits")
# Keys that say which run this is rather than how it runs; never an override.
IDENTITY_KEYS = frozenset({"optimizer", "space", "seed", "benchmark", "preset", "optimizer_params"})


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
    # BN for one-shot accuracies: "recalibrate" (statistics re-estimated at the evaluated weights on
    # bn_recal_batches training batches), "eval" (the search's running statistics), "batch" (batch stats)
    oneshot_bn: str = "recalibrate"
    bn_recal_batches: int = 10
    correlation_every: int = 0  # one-shot vs ground-truth correlation every K epochs (and the last); 0: off
    correlation_samples: int = 100  # models scored (all unique models of the space when it covers them)
    device: str = "auto"
    # plug-in hyperparameters (validated by the optimizer's own dataclass)
    optimizer_params: dict[str, Any] = field(default_factory=dict)

    # ---- resolution -----------------------------------------------------------------------------
    @classmethod
    def resolve(
        cls,
        optimizer: str,
        space: int = 1,
        *,
        benchmark: str = "digits",
        preset: str = "paper",
        overrides: Mapping[str, Any] | None = None,
        seed: int = 0,
        device: str = "auto",
    ) -> RunConfig:
        """The validated config of one run: defaults, then benchmark defaults, preset, overrides."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        if benchmark not in BENCHMARKS:
            raise ConfigError(f"unknown benchmark {benchmark!r}; choose one of: {', '.join(BENCHMARKS)}")
        cfg = cls(
            optimizer=optimizer, space=space, seed=seed, benchmark=benchmark, preset=preset, device=device
        )
        for key, value in {**BENCHMARK_DEFAULTS[benchmark], **PRESET_OVERRIDES[preset]}.items():
            setattr(cfg, key, value)
        from optimizers.registry import hyperparameter_names

        own = field_types(cls)
        plugin_keys = set(hyperparameter_names(cfg.plugin()))
        params: dict[str, Any] = {}
        for key, value in (overrides or {}).items():
            if key in IDENTITY_KEYS:
                raise ConfigError(f"--set {key}=...: use the --{key} option instead")
            if key in own:
                setattr(cfg, key, parse_value(key, value, own[key]) if isinstance(value, str) else value)
            elif key in plugin_keys:
                params[key] = value
            else:
                known = ", ".join(sorted(cls.setting_names(optimizer)))
                raise ConfigError(f"--set {key}: unknown setting for {optimizer}; known: {known}")
        hp = cfg.plugin_hyperparameters(params)
        cfg.optimizer_params = {k: getattr(hp, k) for k in params}  # parsed values, as config.json shows
        cfg.validate()
        return cfg

    @classmethod
    def setting_names(cls, optimizer: str) -> set[str]:
        """Every key `--set` accepts for this optimizer: run settings and the plug-in's own."""
        from optimizers import get_optimizer
        from optimizers.registry import hyperparameter_names

        own = {f.name for f in fields(cls)} - IDENTITY_KEYS
        return own | set(hyperparameter_names(get_optimizer(optimizer)))

    def plugin(self) -> Any:
        """The optimizer plug-in class (raises UnknownOptimizerError, a HarnessError)."""
        from optimizers import get_optimizer

        return get_optimizer(self.optimizer)

    def hyperparameters(self) -> Any:
        """The plug-in's hyperparameter dataclass for this run: the one place it is built."""
        return self.plugin_hyperparameters(self.optimizer_params)

    def plugin_hyperparameters(self, params: Mapping[str, Any]) -> Any:
        from optimizers import build_hyperparameters

        return build_hyperparameters(self.plugin(), params)

    def validate(self) -> None:
        """Raise ConfigError (message: the problem and the fix) for impossible settings."""
        from bench.search.hessian import HVP_MODES, METHODS
        from bench.search.spaces import SearchSpace

        SearchSpace(self.space)  # UnknownSpaceError names the valid spaces
        for key in ("batch_size", "init_channels", "cells_per_stack", "hessian_every", "bn_recal_batches"):
            if getattr(self, key) < 1:
                raise ConfigError(f"--set {key}={getattr(self, key)}: must be at least 1")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"--epochs {self.epochs}: must be at least 1")
        if not 0.0 < self.train_portion < 1.0:
            raise ConfigError(f"--set train_portion={self.train_portion}: must lie strictly between 0 and 1")
        if self.hessian_method not in METHODS:
            raise ConfigError(f"--set hessian_method={self.hessian_method}: choose {' or '.join(METHODS)}")
        if self.hessian_hvp not in HVP_MODES:
            raise ConfigError(f"--set hessian_hvp={self.hessian_hvp}: choose {', '.join(HVP_MODES)}")
        if self.data_limit is not None and self.data_limit < 2 * self.batch_size:
            raise ConfigError(f"--set data_limit={self.data_limit}: needs at least 2 x batch_size images")
        from bench.runs.oneshot import BN_MODES

        if self.oneshot_bn not in BN_MODES:
            raise ConfigError(f"--set oneshot_bn={self.oneshot_bn}: choose {', '.join(BN_MODES)}")
        if self.correlation_every < 0:
            raise ConfigError(f"--set correlation_every={self.correlation_every}: must be >= 0 (0 = off)")
        if self.correlation_samples < 3:
            raise ConfigError(
                f"--set correlation_samples={self.correlation_samples}: needs at least 3 models"
            )
        plugin = self.plugin()
        plugin.check_run(self, self.hyperparameters())

    def with_seed(self, seed: int) -> RunConfig:
        return dataclasses.replace(self, seed=seed, optimizer_params=dict(self.optimizer_params))

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


PRESET_OVERRIDES: dict[str, dict[str, Any]] = {"paper": {}, "quick": QUICK_OVERRIDES}

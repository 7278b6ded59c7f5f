"""Run configuration: one plain dataclass that resolves its preset and validates itself.

The field defaults are the published scripts' protocol (the `paper` preset): the scripts behind
NAS-Bench-1Shot1's figures and SDARTS/MS-DARTS' Figure 3; the documentation's protocols page
(docs/protocols.md) lists each setting's source in the released code and its `corrected` value.
Resolution order (all in `RunConfig.resolve`):

1. field defaults (= paper);
2. for each layer of the preset (paper: paper; corrected: corrected; quick: paper, then quick): the
   layer's run settings (`PRESET_SETTINGS`), then the optimizer's own protocol for that layer
   (`OneShotOptimizer.preset_settings`: its epoch budget, RSWS's batch 64 and clip 0.25, ...);
3. the benchmark's adjustments (`bench.benchmarks.Benchmark.adjustments`): only where a preset value
   cannot work on that benchmark (the 8x8 digits are never augmented; NB-101's BN momentum 0.003 is
   raised to 0.1 on digits' ~6 steps per epoch; the supernet's cells per stack mirror the digits
   ground-truth network when that has the supernet's 3 stacks), each one recorded with its reason in
   `benchmark_overrides`, so a preset's fidelity settings never change silently;
4. explicit overrides (`--set key=value`, strings or values), which beat everything.

Plug-in settings land in `optimizer_params`, parsed by the plug-in's own dataclass, and the plug-in
checks them against the run (`OneShotOptimizer.check_run`). Every value ends up in `config.json`, so a
run is described by its directory alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench import results
from bench.benchmarks import get_benchmark, with_budgets
from bench.data.splits import CROP_PADDINGS
from bench.errors import ConfigError, UsageError
from bench.settings import field_types, parse_value

PRESETS = ("paper", "corrected", "quick")
# Keys that say which run this is rather than how it runs; never an override.
IDENTITY_KEYS = frozenset({"optimizer", "space", "seed", "benchmark", "preset", "optimizer_params"})
# Keys resolve() derives; never an override either.
DERIVED_KEYS = frozenset({"benchmark_overrides"})
# Settings whose value is a comma-separated list (one run), not a grid of values (one run each).
LIST_KEYS = frozenset({"truth_budgets"})

HESSIAN_BATCHES = ("last", "random", "fixed")
HESSIAN_WEIGHTS = ("search", "eval")
LOOKUP_ALPHAS = ("start", "end")


@dataclass
class RunConfig:
    """Everything that defines one search run (one optimizer, space, seed and setting).

    Defaults: the published scripts' values (`paper`); the protocols page (docs/protocols.md) gives each
    one's source file and the `corrected` value.
    """

    optimizer: str = "darts"
    space: int = 1
    seed: int = 0
    benchmark: str = "digits"  # resolved: a registered name (bench.benchmarks)
    preset: str = "paper"
    epochs: int | None = None  # None: the optimizer's reference epoch count (its paper budget)
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
    # `scheduler.step()` at the START of each epoch, as the scripts: epoch e trains at eta(e + 1), the
    # last epoch at w_lr_min. False: epoch e trains at eta(e), starting at w_lr.
    scheduler_step_first: bool = True
    # PyTorch 1.3's optimizer.zero_grad() zeroed gradients in place, so parameters that got no gradient
    # in a step (ops GDAS did not sample) still moved by weight decay and momentum; True: set to None
    # (today's PyTorch default), they stand still.
    zero_grad_set_to_none: bool = False
    # architecture: Adam
    a_lr: float = 3e-4
    a_beta1: float = 0.5
    a_beta2: float = 0.999
    a_weight_decay: float = 1e-3
    # data
    partial_batch: bool = True  # epochs end with the smaller remainder batch (261 steps on CIFAR-10)
    augment: bool = True  # random crop + flip on CIFAR-10 (never on 8x8 digits)
    crop_padding: str = "black"  # black: pad before normalization (scripts); mean: zeros after it
    cutout: bool = False  # DARTS' cutout on the search data (NB-1Shot1's regularization study)
    cutout_length: int = 16
    cutout_prob: float = 1.0
    # supernet
    bn_momentum: float = 0.997  # PyTorch momentum of every ConvBnRelu; the scripts pass TF's decay 0.997
    head_bn_momentum: float = 0.1  # the head's BatchNorm (PyTorch's default in the scripts)
    downsample_padding: int = 1  # max-pool padding between stacks: 1 = scripts (32->17->9), 0 = NB-101
    # measurements
    hessian: bool = True
    hessian_every: int = 1
    hessian_method: str = "lanczos"  # or "exact"
    # Lanczos' Hessian-vector products: "reverse" keeps one double-backward graph (fastest);
    # "segmented" holds one cell's graph at a time (about a third of the memory, ~1.4x the time)
    hessian_hvp: str = "reverse"
    # last: the epoch's last search batch of the validation half, augmented (SDARTS/MS-DARTS);
    # random: a fresh random validation batch, augmented (RobustDARTS); fixed: one unaugmented batch per run
    hessian_batch: str = "last"
    hessian_batch_size: int | None = None  # random/fixed only; None: batch_size
    # search: the plug-in's own forward and mixing weights (GDAS: Gumbel at the current tau, as
    # SDARTS/MS-DARTS measured it); eval: its deterministic eval_weights (softmax(alpha)) on all ops
    hessian_weights: str = "search"
    # False (scripts): the Hessian's train-mode forward updates the BN running statistics; True: restored
    hessian_restore_bn: bool = False
    hessian_first: bool = True  # measure the Hessian before the one-shot evaluation (scripts' order)
    # start: an epoch's row looks up the alphas saved at the START of that epoch (the scripts); end: after it
    lookup_alphas: str = "start"
    eval_oneshot: bool = True  # one-shot validation accuracy after each epoch
    # BN for one-shot accuracies: "recalibrate" (statistics re-estimated at the evaluated weights on
    # bn_recal_batches training batches), "eval" (the search's running statistics), "batch" (batch stats)
    oneshot_bn: str = "recalibrate"
    bn_recal_batches: int = 10
    correlation_every: int = 0  # one-shot vs ground-truth correlation every K epochs (and the last); 0: off
    correlation_samples: int = 100  # models scored (all unique models of the space when it covers them)
    device: str = "auto"
    # architecture selection after the search (bench.runs.selection): argmax = the per-epoch rows only;
    # pt = DARTS-PT's perturbation-based selection, written to selection.csv
    selection: str = "argmax"
    pt_tune_epochs: int = 5  # selection=pt: fine-tuning epochs between decisions (release: --proj_intv 5)
    # True: CPU kernels, BLAS path and thread count pinned so that the numbers do not depend on the x86
    # machine or --threads (bench/runs/reproducible.py; slower, CPU only)
    reproducible: bool = False
    # Ground truth at these training budgets too, beside the standard one: per-budget columns in
    # epochs.csv (`--set truth_budgets=4,12,36,108`); empty: the standard budget only, schema unchanged
    truth_budgets: tuple[int, ...] = ()
    # plug-in hyperparameters (validated by the optimizer's own dataclass)
    optimizer_params: dict[str, Any] = field(default_factory=dict)
    # settings the benchmark changed from the preset's value, with the reason (written by resolve())
    benchmark_overrides: dict[str, str] = field(default_factory=dict)

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
        bench = get_benchmark(benchmark)  # UnknownBenchmarkError (a ConfigError) names the registered ones
        from optimizers.registry import hyperparameter_names

        cfg = cls(
            optimizer=optimizer, space=space, seed=seed, benchmark=benchmark, preset=preset, device=device
        )
        own = field_types(cls)
        plugin = cfg.plugin()
        plugin_keys = set(hyperparameter_names(plugin))
        params: dict[str, Any] = {}

        def apply(key: str, value: Any, source: str) -> None:
            if key in IDENTITY_KEYS:
                raise ConfigError(f"--set {key}=...: use the --{key} option instead")
            if key in DERIVED_KEYS:
                raise ConfigError(f"--set {key}=...: {key} is derived from the benchmark, not a setting")
            if key in own:
                setattr(cfg, key, parse_value(key, value, own[key]) if isinstance(value, str) else value)
            elif key in plugin_keys:
                params[key] = value
            else:
                known = ", ".join(sorted(cls.setting_names(optimizer)))
                raise ConfigError(f"{source} {key}: unknown setting for {optimizer}; known: {known}")

        for layer in PRESET_LAYERS[preset]:
            for key, value in {**PRESET_SETTINGS[layer], **plugin.preset_settings(layer)}.items():
                apply(key, value, f"preset {layer}:")
        overrides = dict(overrides or {})
        for key, (value, why) in bench.adjustments(cfg).items():
            if key not in overrides:
                cfg.benchmark_overrides[key] = f"{getattr(cfg, key)!r} -> {value!r}: {why}"
                setattr(cfg, key, value)
        for key, value in overrides.items():
            apply(key, value, "--set")
        cfg.truth_budgets = tuple(sorted(set(cfg.truth_budgets)))
        hp = cfg.plugin_hyperparameters(params)
        cfg.optimizer_params = {k: getattr(hp, k) for k in params}  # parsed values, as config.json shows
        cfg.validate()
        return cfg

    @classmethod
    def setting_names(cls, optimizer: str) -> set[str]:
        """Every key `--set` accepts for this optimizer: run settings and the plug-in's own."""
        from optimizers import get_optimizer
        from optimizers.registry import hyperparameter_names

        own = {f.name for f in fields(cls)} - IDENTITY_KEYS - DERIVED_KEYS
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
        for key, choices in (
            ("hessian_batch", HESSIAN_BATCHES),
            ("hessian_weights", HESSIAN_WEIGHTS),
            ("lookup_alphas", LOOKUP_ALPHAS),
            ("crop_padding", CROP_PADDINGS),
        ):
            if getattr(self, key) not in choices:
                raise ConfigError(f"--set {key}={getattr(self, key)}: choose {' or '.join(choices)}")
        if self.hessian_batch == "last" and self.hessian_batch_size is not None:
            raise ConfigError(
                f"--set hessian_batch_size={self.hessian_batch_size}: the last search batch has the size it "
                "has; use it with hessian_batch=random or fixed, or drop it"
            )
        if self.hessian_batch_size is not None and self.hessian_batch_size < 1:
            raise ConfigError(f"--set hessian_batch_size={self.hessian_batch_size}: must be at least 1")
        for key in ("bn_momentum", "head_bn_momentum"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ConfigError(f"--set {key}={getattr(self, key)}: a PyTorch momentum lies in (0, 1]")
        if self.downsample_padding not in (0, 1):
            raise ConfigError(
                f"--set downsample_padding={self.downsample_padding}: choose 1 (scripts) or 0 (NB-101)"
            )
        if self.cutout_length < 1:
            raise ConfigError(f"--set cutout_length={self.cutout_length}: must be at least 1")
        if not 0.0 <= self.cutout_prob <= 1.0:
            raise ConfigError(f"--set cutout_prob={self.cutout_prob}: a probability lies in [0, 1]")
        from bench.runs.oneshot import BN_MODES

        if self.oneshot_bn not in BN_MODES:
            raise ConfigError(f"--set oneshot_bn={self.oneshot_bn}: choose {', '.join(BN_MODES)}")
        from bench.runs.selection import SELECTIONS

        if self.selection not in SELECTIONS:
            raise ConfigError(f"--set selection={self.selection}: choose {' or '.join(SELECTIONS)}")
        if self.pt_tune_epochs < 0:
            raise ConfigError(
                f"--set pt_tune_epochs={self.pt_tune_epochs}: must be >= 0 (0 = no fine-tuning)"
            )
        if self.correlation_every < 0:
            raise ConfigError(f"--set correlation_every={self.correlation_every}: must be >= 0 (0 = off)")
        if self.correlation_samples < 3:
            raise ConfigError(
                f"--set correlation_samples={self.correlation_samples}: needs at least 3 models"
            )
        if self.reproducible and self.device.startswith("cuda"):
            raise ConfigError(
                f"--set reproducible=true pins CPU kernels; it cannot run on --device {self.device}: "
                "use --device cpu"
            )
        self._check_truth_budgets()
        plugin = self.plugin()
        from optimizers.base import OneShotOptimizer

        if (
            self.hessian
            and self.hessian_hvp == "segmented"
            and self.hessian_weights == "search"
            and plugin.forward is not OneShotOptimizer.forward
        ):
            raise ConfigError(
                f"--set hessian_hvp=segmented: {self.optimizer} runs its own forward, which cannot be taken "
                "apart into stages; use hessian_hvp=reverse, or hessian_weights=eval"
            )
        plugin.check_run(self, self.hyperparameters())

    def _check_truth_budgets(self) -> None:
        held = get_benchmark(self.benchmark).budgets
        lacking = [b for b in self.truth_budgets if b not in held]
        if not lacking:
            return
        wanted = ",".join(map(str, self.truth_budgets))
        if len(held) <= 1:
            others = with_budgets()
            raise ConfigError(
                f"--set truth_budgets={wanted}: the {self.benchmark} table holds one budget "
                f"({', '.join(map(str, held)) or 'unnamed'}); per-budget ground truth needs a table with "
                f"several, e.g. --benchmark {' or '.join(others)}"
            )
        raise ConfigError(
            f"--set truth_budgets={wanted}: the {self.benchmark} table has no budget "
            f"{', '.join(map(str, lacking))}; it holds {', '.join(map(str, sorted(held)))}"
        )

    def with_seed(self, seed: int) -> RunConfig:
        return dataclasses.replace(self, seed=seed, optimizer_params=dict(self.optimizer_params))

    def resolved_epochs(self, reference_epochs: int) -> int:
        return self.epochs if self.epochs is not None else reference_epochs

    def to_dict(self) -> dict[str, Any]:
        """As config.json holds it: lists where the dataclass has tuples (so a reread compares equal)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if k in LIST_KEYS else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown}")
        d = {k: tuple(v) if k in LIST_KEYS else v for k, v in d.items()}  # JSON has lists, not tuples
        return cls(**d)


# `corrected`: today's corrected protocol. Each value differs from the scripts' (the field default) on
# purpose; the protocols page (docs/protocols.md) says why each one matters.
CORRECTED_SETTINGS: dict[str, Any] = {
    "bn_momentum": 0.003,  # PyTorch's equivalent of NAS-Bench-101's TF decay 0.997
    "head_bn_momentum": 0.003,
    "downsample_padding": 0,  # NAS-Bench-101's pooling: 32 -> 16 -> 8
    "scheduler_step_first": False,  # epoch e trains at eta(e): the schedule starts at w_lr
    "zero_grad_set_to_none": True,  # ops a step did not use stand still
    "partial_batch": False,  # full batches only (BatchNorm never sees a 40-image batch)
    "crop_padding": "mean",  # zeros after normalization
    "hessian_batch": "fixed",  # one unaugmented validation batch per run: epochs comparable
    "hessian_weights": "eval",  # softmax(alpha) for every method: methods comparable
    "hessian_restore_bn": True,  # a measurement that changes nothing it measures
    "hessian_first": False,  # one-shot evaluation on the weight steps' statistics
    "lookup_alphas": "end",  # an epoch's row describes the alphas that epoch produced
}

# The quick preset trades fidelity for CPU minutes: fewer epochs, smaller batches and width. It is a
# layer on top of `paper`, so every protocol setting stays the scripts'.
QUICK_SETTINGS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "init_channels": 8,
    "data_limit": 2000,
}

PRESET_SETTINGS: dict[str, dict[str, Any]] = {
    "paper": {},  # the field defaults are the scripts' values
    "corrected": CORRECTED_SETTINGS,
    "quick": QUICK_SETTINGS,
}
# The layers each preset applies in order (each layer's run settings, then the optimizer's own).
PRESET_LAYERS: dict[str, tuple[str, ...]] = {
    "paper": ("paper",),
    "corrected": ("corrected",),
    "quick": ("paper", "quick"),
}


def check_compatible(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to resume a run written by another results version or with other settings."""
    existing = results.existing_config(Path(run_dir))
    if existing is None:
        return
    old = dict(existing.get("config", {}))
    new = dict(config)
    old.pop("device", None)
    new.pop("device", None)
    # A setting added to the harness after the run was written ran at its default.
    defaults = RunConfig().to_dict()
    for key in set(new) - set(old):
        if key in defaults:
            old[key] = defaults[key]
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UsageError(f"{run_dir} holds a run with other settings ({', '.join(diff)}); use another --out")

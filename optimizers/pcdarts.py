"""PC-DARTS (Xu et al., ICLR 2020): partial channel connections with channel shuffle.

Each mixed op runs its ops on the first C/K channels only, concatenates the untouched rest and
channel-shuffles with K groups (the supernet's `partial_channels=K`, requested through
`supernet_kwargs`). PC-DARTS' edge normalization needs nothing extra here: every choice block's input
is already a softmax(input alphas)-weighted sum of its candidate parents, which is exactly the
normalized edge weighting. Everything else is first-order DARTS.

K must divide `init_channels` (the supernet says so with a clear error otherwise), so tiny test
configurations use init_channels = 4 or `--set k=2`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError
from bench.settings import Range
from optimizers.base import OneShotOptimizer
from optimizers.registry import register


@dataclass
class PcDartsHyperparameters:
    k: int = 4  # 1/K of the channels go through the ops

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"--set k={self.k}: must be at least 1 (1 = plain DARTS)")


@register("pcdarts")
class PcDarts(OneShotOptimizer):
    label = "PC-DARTS"
    reference_epochs = 100
    Hyperparameters = PcDartsHyperparameters
    tunable = {"k": Range(choices=(2, 4))}  # both divide every preset's channel count

    @classmethod
    def supernet_kwargs(cls, hp: Any) -> dict[str, Any]:
        return {"partial_channels": hp.k}

    @classmethod
    def check_run(cls, cfg: Any, hp: Any) -> None:
        if cfg.init_channels % hp.k:
            raise ConfigError(
                f"{cls.name}: init_channels={cfg.init_channels} is not divisible by its partial-channel "
                f"factor {hp.k}; set init_channels to a multiple of {hp.k} or change k"
            )

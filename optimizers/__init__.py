"""One-shot NAS optimizers as small plug-ins, registered by name."""

from optimizers.base import OneShotOptimizer, SearchContext, StepStats
from optimizers.registry import (
    UnknownOptimizerError,
    available,
    build_hyperparameters,
    get_optimizer,
    register,
)

__all__ = [
    "OneShotOptimizer",
    "SearchContext",
    "StepStats",
    "UnknownOptimizerError",
    "available",
    "build_hyperparameters",
    "get_optimizer",
    "register",
]

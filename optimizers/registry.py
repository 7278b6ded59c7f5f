"""Optimizer plug-ins by name: `@register("name")` on a class in any module of this package."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from bench.errors import ConfigError, HarnessError
from bench.settings import field_types, parse_value
from optimizers.base import OneShotOptimizer

T = TypeVar("T", bound=type[OneShotOptimizer])
_NOT_PLUGINS = {"base", "registry"}
_REGISTRY: dict[str, type[OneShotOptimizer]] = {}


class UnknownOptimizerError(HarnessError, KeyError):
    """An optimizer name nobody registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a plug-in available to `--optimizer name`."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"optimizer name {name!r} registered twice")
        cls.name = name
        if "label" not in vars(cls):  # not inherited: SDARTS-ADV must not be drawn as SDARTS-RS
            cls.label = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_plugins() -> None:
    import optimizers

    for info in pkgutil.iter_modules(optimizers.__path__):
        if info.name not in _NOT_PLUGINS and not info.name.startswith("_"):
            importlib.import_module(f"optimizers.{info.name}")


def available() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


def labels() -> dict[str, str]:
    """Registered name -> the label figures and tables show."""
    return {name: get_optimizer(name).label for name in available()}


def get_optimizer(name: str) -> type[OneShotOptimizer]:
    names = available()
    if name not in _REGISTRY:
        raise UnknownOptimizerError(f"unknown optimizer {name!r}; choose one of: {', '.join(names)}")
    return _REGISTRY[name]


def build_hyperparameters(cls: type[OneShotOptimizer], overrides: Mapping[str, Any]) -> Any:
    """The plug-in's hyperparameter dataclass with `overrides` (strings or values) applied."""
    hp_cls = cls.Hyperparameters
    annotations = field_types(hp_cls)
    values = {}
    for key, value in overrides.items():
        if key not in annotations:
            known = ", ".join(annotations) or "none"
            raise ConfigError(f"unknown setting {key!r} for optimizer {cls.name!r} (its settings: {known})")
        values[key] = parse_value(key, value, annotations[key]) if isinstance(value, str) else value
    return hp_cls(**values)


def hyperparameter_names(cls: type[OneShotOptimizer]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls.Hyperparameters)]

"""Typed settings from `--set key=value` strings, for any plain dataclass (run config, plug-in
hyperparameters).

Types come from `typing.get_type_hints`, so a plug-in's dataclass parses the same whether or not its
module postpones annotations (`from __future__ import annotations` turns them into strings).
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from typing import Any

from bench.errors import ConfigError


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type of a dataclass (strings from postponed annotations resolved)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, f.type) for f in fields(cls)}


def _optional_base(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); `X` -> (X, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else tp), len(rest) < len(args)
    return tp, False


def parse_value(key: str, text: str, tp: Any) -> Any:
    """Parse `text` to the type a dataclass field declares; errors name the key and the fix."""
    base, optional = _optional_base(tp)
    if optional and text.lower() in ("none", "null"):
        return None
    if base is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"--set {key}={text}: expected true or false")
    if base in (int, float):
        try:
            return base(text)
        except ValueError:
            hint = " or none" if optional else ""
            article = "an" if base is int else "a"
            raise ConfigError(f"--set {key}={text}: expected {article} {base.__name__}{hint}") from None
    if base is str:
        return text
    if typing.get_origin(base) is tuple:  # tuple[X, ...]: a comma-separated list of X
        (item, *_) = typing.get_args(base)
        return tuple(parse_value(key, part.strip(), item) for part in text.split(",") if part.strip())
    raise ConfigError(f"--set {key}: values of type {tp} cannot be set from the command line")


@dataclass(frozen=True)
class Range:
    """Where hyperparameter optimization (`python -m bench.hpo`) may look for a setting's value.

    Either an interval [low, high] (log-uniform with `log=True`, whole numbers with `integer=True`) or a
    tuple of `choices`. Plug-ins declare theirs in `OneShotOptimizer.tunable`; the trainer's live in
    bench/runs/hpo.py.
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.choices:
            if self.low is not None or self.high is not None:
                raise ValueError("a Range has either choices or low/high, not both")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(f"a Range needs low < high (got {self.low}, {self.high}) or choices")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-uniform Range needs low > 0 (got {self.low})")

    def describe(self) -> str:
        """`[0.001, 1] log` or `{2, 4}`, for listings and errors."""
        if self.choices:
            return "{" + ", ".join(map(str, self.choices)) + "}"
        kind = " log" if self.log else ""
        kind += " int" if self.integer else ""
        return f"[{self.low:g}, {self.high:g}]{kind}"

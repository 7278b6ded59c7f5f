"""Typed settings from `--set key=value` strings, for any plain dataclass (run config, plug-in
hyperparameters).

Types come from `typing.get_type_hints`, so a plug-in's dataclass parses the same whether or not its
module postpones annotations (`from __future__ import annotations` turns them into strings).
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
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
    raise ConfigError(f"--set {key}: values of type {tp} cannot be set from the command line")

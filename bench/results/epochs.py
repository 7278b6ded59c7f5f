"""epochs.csv, written and read in one place: its dtypes (text columns stay text), its column order
(the schema's, per-repeat columns as many as the benchmark trains) and the forms callers need."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from bench.results import files, schema

DTYPES: dict[str, type] = {name: str for name in schema.TEXT_COLUMNS}


def rows_to_frame(rows: Sequence[Mapping[str, Any]], repeats: int = schema.DEFAULT_REPEATS) -> pd.DataFrame:
    """Rows as a frame in the schema's column order (missing columns NaN, unknown ones after)."""
    frame = pd.DataFrame(list(rows))
    known = schema.columns(repeats)
    return frame.reindex(columns=[*known, *(c for c in frame.columns if c not in known)])


def write_epochs(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    repeats: int = schema.DEFAULT_REPEATS,
    budgets: Sequence[int] = (),
) -> None:
    """Rewrite the whole CSV atomically (runs have at most a few hundred rows)."""
    files.write_table(path, rows, schema.columns(repeats, budgets))


def read_frame(path: Path) -> pd.DataFrame:
    """epochs.csv as written: text columns as strings, numbers as numbers, the schema's columns first
    (a column an older file lacks is NaN). Raises OSError / ValueError / pandas' ParserError on a
    missing or unreadable file; `read_epochs` and `poll_rows` are the forgiving forms."""
    frame = pd.read_csv(path, dtype=DTYPES)
    return frame.reindex(columns=schema.ordered(frame.columns))


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The rows of epochs.csv as dicts ([] when the file does not exist yet)."""
    if not Path(path).exists():
        return []
    return read_frame(path).to_dict("records")


def poll_rows(path: Path) -> list[dict[str, Any]]:
    """epochs.csv as dicts with numbers parsed, without pandas (the progress display polls this often);
    [] when missing, and what parsed of a hand-edited or foreign file."""
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    rows = []
    try:
        for raw in csv.DictReader(io.StringIO(text)):
            rows.append(
                {k: v if k in schema.TEXT_COLUMNS else _number(v) for k, v in raw.items() if k is not None}
            )
    except csv.Error:
        pass  # what parsed is still worth showing
    return rows


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return math.nan
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value

"""Writing a run's files so that a crash never leaves a half-written one in place (write to a hidden
temporary, then rename), and reading them back: JSON records, small tidy tables, the alphas."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.10g"  # every CSV of a run: enough digits to round-trip the table's accuracies


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write then rename, so a crash never leaves a half-written file in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's content, or None when it is missing or unreadable (e.g. cut by a crash)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def table_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as CSV text, `columns` first (missing ones empty), any other keys after them."""
    frame = pd.DataFrame(list(rows))
    extra = [c for c in frame.columns if c not in columns]
    return frame.reindex(columns=[*columns, *extra]).to_csv(index=False, float_format=FLOAT_FORMAT)


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Any small tidy table of a run, rewritten atomically, known columns first (runs have at most a
    few hundred rows, so a rewrite is the append that survives a crash)."""
    atomic_write_text(path, table_text(rows, columns))


def write_alphas(path: Path, history: Mapping[int, Sequence[np.ndarray]], names: Sequence[str]) -> None:
    """Alphas after every epoch: one array per arch tensor, stacked over epochs."""
    epochs = sorted(history)
    arrays: dict[str, np.ndarray] = {"epochs": np.asarray(epochs, dtype=np.int64)}
    for i, name in enumerate(names):
        arrays[name] = np.stack([np.asarray(history[e][i]) for e in epochs]) if epochs else np.zeros(0)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_alphas(path: Path) -> tuple[list[int], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as z:
        epochs = z["epochs"].tolist()
        return epochs, {k: z[k] for k in z.files if k != "epochs"}


def harness_version() -> str | None:
    """The installed harness package's version, which config.json and bundles record (None when the
    package is not installed, e.g. run from a bare checkout)."""
    from importlib import metadata

    try:
        return metadata.version("nasbench-1shot1-harness")
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    """The harness's git commit, which every config.json records (None outside a checkout)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None

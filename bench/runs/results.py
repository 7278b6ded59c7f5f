"""Tidy results: the column list, deterministic run paths, atomic writes, loading many runs.

One row per run x epoch in `epochs.csv`; run-level facts in `config.json` beside it; the alphas after
every epoch in `alphas.npz`. Paths carry no timestamp, so rerunning a command resumes it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# 2: hessian_eig_max became |lambda_max| (as SDARTS/MS-DARTS report it) beside the new
# hessian_lambda_max; config.json gained the protocol settings (presets paper/corrected/quick); the
# one-shot accuracy re-estimates BN (the eval-mode value in the `_evalbn` columns); correlation files.
RESULTS_VERSION = 2

COLUMNS: tuple[str, ...] = (
    "benchmark",
    "space",
    "optimizer",
    "tag",
    "seed",
    "epoch",
    "arch_hash",
    "matrix",
    "ops",
    "oneshot_train_loss",
    "oneshot_train_acc",
    "oneshot_valid_loss",
    "oneshot_valid_acc",
    "oneshot_valid_loss_evalbn",
    "oneshot_valid_acc_evalbn",
    "valid_acc_r0",
    "valid_acc_r1",
    "valid_acc_r2",
    "test_acc_r0",
    "test_acc_r1",
    "test_acc_r2",
    "valid_acc_mean",
    "test_acc_mean",
    "valid_error_mean",
    "test_error_mean",
    "test_regret",
    "hessian_eig_max",
    "hessian_lambda_max",
    "lr",
    "epoch_seconds",
    "hessian_seconds",
    "wallclock_s",
)
CORRELATION_COLUMNS: tuple[str, ...] = (
    "epoch", "n", "oneshot_acc_mean",
    "spearman_valid", "kendall_valid", "top10_overlap_valid",
    "spearman_test", "kendall_test", "top10_overlap_test",
    "seconds",
)  # fmt: skip
CORRELATION_ARCH_COLUMNS: tuple[str, ...] = (
    "epoch", "arch_hash", "oneshot_valid_loss", "oneshot_valid_acc", "valid_acc_mean", "test_acc_mean",
)  # fmt: skip
# What every column holds (the README's results section says the same in prose).
COLUMN_DOCS: dict[str, str] = {
    "benchmark": "ground truth of the run: nb101 (NAS-Bench-101) or digits (the embedded benchmark)",
    "space": "NAS-Bench-1Shot1 search space (1, 2 or 3)",
    "optimizer": "plug-in name",
    "tag": "the run's setting: preset plus --set overrides (its directory name)",
    "seed": "the run's seed",
    "epoch": "0-based search epoch",
    "arch_hash": "NB-101 hash of the discretized architecture looked up in this row (see lookup_alphas)",
    "matrix": "its pruned NB-101 adjacency matrix (JSON)",
    "ops": "its pruned NB-101 op list",
    "oneshot_train_loss": "mean training loss of the epoch's weight steps (training half)",
    "oneshot_train_acc": "their accuracy",
    "oneshot_valid_loss": "one-shot loss of the supernet on the whole validation half after the epoch",
    "oneshot_valid_acc": "its accuracy (NaN with eval_oneshot=false), BN statistics re-estimated at the "
    "evaluated weights (oneshot_bn)",
    "oneshot_valid_loss_evalbn": "the same loss with the running statistics the search left (eval mode)",
    "oneshot_valid_acc_evalbn": "its accuracy",
    "valid_acc_r0": "ground-truth validation accuracy, repeat 0 (r1, r2: the other repeats)",
    "valid_acc_r1": "ground-truth validation accuracy, repeat 1",
    "valid_acc_r2": "ground-truth validation accuracy, repeat 2",
    "test_acc_r0": "ground-truth test accuracy, repeat 0",
    "test_acc_r1": "ground-truth test accuracy, repeat 1",
    "test_acc_r2": "ground-truth test accuracy, repeat 2",
    "valid_acc_mean": "mean of the three validation accuracies",
    "test_acc_mean": "mean of the three test accuracies",
    "valid_error_mean": "1 - valid_acc_mean",
    "test_error_mean": "1 - test_acc_mean",
    "test_regret": "test_error_mean minus the space's best test error (NaN until the best is known)",
    "hessian_eig_max": "|lambda_max|, the absolute value of the largest algebraic eigenvalue of the "
    "validation loss's Hessian w.r.t. the alphas, as SDARTS/MS-DARTS report it (norm(max(eigvals))); "
    "NaN on epochs not measured",
    "hessian_lambda_max": "lambda_max itself, the largest algebraic eigenvalue (RobustDARTS' quantity; "
    "may be negative)",
    "lr": "learning rate of the epoch's weight steps",
    "epoch_seconds": "wall-clock seconds of the whole epoch (training, measurements, lookup)",
    "hessian_seconds": "wall-clock seconds of the Hessian measurement",
    "wallclock_s": "wall-clock seconds since the run started (resumes continue the count)",
}

# Wall-clock columns differ between otherwise identical runs; everything else is reproducible.
TIMING_COLUMNS: tuple[str, ...] = ("epoch_seconds", "hessian_seconds", "wallclock_s")

# Every name inside a run directory (and the --force shelf beside the runs) is defined here, once.
EPOCHS_CSV = "epochs.csv"
CONFIG_JSON = "config.json"
ALPHAS_NPZ = "alphas.npz"
STATUS_JSON = "status.json"
CHECKPOINT = "checkpoint.pt"
RUN_LOG = "run.log"
CORRELATION_CSV = "correlation.csv"  # one row per measured epoch
CORRELATION_ARCHS_CSV = "correlation_archs.csv"  # one row per measured epoch and sampled model
REPLACED_DIR = ".replaced"  # where --force moves old runs (hidden: never loaded as results)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", text).strip("-")


def make_tag(preset: str, overrides: Mapping[str, Any]) -> str:
    """A readable, deterministic directory name for one setting (preset plus `--set` overrides)."""
    if not overrides:
        return _slug(preset)
    parts = [f"{k}={overrides[k]}" for k in sorted(overrides)]
    return _slug(preset + "_" + "_".join(parts))


def run_dir(root: Path, benchmark: str, space: int, optimizer: str, tag: str, seed: int) -> Path:
    return Path(root) / benchmark / f"space{space}" / optimizer / tag / f"seed{seed}"


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


def rows_to_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame.reindex(columns=[*COLUMNS, *extra])


def write_table(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Any small tidy table of a run, rewritten atomically, known columns first."""
    frame = pd.DataFrame(list(rows))
    extra = [c for c in frame.columns if c not in columns]
    atomic_write_text(
        path, frame.reindex(columns=[*columns, *extra]).to_csv(index=False, float_format="%.10g")
    )


def write_epochs(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rewrite the whole CSV atomically (runs have at most a few hundred rows)."""
    atomic_write_text(path, rows_to_frame(rows).to_csv(index=False, float_format="%.10g"))


def read_epochs(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    frame = pd.read_csv(path, dtype={"arch_hash": str, "matrix": str, "ops": str, "tag": str})
    return frame.to_dict("records")


def write_alphas(path: Path, history: Mapping[int, Sequence[np.ndarray]], names: Sequence[str]) -> None:
    """Alphas after every epoch: one array per arch tensor, stacked over epochs."""
    epochs = sorted(history)
    arrays: dict[str, np.ndarray] = {"epochs": np.asarray(epochs, dtype=np.int64)}
    for i, name in enumerate(names):
        arrays[name] = np.stack([np.asarray(history[e][i]) for e in epochs]) if epochs else np.zeros(0)
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def read_alphas(path: Path) -> tuple[list[int], dict[str, np.ndarray]]:
    with np.load(path) as z:
        epochs = z["epochs"].tolist()
        return epochs, {k: z[k] for k in z.files if k != "epochs"}


def find_runs(root: Path) -> list[Path]:
    """Every run directory (one holding an epochs.csv) under `root`, sorted; hidden folders
    (like `.replaced/`, where --force keeps old runs) are not results."""
    root = Path(root)
    return sorted(
        p.parent
        for p in root.rglob(EPOCHS_CSV)
        if not any(part.startswith(".") for part in p.parent.relative_to(root).parts)
    )


def load_results(roots: Path | Iterable[Path]) -> pd.DataFrame:
    """All epochs.csv under the given directories as one long DataFrame (with a `run_dir` column)."""
    if isinstance(roots, (str, Path)):
        roots = [Path(roots)]
    frames = []
    for root in roots:
        for run in find_runs(Path(root)):
            frame = pd.read_csv(
                run / EPOCHS_CSV, dtype={"arch_hash": str, "matrix": str, "ops": str, "tag": str}
            )
            frame["run_dir"] = str(run)
            frames.append(frame)
    if not frames:
        return rows_to_frame([]).assign(run_dir=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)


def check_compatible(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Refuse to resume a run written by another results version or with other settings."""
    from bench.errors import UsageError

    existing = read_json(Path(run_dir) / CONFIG_JSON)
    if not existing:
        return
    if existing.get("results_version") != RESULTS_VERSION:
        raise UsageError(
            f"{run_dir} was written by results version {existing.get('results_version')} "
            f"(this harness writes {RESULTS_VERSION}); use another --out or move it aside"
        )
    old = dict(existing.get("config", {}))
    new = dict(config)
    old.pop("device", None)
    new.pop("device", None)
    old.setdefault("reproducible", False)  # runs written before the option computed unpinned
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UsageError(f"{run_dir} holds a run with other settings ({', '.join(diff)}); use another --out")


def git_revision() -> str | None:
    """The harness's git commit, for config.json (None outside a checkout)."""
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


def check_writable(root: Path) -> None:
    """Fail early, with the fix, when the results root cannot be written."""
    import tempfile

    from bench.errors import UsageError

    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {root}: not writable ({exc.strerror}); choose another directory") from None


def move_aside(run_dir: Path, out_root: Path) -> Path:
    """--force: keep the old run under <out>/.replaced/ instead of deleting it."""
    import shutil
    import time

    target = out_root / REPLACED_DIR / f"{run_dir.relative_to(out_root)}.{time.strftime('%Y%m%d-%H%M%S')}"
    n = 0
    while target.exists():
        n += 1
        target = target.with_name(f"{target.name}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    return target

"""Results directories -> frames: one row per run (with its settings as columns) and one per epoch.

Only files are read (epochs.csv, config.json, status.json, and alphas.npz on demand): the analysis
never needs the code that produced them. A run's identity comes from its CSV rows, falling back to the
directory layout `<benchmark>/space<k>/<optimizer>/<tag>/seed<s>/`.

Runs of one optimizer that differ in a setting (e.g. MS-DARTS with several bandwidths) are different
*groups*: their seeds are never averaged together. The group label names the settings that differ.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import names
from analysis.issues import Issue
from bench import results
from bench.errors import HarnessError
from bench.runs import machine

log = logging.getLogger(__name__)

_IDENTITY = ("benchmark", "space", "optimizer", "tag", "seed")
# Config keys that identify a run, its machine, or only whether/how often something was measured (the
# correlation scoring restores the model and every RNG, so it leaves the search's numbers unchanged):
# runs differing only in these share a setting (the report's settings table still shows them).
_NOT_SETTINGS = {"seed", "space", "benchmark", "optimizer", "device", "preset", "epochs", "optimizer_params",
                 "hessian", "hessian_every", "eval_oneshot",
                 "correlation_every", "correlation_samples",
                 "truth_budgets"}  # fmt: skip  # truth_budgets: what is looked up, not how the search runs


class AnalysisError(HarnessError, ValueError):
    """Results that cannot be analysed as asked (missing directory, no runs, mixed benchmarks ...)."""


@dataclass(frozen=True)
class Filters:
    """Which runs to analyse; empty means all."""

    benchmark: str | None = None
    spaces: tuple[int, ...] = ()
    optimizers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def match(self, run: dict[str, Any]) -> bool:
        if self.benchmark is not None and run["benchmark"] != self.benchmark:
            return False
        if self.spaces and run["space"] not in self.spaces:
            return False
        wanted = {names.optimizer_key(o) for o in self.optimizers}
        if wanted and names.optimizer_key(run["optimizer"]) not in wanted:
            return False
        return not self.tags or run["tag"] in self.tags

    def describe(self) -> str:
        parts = []
        if self.benchmark is not None:
            parts.append(f"--benchmark {self.benchmark}")
        if self.spaces:
            parts.append("--space " + ",".join(map(str, self.spaces)))
        if self.optimizers:
            parts.append("--optimizers " + ",".join(self.optimizers))
        if self.tags:
            parts.append("--tag " + ",".join(self.tags))
        return " ".join(parts) or "(no filter)"


@dataclass
class Results:
    """The selected runs: `runs` one row per run, `epochs` one row per run x epoch, and their issues."""

    root: Path
    runs: pd.DataFrame
    epochs: pd.DataFrame
    issues: list[Issue] = field(default_factory=list)

    @property
    def benchmark(self) -> str:
        values = sorted(self.runs["benchmark"].dropna().unique())
        return values[0] if len(values) == 1 else "+".join(values)

    @property
    def spaces(self) -> list[int]:
        return sorted(int(s) for s in self.runs["space"].unique())

    def groups(self) -> list[str]:
        """Group labels in the papers' optimizer order, then by setting."""
        order = self.runs.sort_values(["group_order", "group"])["group"]
        return list(dict.fromkeys(order))

    def run_dir(self, run: str) -> Path:
        return Path(self.runs.set_index("run").at[run, "run_dir"])

    def issues_of(self, *kinds: str) -> list[Issue]:
        return [i for i in self.issues if i.kind in kinds]

    def complete_runs(self) -> pd.DataFrame:
        return self.runs[self.runs["complete"]]

    def final_rows(self) -> pd.DataFrame:
        """Each complete run's row at its planned last epoch (incomplete runs have no final epoch)."""
        return at_final_epoch(self.epochs)


def at_final_epoch(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows at the planned last epoch of complete runs (a cut run's last row is not its final one)."""
    return rows[rows["complete"].astype(bool) & (rows["epoch"] == rows["final_epoch"])]


# ---- reading one run ---------------------------------------------------------------------------
def _first(frame: pd.DataFrame | None, column: str) -> Any:
    if frame is None or column not in frame:
        return None
    idx = frame[column].first_valid_index()
    return None if idx is None else frame[column].at[idx]


@functools.cache
def _config_defaults() -> dict[str, Any]:
    from bench.runs.config import RunConfig

    return RunConfig().to_dict()


def _flatten_config(record: dict[str, Any]) -> dict[str, Any]:
    """config.json -> flat columns: cfg.<key>, hp.<key>, and the machine facts as meta.<key>."""
    out: dict[str, Any] = {}
    config = record.get("config") or {}
    if config:
        # A setting added to the harness after a run was written ran at its default (as a resume reads it).
        config = {**_config_defaults(), **config}
    for key, value in config.items():
        if key != "optimizer_params":
            out[f"cfg.{key}"] = value
    for key, value in (record.get("optimizer_hyperparameters") or {}).items():
        out[f"hp.{key}"] = value
    for key in ("device", "device_name", "git_revision", "results_version", "best_test_error", "machine"):
        if key in record:
            out[f"meta.{key}"] = record[key]
    for key, value in (record.get("versions") or {}).items():
        out[f"meta.versions.{key}"] = value
    for key, value in (record.get("random_baseline") or {}).items():  # regret of a random architecture
        out[f"meta.random_baseline.{key}"] = value
    return {k: (json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v) for k, v in out.items()}


def _read_run(root: Path, run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame | None, list[Issue]]:
    rel = run_dir.relative_to(root) if run_dir != root else Path(run_dir.name)
    name = rel.as_posix()
    issues: list[Issue] = []
    try:
        frame = results.read_frame(run_dir / results.EPOCHS_CSV)
        frame = frame[pd.to_numeric(frame["epoch"], errors="coerce").notna()].copy()
        frame["epoch"] = frame["epoch"].astype(int)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        issues.append(Issue(name, "unreadable", type(exc).__name__))
        frame = None
    record = results.read_json(run_dir / results.CONFIG_JSON)
    status = results.read_json(run_dir / results.STATUS_JSON) or {}
    if record is None:
        issues.append(Issue(name, "no_config"))
        record = {}
    cfg = record.get("config") or {}
    from_path = results.parse_run_path(rel).known()
    run: dict[str, Any] = {"run": name, "run_dir": str(run_dir)}
    for key in _IDENTITY:
        value = _first(frame, key)
        if value is None:
            value = record.get(key) if key == "tag" else cfg.get(key)
        if value is None:
            value = from_path.get(key)
        run[key] = value
    run["benchmark"] = str(run["benchmark"]) if run["benchmark"] is not None else "unknown"
    run["space"] = int(run["space"]) if run["space"] is not None else -1
    run["seed"] = int(run["seed"]) if run["seed"] is not None else -1
    run["optimizer"] = str(run["optimizer"]) if run["optimizer"] is not None else "unknown"
    run["tag"] = "" if _missing(run["tag"]) else str(run["tag"])
    run["has_config"] = bool(record)
    run.update(_flatten_config(record))
    run["state"] = status.get("state", "unknown")
    run["benchmark_note"] = record.get("benchmark_note", "")
    run["has_alphas"] = (run_dir / results.ALPHAS_NPZ).exists()
    run["has_checkpoint"] = (run_dir / results.CHECKPOINT).exists()

    present: list[int] = []
    if frame is not None:
        if frame["epoch"].duplicated().any():
            dup = sorted(set(frame.loc[frame["epoch"].duplicated(), "epoch"]))
            issues.append(Issue(name, "duplicate_epochs", f"epochs {dup}"))
            frame = frame.drop_duplicates("epoch", keep="last")
        frame = frame.sort_values("epoch").reset_index(drop=True)
        present = frame["epoch"].tolist()
    planned = record.get("epochs") or status.get("epochs")
    if planned is None and run["state"] == "complete" and present:
        planned = max(present) + 1
    missing = sorted(set(range(int(planned))) - set(present)) if planned else []
    run["planned_epochs"] = int(planned) if planned else np.nan
    run["epochs_done"] = len(present)
    run["final_epoch"] = int(planned) - 1 if planned else np.nan
    run["complete"] = bool(planned) and bool(present) and not missing
    if frame is not None and not run["complete"]:
        reason = status.get("reason") or ""
        detail = f"{len(present)} of {planned or '?'} epochs, state {run['state']}" + (
            f": {reason}" if reason else ""
        )
        if missing and len(missing) < int(planned) and present and max(present) > min(missing):
            detail += f"; gaps at epochs {missing[:8]}"
        issues.append(Issue(name, "missing_epochs", detail))
    return run, frame, issues


# ---- settings and groups ------------------------------------------------------------------------
def _setting_keys(runs: pd.DataFrame) -> list[str]:
    keys = [c for c in runs.columns if c.startswith("hp.")]
    keys += [c for c in runs.columns if c.startswith("cfg.") and c[4:] not in _NOT_SETTINGS]
    return [*keys, "planned_epochs"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_value(value: Any) -> str:
    if _missing(value):
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def short_key(key: str) -> str:
    return {"planned_epochs": "epochs"}.get(key, key.split(".", 1)[-1])


def varying_keys(runs: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The keys among `keys` whose value is not the same for every run."""
    out = []
    for key in keys:
        if key in runs and runs[key].map(fmt_value).nunique() > 1:
            out.append(key)
    return out


def setting_labels(runs: pd.DataFrame, exclude: Sequence[str] = ()) -> pd.Series:
    """Per run, `key=value, ...` of the settings that differ among runs of its optimizer."""
    keys = [k for k in _setting_keys(runs) if k not in exclude]
    labels = pd.Series("", index=runs.index, dtype=object)
    for _, idx in runs.groupby("optimizer").groups.items():
        sub = runs.loc[idx]
        differ = varying_keys(sub[sub["has_config"]], keys)
        for i, row in sub.iterrows():
            labels[i] = (
                ", ".join(f"{short_key(k)}={fmt_value(row[k])}" for k in differ)
                if row["has_config"]
                else "settings unknown"
            )
    return labels


def _assign_groups(runs: pd.DataFrame) -> pd.DataFrame:
    """Label each run with its optimizer plus the settings in which it differs from its siblings."""
    runs = runs.copy()
    runs["setting"] = setting_labels(runs)
    runs["display"] = runs["optimizer"].map(names.display_name)
    runs["group"] = runs["display"] + runs["setting"].map(lambda s: f" [{s}]" if s else "")
    runs["group_order"] = runs["optimizer"].map(names.optimizer_rank)
    return runs


def _drop_duplicate_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[Issue]]:
    key = ["benchmark", "space", "group", "seed"]
    dup = runs.duplicated(key, keep="first")
    issues = []
    for _, row in runs[dup].iterrows():
        first = runs[(runs[key] == row[key]).all(axis=1)].iloc[0]["run"]
        issues.append(Issue(row["run"], "duplicate_run", f"same seed and setting as {first}"))
    return runs[~dup].reset_index(drop=True), issues


def machine_lines(runs: pd.DataFrame) -> list[str]:
    """One line per space whose compared runs came from differing machines, then one per space whose
    runs came from differing harness versions (bench.runs.machine): runs unpacked from someone else's
    bundle beside one's own are compared only with this said."""
    groups: dict[str, list[dict[str, Any] | None]] = {}
    harness: dict[str, list[dict[str, Any] | None]] = {}
    column = runs["meta.machine"] if "meta.machine" in runs else pd.Series([None] * len(runs))
    for (_, run), record in zip(runs.iterrows(), column, strict=True):
        label = f"space {run['space']}"
        groups.setdefault(label, []).append(None if _missing(record) else json.loads(record))
        version, revision = run.get("meta.versions.harness"), run.get("meta.git_revision")
        harness.setdefault(label, []).append(
            {"versions": {"harness": None if _missing(version) else version},
             "git_revision": None if _missing(revision) else revision}
        )  # fmt: skip
    return [*machine.comparison_lines(groups), *machine.harness_lines(harness)]


# ---- the whole directory ----------------------------------------------------------------------
def load(root: Path | str, filters: Filters | None = None) -> Results:
    """Every run under `root` that matches `filters`; raises AnalysisError when nothing usable is left."""
    filters = filters or Filters()
    root = Path(root)
    if not root.exists():
        raise AnalysisError(f"results directory {root} does not exist; pass the --out directory of bench.run")
    if not root.is_dir():
        raise AnalysisError(f"{root} is not a directory; pass the --out directory of bench.run")
    run_dirs = results.find_runs(root)
    if not run_dirs:
        raise AnalysisError(
            f"no runs under {root} (no epochs.csv found); run `python -m bench.run` first or pass its --out"
        )
    records, frames, issues, seen = [], {}, [], []
    for run_dir in run_dirs:
        run, frame, run_issues = _read_run(root, run_dir)
        seen.append(run)
        if not filters.match(run):
            continue
        records.append(run)
        issues.extend(run_issues)
        if frame is not None:
            frames[run["run"]] = frame
    if not records:
        raise AnalysisError(f"no runs under {root} match {filters.describe()}; present: {_inventory(seen)}")
    runs = pd.DataFrame(records)
    benchmarks = sorted(runs["benchmark"].unique())
    if len(benchmarks) > 1:
        raise AnalysisError(
            f"{root} holds runs of several benchmarks ({', '.join(benchmarks)}) whose numbers must not be "
            f"averaged together; pick one with --benchmark {benchmarks[0]}"
        )
    runs = _assign_groups(runs)
    runs, dup_issues = _drop_duplicate_runs(runs)
    issues.extend(dup_issues)
    runs = runs.sort_values(["space", "group_order", "group", "seed"]).reset_index(drop=True)
    epochs = _epoch_frame(runs, frames)
    usable = set(epochs["run"]) if len(epochs) else set()
    if not usable:
        raise AnalysisError(
            f"the {len(runs)} run(s) under {root} matching {filters.describe()} have no epoch rows yet; "
            "wait for the first epoch or check the runs' run.log"
        )
    return Results(root=root, runs=runs, epochs=epochs, issues=issues)


def _epoch_frame(runs: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All rows of the kept runs, with the run's identity, group and hyperparameters as columns."""
    meta_cols = ["run", *_IDENTITY, "group", "display", "setting", "group_order", "complete", "final_epoch"]
    meta_cols += [c for c in runs.columns if c.startswith("hp.")]
    parts = [
        frames[run].drop(columns=[c for c in meta_cols if c in frames[run].columns]).assign(run=run)
        for run in runs["run"]
        if run in frames and not frames[run].empty
    ]
    if not parts:
        return pd.DataFrame(columns=[*results.COLUMNS, *meta_cols])
    return pd.concat(parts, ignore_index=True).merge(runs[meta_cols], on="run", how="left")


def _inventory(runs: Iterable[dict[str, Any]]) -> str:
    combos = sorted({(r["benchmark"], r["space"], r["optimizer"]) for r in runs})
    shown = ", ".join(f"{b}/space{s}/{o}" for b, s, o in combos[:12])
    return shown + (f" and {len(combos) - 12} more" if len(combos) > 12 else "")


# ---- alphas ------------------------------------------------------------------------------------
def read_alpha_history(run_dir: Path) -> tuple[list[int], dict[str, np.ndarray]] | None:
    """alphas.npz of a run (epochs, name -> (epochs, rows, cols)), or None when missing/unreadable."""
    path = Path(run_dir) / results.ALPHAS_NPZ
    try:
        return results.read_alphas(path)
    except (OSError, ValueError, KeyError, EOFError):
        return None

"""Clean per-epoch measurements out of the results, with the issues that cleaning found.

Each function returns the rows that carry a finite value of one measurement and the list of runs
whose values were missing where they should not be, so no command drops a row without saying so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.issues import Issue, finite, nan_issues
from analysis.load import Results, at_final_epoch

EIG = "hessian_eig_max"
REGRET = "test_regret"
# Run-level problems every command reports, whatever it measures.
__all__ = ["EIG", "REGRET", "RUN_KINDS", "at_final_epoch", "eigenvalues", "metric", "regrets", "window_text"]
RUN_KINDS = ("unreadable", "no_config", "missing_epochs", "duplicate_epochs", "duplicate_run")


def _with_run_columns(res: Results, columns: list[str]) -> pd.DataFrame:
    present = [c for c in columns if c in res.runs]
    return res.epochs.merge(res.runs[["run", *present]], on="run", how="left")


def _true(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value is None or (isinstance(value, float) and np.isnan(value)) or bool(value)


def eigen_expected(frame: pd.DataFrame) -> pd.Series:
    """Rows where the trainer measured the eigenvalue (hessian on; every k-th epoch and the last)."""
    on = frame["cfg.hessian"].map(_true) if "cfg.hessian" in frame else pd.Series(True, index=frame.index)
    every = (
        pd.to_numeric(frame["cfg.hessian_every"], errors="coerce").fillna(1).clip(lower=1).astype(int)
        if "cfg.hessian_every" in frame
        else pd.Series(1, index=frame.index)
    )
    scheduled = (frame["epoch"] % every == 0) | (frame["epoch"] == frame["final_epoch"])
    return on & scheduled


def eigenvalues(res: Results, window: int = 1) -> tuple[pd.DataFrame, list[Issue]]:
    """Rows with a finite dominant eigenvalue; NaN at a scheduled epoch is an issue, at others not.

    `window` > 1 replaces each value by the mean of the run's last `window` measured values up to that
    epoch (trailing, so no epoch sees later ones; a run's first epochs average what exists)."""
    if window < 1:
        raise ValueError(f"window={window}: must be >= 1")
    frame = _with_run_columns(res, ["cfg.hessian", "cfg.hessian_every"])
    frame[EIG] = finite(frame[EIG])
    expected = eigen_expected(frame)
    issues: list[Issue] = []
    off = frame.loc[~frame["cfg.hessian"].map(_true), "run"].unique() if "cfg.hessian" in frame else []
    issues += [Issue(run, "no_eig", "hessian=false in config.json") for run in sorted(off)]
    issues += nan_issues(frame, EIG, kind="nan_eig", expected=expected)
    rows = frame[frame[EIG].notna()].sort_values(["run", "epoch"]).reset_index(drop=True)
    if window > 1:
        rows[EIG] = rows.groupby("run")[EIG].transform(lambda v: v.rolling(window, min_periods=1).mean())
    return rows, issues


def window_text(window: int) -> str:
    """How a figure or table states the window (empty for single epochs)."""
    if window <= 1:
        return ""
    return (
        f"each run's eigenvalue is the mean of its last {window} measured epochs (trailing window), "
        "then averaged over seeds"
    )


def metric(res: Results, column: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Rows with a finite `column`; every NaN is reported."""
    frame = res.epochs.copy()
    frame[column] = finite(frame[column])
    issues = nan_issues(frame, column, kind="nan_value")
    return frame[frame[column].notna()].reset_index(drop=True), issues


def regrets(res: Results) -> tuple[pd.DataFrame, list[Issue]]:
    """All rows (test error and regret as floats); empty regret is an issue of its own kind.

    Regret is empty by design where the ground truth knows no optimum for the space (a digits space
    not fully tabulated), so these runs are named, and keep their test error.
    """
    frame = res.epochs.copy()
    for col in ("test_error_mean", REGRET):
        frame[col] = finite(frame[col])
    issues = []
    for run, rows in frame[frame[REGRET].isna()].groupby("run", sort=True):
        issues.append(Issue(run, "no_regret", f"{len(rows)} of {int((frame['run'] == run).sum())} epochs"))
    issues += nan_issues(frame, "test_error_mean", kind="nan_value")
    return frame, issues

"""What the runs were: seeds per group, and the settings that differ between runs (from config.json)."""

from __future__ import annotations

import pandas as pd

from analysis.load import Results, fmt_value, short_key, varying_keys

_PREFIXES = ("cfg.", "hp.", "meta.")
# The run's identity: already the rows of every table (seed differs between seeds by definition).
_IDENTITY = {"cfg.seed", "cfg.space", "cfg.optimizer", "cfg.benchmark"}


def seed_ranges(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> '0–2, 5'."""
    seeds = sorted(set(int(s) for s in seeds))
    parts: list[str] = []
    start = prev = None
    for s in [*seeds, None]:
        if s is not None and prev is not None and s == prev + 1:
            prev = s
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}–{prev}")
        start = prev = s
    return ", ".join(parts)


def seed_table(res: Results) -> pd.DataFrame:
    """Per space and group: runs, complete runs and which seeds — what every number rests on."""
    rows = []
    for (space, group), runs in res.runs.groupby(["space", "group"], sort=False):
        rows.append(
            {
                "space": space,
                "optimizer": group,
                "runs": len(runs),
                "complete": int(runs["complete"].sum()),
                "seeds": seed_ranges(runs["seed"].tolist()),
            }
        )
    return pd.DataFrame(rows)


def _keys(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith(_PREFIXES) and c not in _IDENTITY] + ["planned_epochs"]


def differences(res: Results) -> pd.DataFrame:
    """Per space and group, the value of every setting that is not the same for all runs."""
    runs = res.runs
    differ = varying_keys(runs, _keys(runs))
    rows = []
    for (space, group), sub in runs.groupby(["space", "group"], sort=False):
        row = {"space": space, "optimizer": group, "seeds": seed_ranges(sub["seed"].tolist())}
        for key in differ:
            values = list(dict.fromkeys(sub[key].map(fmt_value)))
            row[short_key(key) if key.startswith(("cfg.", "hp.")) else key] = " / ".join(values)
        rows.append(row)
    return pd.DataFrame(rows)


def common(res: Results) -> dict[str, str]:
    """Settings every selected run shares (missing everywhere: left out)."""
    runs = res.runs
    differ = set(varying_keys(runs, _keys(runs)))
    out = {}
    for key in _keys(runs):
        if key in differ or key not in runs or runs[key].isna().all():
            continue
        out[short_key(key) if key.startswith(("cfg.", "hp.")) else key] = fmt_value(runs[key].iloc[0])
    return out

"""Many runs' epochs.csv as one long DataFrame."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bench.results import epochs, layout


def load_results(roots: Path | Iterable[Path]) -> pd.DataFrame:
    """All epochs.csv under the given directories as one long DataFrame (with a `run_dir` column)."""
    if isinstance(roots, (str, Path)):
        roots = [Path(roots)]
    frames = []
    for root in roots:
        for run in layout.find_runs(Path(root)):
            frames.append(epochs.read_frame(run / layout.EPOCHS_CSV).assign(run_dir=str(run)))
    if not frames:
        return epochs.rows_to_frame([]).assign(run_dir=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)

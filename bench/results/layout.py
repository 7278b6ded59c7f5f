"""Where a run's files are: every name inside a run directory, the deterministic path of a run
(`<benchmark>/space<k>/<optimizer>/<tag>/seed<s>`, no timestamp, so rerunning a command resumes it) and
its one parser, finding the runs of a tree, and the --force shelf."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError

# Every name inside a run directory (and the --force shelf beside the runs) is defined here, once.
EPOCHS_CSV = "epochs.csv"
CONFIG_JSON = "config.json"
ALPHAS_NPZ = "alphas.npz"
STATUS_JSON = "status.json"
CHECKPOINT = "checkpoint.pt"
RUN_LOG = "run.log"
CORRELATION_CSV = "correlation.csv"  # one row per measured epoch
CORRELATION_ARCHS_CSV = "correlation_archs.csv"  # one row per measured epoch and sampled model
SELECTION_CSV = "selection.csv"  # selection=pt: the selected architecture's row (bench.runs.selection)
SELECTION_DECISIONS_CSV = "selection_decisions.csv"  # selection=pt: one row per candidate scored
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


@dataclass(frozen=True)
class RunPath:
    """What a run directory's path says of its run; None where the layout does not say it."""

    benchmark: str | None = None
    space: int | None = None
    optimizer: str | None = None
    tag: str | None = None
    seed: int | None = None

    def known(self) -> dict[str, Any]:
        """The fields the path gave, by name."""
        return {k: v for k, v in vars(self).items() if v is not None}


def parse_run_path(rel: Path) -> RunPath:
    """The identity in the last five parts of `rel` (`<benchmark>/space<k>/<optimizer>/<tag>/seed<s>`);
    empty when the path is shorter, space/seed None when their part is malformed."""
    parts = Path(rel).parts
    if len(parts) < 5:
        return RunPath()
    benchmark, space, optimizer, tag, seed = parts[-5:]
    m_space = re.fullmatch(r"space(\d+)", space)
    m_seed = re.fullmatch(r"seed(\d+)", seed)
    return RunPath(
        benchmark=benchmark,
        space=int(m_space.group(1)) if m_space else None,
        optimizer=optimizer,
        tag=tag,
        seed=int(m_seed.group(1)) if m_seed else None,
    )


def _visible(path: Path, root: Path) -> bool:
    """Hidden folders (like `.replaced/`, where --force keeps old runs) are not results."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def find_runs(root: Path, marker: str = EPOCHS_CSV) -> list[Path]:
    """Every run directory (one holding `marker`, an epochs.csv by default) under `root`, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(marker) if _visible(p.parent, root))


def run_dirs(root: Path) -> list[Path]:
    """Every run directory under `root`: those with epochs.csv and those killed before their first epoch
    (only config.json or status.json); hidden folders (.replaced/) excluded."""
    found = set(find_runs(root))
    for name in (STATUS_JSON, CONFIG_JSON):
        found.update(find_runs(root, name))
    return sorted(found)


def check_writable(root: Path) -> None:
    """Fail early, with the fix, when the results root cannot be written."""
    import tempfile

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

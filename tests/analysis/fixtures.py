"""TEST FIXTURES for the analysis tests: synthetic results directories in bench.run's real layout.

Every number written here is made up (a deterministic function of optimizer, space, seed and epoch)
and every config.json says so in its `benchmark_note`; nothing here is a measurement. The files are
the ones bench.run writes: epochs.csv, config.json, alphas.npz, status.json, under
`<root>/<benchmark>/space<k>/<optimizer>/<tag>/seed<s>/`.

tests/analysis/conftest.py exposes the fixtures below to every analysis test, so the
session-wide fixtures are built once; the module itself holds no tests.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analysis.load import Results, load
from bench import results
from bench.runs.config import RunConfig
from bench.search.spaces import SearchSpace

FIXTURE_NOTE = "TEST FIXTURE: synthetic numbers written by tests/analysis/fixtures.py, not a measurement"
BEST = {1: 0.05, 2: 0.06, 3: 0.055}  # fixture optimum per space (made up)


def _offset(optimizer: str) -> float:
    return (zlib.crc32(optimizer.encode()) % 100) / 100.0


def synthetic_eig(optimizer: str, space: int, seed: int, epoch: int, bandwidth: float | None = None) -> float:
    base = 0.2 * space + _offset(optimizer) + 0.03 * seed + 0.05 * epoch
    return base / (1.0 + bandwidth) if bandwidth is not None else base


def synthetic_test_error(optimizer: str, space: int, seed: int, epoch: int) -> float:
    return BEST[space] + 0.02 / (epoch + 1) + 0.004 * seed + 0.01 * _offset(optimizer)


# config.json's machine record (bench.runs.machine); machine=None writes a run from before the record.
FIXTURE_MACHINE = {"cpu_model": "fixture CPU", "aten_capability": "AVX2", "torch": "fixture", "blas": "mkl",
                   "onednn": "fixture", "threads": 1, "reproducible": False}  # fmt: skip


def write_run(
    root: Path,
    *,
    benchmark: str = "digits",
    space: int = 1,
    optimizer: str = "darts",
    seed: int = 0,
    epochs: int = 4,
    tag: str = "paper",
    hp: Mapping[str, Any] | None = None,
    done: Iterable[int] | None = None,
    state: str | None = None,
    nan_eig_epochs: Iterable[int] = (),
    regret: bool = True,
    alphas: bool = True,
    config: bool = True,
    cfg: Mapping[str, Any] | None = None,
    baseline: Mapping[str, float] | None = None,
    machine: Mapping[str, Any] | None = FIXTURE_MACHINE,
) -> Path:
    """One synthetic run; `done` lists the epochs present (default: all), `state` the status;
    `baseline` the table's random-architecture regret (mean, median, p10, p90, n_models) for config.json."""
    hp = dict(hp or {})
    cfg_obj = RunConfig(optimizer=optimizer, space=space, seed=seed, benchmark=benchmark, epochs=epochs,
                        device="cpu", optimizer_params=dict(hp), **dict(cfg or {}))  # fmt: skip
    out = results.run_dir(root, benchmark, space, optimizer, tag, seed)
    out.mkdir(parents=True, exist_ok=True)
    present = sorted(done) if done is not None else list(range(epochs))
    nan_eig = set(nan_eig_epochs)
    bandwidth = hp.get("bandwidth")
    every = cfg_obj.hessian_every
    rows = []
    for e in present:
        err = synthetic_test_error(optimizer, space, seed, e)
        measured = cfg_obj.hessian and (e % every == 0 or e == epochs - 1)
        eig = synthetic_eig(optimizer, space, seed, e, bandwidth) if measured and e not in nan_eig else np.nan
        rows.append(
            {
                "benchmark": benchmark, "space": space, "optimizer": optimizer, "tag": tag, "seed": seed,
                "epoch": e, "arch_hash": f"{e:032x}", "matrix": "[[0]]", "ops": "input,output",
                "oneshot_train_loss": 2.0 / (e + 1) + 0.1 * seed + _offset(optimizer),
                "oneshot_train_acc": 0.5, "oneshot_valid_loss": 1.0, "oneshot_valid_acc": 0.5,
                "valid_acc_r0": 1 - err, "valid_acc_r1": 1 - err, "valid_acc_r2": 1 - err,
                "test_acc_r0": 1 - err, "test_acc_r1": 1 - err, "test_acc_r2": 1 - err,
                "valid_acc_mean": 1 - err, "test_acc_mean": 1 - err, "valid_error_mean": err,
                "test_error_mean": err, "test_regret": err - BEST[space] if regret else np.nan,
                "hessian_eig_max": eig, "lr": 0.025, "epoch_seconds": 1.0, "hessian_seconds": 0.1,
                "wallclock_s": float(e + 1),
            }
        )  # fmt: skip
    results.write_epochs(out / results.EPOCHS_CSV, rows)
    if alphas:
        shapes = SearchSpace(space).alpha_shapes()
        rng = np.random.default_rng(seed)
        target = {n: rng.normal(size=s) for n, s in shapes.items()}
        history = {e: [target[n] * (e + 1) / epochs for n in shapes] for e in present}
        results.write_alphas(out / results.ALPHAS_NPZ, history, list(shapes))
    if config:
        record = {
            "results_version": results.RESULTS_VERSION,
            "config": cfg_obj.to_dict(),
            "epochs": epochs,
            "optimizer_hyperparameters": hp,
            "device": "cpu",
            "device_name": "fixture",
            "versions": {"python": "3", "torch": "fixture", "numpy": "2"},
            "git_revision": None,
            "best_test_error": BEST[space] if regret else None,
            "tag": tag,
            "benchmark_note": FIXTURE_NOTE,
        }
        if baseline is not None:
            record["random_baseline"] = dict(baseline)
        if machine is not None:
            record["machine"] = dict(machine)
        results.write_json(out / results.CONFIG_JSON, record)
    full = len(present) == epochs
    results.write_json(
        out / "status.json",
        {"state": state or ("complete" if full else "running"), "reason": "", "epochs_done": len(present),
         "epochs": epochs},
    )  # fmt: skip
    return out


@pytest.fixture
def stub_savefig(monkeypatch: pytest.MonkeyPatch) -> None:
    """Figures are inspected as objects; rendering them costs seconds on a busy 2-core machine, so
    tests that only check which files get written use this stub (one test renders for real)."""
    from matplotlib.figure import Figure

    def fake(self: Figure, fname: Any, *args: Any, **kwargs: Any) -> None:
        data = b"\x89PNG\r\n\x1a\n TEST STUB, not a rendered figure"
        if hasattr(fname, "write"):
            fname.write(data)
        else:
            Path(fname).write_bytes(data)

    monkeypatch.setattr(Figure, "savefig", fake)


def read_all(root: Path) -> pd.DataFrame:
    """Every epochs.csv under `root`, read with plain pandas (the independent check of the loader)."""
    frames = []
    for path in sorted(Path(root).rglob(results.EPOCHS_CSV)):
        frame = pd.read_csv(path, dtype={"tag": str, "arch_hash": str})
        frame["path"] = str(path.parent)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def build_grid(root: Path) -> Path:
    """DARTS and SDARTS-RS x two spaces x three seeds, plus MS-DARTS at three bandwidths (h=3: two
    seeds), all complete, on the digits layout."""
    for space in (1, 2):
        for opt in ("darts", "sdarts-rs"):
            for seed in range(3):
                write_run(root, space=space, optimizer=opt, seed=seed)
        for h in (0.3, 1.0, 3.0):
            for seed in range(3 if h != 3.0 else 2):
                write_run(root, space=space, optimizer="msdarts", seed=seed, tag=f"paper_bandwidth={h:g}",
                          hp={"bandwidth": h, "epsilon": 0.25})  # fmt: skip
    return root


@pytest.fixture(scope="session")
def grid_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`build_grid` once per session. Read-only: tests that need damaged runs write their own."""
    return build_grid(tmp_path_factory.mktemp("analysis_grid") / "results")


@pytest.fixture(scope="session")
def grid(grid_results: Path) -> Results:
    """`grid_results` loaded once (analysis.load); commands never modify what they are given."""
    return load(grid_results)

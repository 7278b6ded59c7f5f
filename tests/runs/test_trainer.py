"""The one training loop: rows, files, determinism, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import results
from bench.results import CHECKPOINT
from bench.runs.config import RunConfig
from bench.runs.device import DeviceError, resolve_device, seed_everything
from bench.runs.trainer import Trainer


def tiny_config(**kw: object) -> RunConfig:
    base = dict(
        optimizer="darts", space=1, epochs=2, batch_size=16, init_channels=2, cells_per_stack=1,
        hessian=False, device="cpu",
    )  # fmt: skip
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


def read_csv(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / results.EPOCHS_CSV, dtype={"arch_hash": str})


def test_run_writes_one_row_per_epoch(tmp_path, fixture_table, toy_data) -> None:
    out = Trainer(tiny_config(), tmp_path, fixture_table, toy_data).run()
    assert out.state == "complete" and out.epochs == 2
    frame = read_csv(tmp_path)
    assert list(frame.columns[: len(results.COLUMNS)]) == list(results.COLUMNS)
    assert frame["epoch"].tolist() == [0, 1]
    assert (frame["benchmark"] == "fixture").all() and (frame["optimizer"] == "darts").all()
    assert frame["arch_hash"].str.len().eq(32).all()
    row = frame.iloc[-1]
    assert row["test_acc_mean"] == pytest.approx(np.mean([row[f"test_acc_r{r}"] for r in range(3)]))
    assert row["test_regret"] == pytest.approx(row["test_error_mean"] - 0.0)
    assert 0.0 <= row["oneshot_valid_acc"] <= 1.0
    assert frame["lr"].tolist() == pytest.approx([0.013, 0.001])  # paper: scheduler.step() first
    epochs, alphas = results.read_alphas(tmp_path / results.ALPHAS_NPZ)
    assert epochs == [0, 1]
    assert alphas["ops"].shape == (2, 4, 3) and alphas["inputs_4"].shape == (2, 1, 4)
    assert (tmp_path / CHECKPOINT).exists()


def test_regret_empty_when_optimum_unknown(tmp_path, toy_data) -> None:
    from tests.helpers import FixtureTable

    Trainer(tiny_config(epochs=1), tmp_path, FixtureTable(best_test_error=None), toy_data).run()
    assert read_csv(tmp_path)["test_regret"].isna().all()


def test_hessian_column_filled(tmp_path, fixture_table, toy_data) -> None:
    Trainer(tiny_config(epochs=1, hessian=True), tmp_path, fixture_table, toy_data).run()
    eig = read_csv(tmp_path)["hessian_eig_max"]
    assert eig.notna().all() and np.isfinite(eig).all()


def test_hessian_methods_agree_and_only_lanczos_keeps_a_warm_start(tmp_path, fixture_table, toy_data) -> None:
    """Lanczos (warm-started from the last epoch; both HVP forms) and the exact matrix agree."""
    settings = {
        "lanczos": {"hessian_method": "lanczos"},
        "segmented": {"hessian_method": "lanczos", "hessian_hvp": "segmented"},
        "exact": {"hessian_method": "exact"},
    }
    eigs = {}
    for name, setting in settings.items():
        trainer = Trainer(tiny_config(hessian=True, **setting), tmp_path / name, fixture_table, toy_data)
        trainer.run()
        eigs[name] = read_csv(tmp_path / name)["hessian_eig_max"].to_numpy()
        assert (trainer.eig_vector is None) == (name == "exact")
    np.testing.assert_allclose(eigs["lanczos"], eigs["exact"], rtol=1e-3)
    np.testing.assert_allclose(eigs["segmented"], eigs["lanczos"], rtol=1e-4)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=list(results.TIMING_COLUMNS))


def test_same_seed_same_csv(tmp_path, fixture_table, toy_data) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    Trainer(tiny_config(), a, fixture_table, toy_data).run()
    Trainer(tiny_config(), b, fixture_table, toy_data).run()
    pd.testing.assert_frame_equal(_comparable(read_csv(a)), _comparable(read_csv(b)))


def test_other_seed_other_alphas(tmp_path, fixture_table, toy_data) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    Trainer(tiny_config(epochs=1), a, fixture_table, toy_data).run()
    Trainer(tiny_config(epochs=1, seed=1), b, fixture_table, toy_data).run()
    _, alpha_a = results.read_alphas(a / results.ALPHAS_NPZ)
    _, alpha_b = results.read_alphas(b / results.ALPHAS_NPZ)
    assert not np.allclose(alpha_a["ops"], alpha_b["ops"])


class _Stop(Exception):
    pass


def test_interrupted_run_resumes_to_identical_rows(tmp_path, fixture_table, toy_data) -> None:
    full, cut = tmp_path / "full", tmp_path / "cut"
    cfg = tiny_config(epochs=3)
    Trainer(cfg, full, fixture_table, toy_data).run()

    def stop_after_first(row: dict) -> None:
        if row["epoch"] == 0:
            raise _Stop

    with pytest.raises(_Stop):
        Trainer(cfg, cut, fixture_table, toy_data).run(on_epoch=stop_after_first)
    assert read_csv(cut)["epoch"].tolist() == [0]
    Trainer(cfg, cut, fixture_table, toy_data).run()
    pd.testing.assert_frame_equal(_comparable(read_csv(full)), _comparable(read_csv(cut)))
    epochs, a_full = results.read_alphas(full / results.ALPHAS_NPZ)
    _, a_cut = results.read_alphas(cut / results.ALPHAS_NPZ)
    assert epochs == [0, 1, 2]
    for name in a_full:
        np.testing.assert_array_equal(a_full[name], a_cut[name])


def test_csv_ahead_of_checkpoint_is_rewritten(tmp_path, fixture_table, toy_data) -> None:
    """A crash between the CSV write and the checkpoint: the checkpoint wins, no duplicate epochs."""
    cfg = tiny_config(epochs=2)
    Trainer(cfg, tmp_path, fixture_table, toy_data).run()
    frame = read_csv(tmp_path)
    pd.concat([frame, frame.iloc[[-1]]]).to_csv(tmp_path / results.EPOCHS_CSV, index=False)
    Trainer(cfg, tmp_path, fixture_table, toy_data).run()
    assert read_csv(tmp_path)["epoch"].tolist() == [0, 1]


def test_resolve_device() -> None:
    import torch

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="--device cpu"):
            resolve_device("cuda")


def test_seeding_turns_tf32_off() -> None:
    """GPUs since Ampere run float32 convolutions in TF32 unless told not to: seeding says no."""
    import torch

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    try:
        cudnn.allow_tf32 = matmul.allow_tf32 = True
        cudnn.deterministic = False
        seed_everything(0)
        assert not cudnn.allow_tf32 and not matmul.allow_tf32
        assert cudnn.deterministic and not cudnn.benchmark
    finally:
        cudnn.allow_tf32, matmul.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved

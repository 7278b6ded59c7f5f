"""reproducible=true: epochs.csv does not depend on the CPU's ISA or thread count; the default is as before.

Other machines are stood in for by forcing this CPU's kernel choices through the environment: ATen's
(`ATEN_CPU_CAPABILITY`), oneDNN's (`ONEDNN_MAX_CPU_ISA`) and MKL's (`MKL_ENABLE_INSTRUCTIONS`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import results
from bench import run as cli
from bench.errors import HarnessError
from bench.runs import machine, reproducible
from bench.runs.config import RunConfig, check_compatible

REPO = Path(__file__).resolve().parents[2]
# A tiny real run on the shipped digits table: 2 epochs of ~6 search steps each, Hessian included.
TINY = ["--optimizer", "msdarts", "--space", "1", "--seeds", "0", "--benchmark", "digits",
        "--preset", "quick", "--set", "epochs=2", "--set", "data_limit=256", "--set", "init_channels=4",
        "--no-progress", "-q"]  # fmt: skip
AVX2_MACHINE = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
BASELINE_MACHINE = {"ATEN_CPU_CAPABILITY": "default"}


def cli_process(out: Path, env: dict[str, str], *extra: str) -> Path:
    """`python -m bench.run` in a fresh process under `env`; returns the run directory."""
    clean = {k: v for k, v in os.environ.items() if k not in machine.KERNEL_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", *TINY, "--out", str(out), *extra],
        cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (config,) = out.rglob(results.CONFIG_JSON)
    return config.parent


def numbers(run_dir: Path) -> pd.DataFrame:
    """epochs.csv without its wall-clock columns, read as text (bit-for-bit comparison)."""
    table = pd.read_csv(run_dir / results.EPOCHS_CSV, dtype=str, keep_default_na=False)
    return table.drop(columns=list(results.TIMING_COLUMNS))


def machine_of(run_dir: Path) -> dict:
    return json.loads((run_dir / results.CONFIG_JSON).read_text())["machine"]


def test_pinned_runs_agree_across_isa_and_threads(tmp_path) -> None:
    a = cli_process(tmp_path / "avx2", AVX2_MACHINE, "--set", "reproducible=true", "--threads", "2")
    b = cli_process(tmp_path / "base", BASELINE_MACHINE, "--set", "reproducible=true", "--threads", "1")
    pd.testing.assert_frame_equal(numbers(a), numbers(b))
    for run_dir in (a, b):
        record = machine_of(run_dir)
        assert record["reproducible"] and record["aten_capability"] == reproducible.PINNED_CAPABILITY
        assert record["threads"] == 1 and not record["onednn_enabled"]
    assert machine.differences(machine_of(a), machine_of(b)) == []


@pytest.mark.slow
def test_default_runs_differ_across_isa(tmp_path) -> None:
    """The control: without the option the same two stand-in machines give other numbers."""
    a = cli_process(tmp_path / "avx2", AVX2_MACHINE)
    b = cli_process(tmp_path / "base", BASELINE_MACHINE)
    assert not numbers(a).equals(numbers(b))
    assert machine.differences(machine_of(a), machine_of(b))


def test_default_path_is_unchanged() -> None:
    """Without the option nothing is pinned, no child process is started, the run dir is the same."""
    cfg = RunConfig.resolve("msdarts", 1, preset="quick")
    assert cfg.reproducible is False
    request = cli.RunRequest(cfg=cfg, tag="quick", out_root=Path("r"))
    assert not cli.needs_pinned_process([request], dask=None)
    before = (torch.get_num_threads(), torch._C._get_mkldnn_enabled(), torch._C._get_nnpack_enabled())
    with reproducible.pinned(False, torch.device("cpu")):
        assert (
            torch.get_num_threads(),
            torch._C._get_mkldnn_enabled(),
            torch._C._get_nnpack_enabled(),
        ) == before
    assert results.make_tag("quick", {}) == "quick"


def test_pinned_mode_refuses_an_unpinned_process(monkeypatch) -> None:
    monkeypatch.setattr(reproducible, "capability", lambda: "AVX512")
    with pytest.raises(HarnessError, match="ATEN_CPU_CAPABILITY=default"):
        with reproducible.pinned(True, torch.device("cpu")):
            pass


def test_pinned_mode_restores_the_process(monkeypatch) -> None:
    monkeypatch.setattr(reproducible, "problems", lambda: [])
    before = (torch.get_num_threads(), torch._C._get_mkldnn_enabled())
    with reproducible.pinned(True, torch.device("cpu")):
        assert torch.get_num_threads() == 1 and not torch._C._get_mkldnn_enabled()
    assert (torch.get_num_threads(), torch._C._get_mkldnn_enabled()) == before


def test_pinned_mode_is_cpu_only() -> None:
    with pytest.raises(HarnessError, match="--device cpu"):
        RunConfig.resolve("darts", 1, overrides={"reproducible": "true"}, device="cuda")


def test_a_grid_cannot_mix_modes() -> None:
    cfgs = [RunConfig.resolve("darts", 1, overrides={"reproducible": v}) for v in ("true", "false")]
    requests = [cli.RunRequest(cfg=c, tag=str(i), out_root=Path("r")) for i, c in enumerate(cfgs)]
    with pytest.raises(HarnessError, match="two commands"):
        cli.needs_pinned_process(requests, dask=None)


def test_old_runs_without_the_option_still_resume(tmp_path) -> None:
    cfg = RunConfig.resolve("darts", 1).to_dict()
    old = {k: v for k, v in cfg.items() if k != "reproducible"}
    results.write_json(
        tmp_path / results.CONFIG_JSON, {"results_version": results.RESULTS_VERSION, "config": old}
    )
    check_compatible(tmp_path, cfg)  # no error


def test_the_trainer_refuses_an_unpinned_process(monkeypatch, tmp_path, fixture_table, toy_data) -> None:
    """Every way into a run (the executors, HPO trials) meets the check, not only bench.run."""
    from bench.runs.trainer import Trainer

    monkeypatch.setattr(reproducible, "problems", lambda: [])  # the environment is right, the flags not
    cfg = RunConfig.resolve("darts", 1, overrides={"reproducible": "true", "epochs": 1}, device="cpu")
    with pytest.raises(HarnessError, match="oneDNN is on"):
        Trainer(cfg, tmp_path, fixture_table, toy_data)

"""`python -m bench.perf protocol`: the paper protocol's cost, its arithmetic and its usage errors."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.data.splits import epoch_batches
from bench.perf import protocol
from bench.runs.config import RunConfig

SEEDS, PARALLEL, TABLE4_SPACES = 2, 3, 2
CIFAR_HALF = 25_000  # half of CIFAR-10's 50,000 training images, written out independently


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict[str, Any]]:
    """One in-process quick run on the CPU: (exit code, stdout, the JSON record)."""
    path = tmp_path_factory.mktemp("protocol") / "protocol.json"
    out = io.StringIO()
    argv = [
        "--quick", "--spaces", "1", "--device", "cpu", "--seeds", str(SEEDS), "--parallel", str(PARALLEL),
        "--table4-spaces", str(TABLE4_SPACES), "--json", str(path),
    ]  # fmt: skip
    with contextlib.redirect_stdout(out):
        code = protocol.main(argv)
    return code, out.getvalue(), json.loads(path.read_text())


def epoch_seconds(c: dict[str, Any]) -> float:
    """Seconds per epoch recomputed from the raw measurements."""
    steps = sorted(c["step_samples"])[len(c["step_samples"]) // 2] * c["steps_per_epoch"]
    hessian = c["hessian_s"] * c["hessian_epochs"] / c["epochs"]
    evaluation = c["eval_passes"] * c["eval_batches"] * c["eval_batch_s"] + c["bn_recal_s"]
    return steps + hessian + evaluation + c["extras"]["seconds"]


def test_quick_run_measures_every_optimizer(quick: tuple[int, str, dict[str, Any]]) -> None:
    code, out, record = quick
    assert code == 0
    assert "QUICK SMOKE" in out and "SYNTHETIC" in out and "PASS" in out
    assert "reuse space 1's costs" in out
    names = set(protocol.OPTIMIZERS)
    assert names == set(protocol.FIGURE3) | {"rsws", "enas"}
    table = [line.split() for line in out.splitlines()]
    rows = {fields[0]: [float(f) for f in fields[1:]] for fields in table if fields and fields[0] in names}
    assert set(rows) == names
    extra = 7  # space, batch, steps/ep, step s, steps s/ep, hess s/ep, eval s/ep, extra s/ep, ...
    for name, numbers in rows.items():
        assert len(numbers) == 11 and all(math.isfinite(v) for v in numbers), name
        others = numbers[:extra] + numbers[extra + 1 :]
        assert all(v > 0 for v in others), name
        assert (numbers[extra] > 0) == (name in ("rsws", "enas")), name
    assert record["synthetic"] and record["quick"] and record["targets"]["pass"]
    for c in record["costs"]:
        parts = {"step", "hessian", "evaluation", "bn_recalibration"}
        assert parts | ({"extras"} if c["optimizer"] in ("rsws", "enas") else set()) == set(c["measured"])
        assert all(math.isfinite(v) and v > 0 for v in c["measured"].values())
        assert c["epoch_s"] == pytest.approx(epoch_seconds(c))


def test_epochs_and_steps_come_from_the_paper_preset(quick: tuple[int, str, dict[str, Any]]) -> None:
    costs = {c["optimizer"]: c for c in quick[2]["costs"]}
    assert costs["msdarts"]["epochs"] == 80
    assert all(costs[n]["epochs"] == 100 for n in ("darts", "pcdarts", "gdas", "sdarts-rs", "rsws", "enas"))
    assert all(c["steps_per_epoch"] == math.ceil(CIFAR_HALF / 8) for c in costs.values())  # --quick: 8
    assert all(
        c["eval_batches"] == math.ceil(CIFAR_HALF / 8) and c["eval_passes"] == 2 for c in costs.values()
    )


def test_steps_per_epoch_and_the_hessian_batch_of_the_full_protocol() -> None:
    data = protocol.synthetic_cifar10(0.5, augment=True)
    assert len(data.x_train) == len(data.x_valid) == CIFAR_HALF
    assert data.x_train.shape[1:] == (3, 32, 32) and not torch.equal(data.x_train[0], data.x_train[1])
    darts = protocol.run_config("darts", 1, None, False, "cpu")
    assert (darts.batch_size, darts.init_channels, darts.cells_per_stack) == (96, 16, 3)
    assert protocol.steps_per_epoch(darts, data) == math.ceil(CIFAR_HALF / 96) == 261
    assert protocol.hessian_batch_size(darts, data) == CIFAR_HALF - 260 * 96 == 40
    full = RunConfig.resolve("darts", 1, benchmark="nb101", overrides={"partial_batch": False}, device="cpu")
    assert protocol.steps_per_epoch(full, data) == CIFAR_HALF // 96 == 260
    assert protocol.hessian_batch_size(full, data) == 96
    rsws = protocol.run_config("rsws", 1, None, False, "cpu")  # its paper preset: batch 64
    assert protocol.steps_per_epoch(rsws, data) == math.ceil(CIFAR_HALF / 64) == 391


@pytest.mark.parametrize(
    ("n", "batch", "steps", "partial"), [(23, 5, 5, True), (23, 5, 4, False), (23, 5, 7, True)]
)
def test_last_batch_size_is_the_streams(n: int, batch: int, steps: int, partial: bool) -> None:
    x, y = torch.zeros(n, 1), torch.zeros(n)
    batches = list(epoch_batches(x, y, batch, 0, 0, 0, torch.device("cpu"), steps=steps, partial=partial))
    assert protocol.last_batch_size(n, batch, steps, partial) == len(batches[-1][0])


def test_projections_are_epochs_times_seconds_times_grid(quick: tuple[int, str, dict[str, Any]]) -> None:
    record = quick[2]
    hours = {c["optimizer"]: c["epochs"] * epoch_seconds(c) / 3600 for c in record["costs"]}  # space 1
    figure3 = sum(hours[n] for n in ("darts", "pcdarts", "gdas", "sdarts-rs", "sdarts-adv", "msdarts"))
    expected = {
        "Figure 3": (6 * 3 * SEEDS, figure3 * 3 * SEEDS),
        "Table 4": (5 * SEEDS * TABLE4_SPACES, hours["msdarts"] * 5 * SEEDS * TABLE4_SPACES),
        "NB-1Shot1 baselines": (2 * 3 * SEEDS, (hours["rsws"] + hours["enas"]) * 3 * SEEDS),
    }
    rows = {r["grid"]: r for r in record["projections"]}
    for grid, (runs, device_hours) in expected.items():
        assert rows[grid]["runs"] == runs
        assert rows[grid]["device_hours"] == pytest.approx(device_hours)
        assert rows[grid]["wall_hours"] == pytest.approx(device_hours / PARALLEL)
    assert rows["total"]["runs"] == sum(runs for runs, _ in expected.values())
    assert rows["total"]["device_hours"] == pytest.approx(sum(h for _, h in expected.values()))


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        (["--device", "tpu"], "tpu"),
        (["--steps", "0"], "--steps"),
        (["--spaces", "1,4"], "--spaces"),
        (["--parallel", "0"], "--parallel"),
        (["--table4-spaces", "4"], "--table4-spaces"),
        (["--batch", "0"], "--batch"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], word: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert protocol.main([*argv, "--json", str(tmp_path / "x.json")]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and word in err[0] and err[0].startswith(protocol.PROG)
    assert captured.out == "" and not (tmp_path / "x.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for CUDA where there is none")
def test_cuda_without_a_gpu_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert protocol.main(["--device", "cuda"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

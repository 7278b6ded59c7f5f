"""The digits benchmark's budgets: budget b trains b/108 of the full protocol's SGD steps with its own
cosine schedule (NAS-Bench-101's meaning: each budget its own training), in the same cache under its own
protocol key. The full protocol's key and numbers never change."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.truth.base import UnknownBudgetError
from bench.truth.digits import DigitsBenchmark, DigitsProtocol, RepeatResult, train_repeat
from bench.truth.digits_protocol import BUDGET_LADDER, RUN_PROTOCOL, ProtocolError, at_budget

C3, MP = "conv3x3-bn-relu", "maxpool3x3"
SPEC = ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", MP, C3, "output"])
TINY = DigitsProtocol(epochs=2, batch_size=50, train_size=100, stem_channels=4, num_stacks=1)

# The key of the shipped space-1 table's protocol: a field added later must not move it.
SHIPPED_KEY = "a78c15b5c0ec2040"


def test_the_full_protocol_keeps_its_key() -> None:
    assert RUN_PROTOCOL.key() == SHIPPED_KEY and "steps" not in RUN_PROTOCOL.to_json()
    assert at_budget(RUN_PROTOCOL, 108) is RUN_PROTOCOL


def test_budgets_are_steps_of_the_full_schedule() -> None:
    full = RUN_PROTOCOL.total_steps()
    assert full == 5 * 16  # 987 training images, batches of 64
    steps = [at_budget(RUN_PROTOCOL, b).total_steps() for b in BUDGET_LADDER]
    assert steps == [3, 9, 27, 80]
    keys = {at_budget(RUN_PROTOCOL, b).key() for b in BUDGET_LADDER}
    assert len(keys) == 4  # never mixed in one cache
    with pytest.raises(ProtocolError, match="in 1..108"):
        at_budget(RUN_PROTOCOL, 200)


def test_a_shorter_budget_is_its_own_training_not_a_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps equal to the full schedule train exactly the full protocol; fewer steps take exactly that
    many SGD steps, on a cosine schedule of their own (not the full run's first steps)."""
    import torch

    m, o = SPEC
    full = train_repeat(np.array(m), o, TINY, 0)
    same = train_repeat(np.array(m), o, replace(TINY, steps=TINY.total_steps()), 0)
    assert (same.valid_acc, same.test_acc) == (full.valid_acc, full.test_acc)
    lrs: list[float] = []
    step = torch.optim.SGD.step

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", counted)
    short = train_repeat(np.array(m), o, replace(TINY, steps=3), 0)
    assert 0.0 <= short.test_acc <= 1.0 and TINY.total_steps() == 4
    # 3 steps of their own cosine schedule: 0.05 * (1 + cos(pi * k / 3)) / 2 for k = 0, 1, 2
    assert lrs == pytest.approx([0.05, 0.0375, 0.0125])


def _recording(seen: list[DigitsProtocol]):  # noqa: ANN202
    def train(matrix, ops, protocol, repeat) -> RepeatResult:  # noqa: ANN001
        seen.append(protocol)
        acc = 0.2 + 0.7 * (protocol.total_steps() / RUN_PROTOCOL.total_steps())
        return RepeatResult(acc, acc, 0.1, 0.01 * protocol.total_steps(), 99)

    return train


def test_query_at_a_budget_trains_that_budget_once(tmp_path: Path) -> None:
    seen: list[DigitsProtocol] = []
    table = DigitsBenchmark(tmp_path / "d.sqlite", RUN_PROTOCOL, shipped=[], train_fn=_recording(seen))
    assert table.budgets == (108, 4, 12, 36)
    short = table.query(*SPEC, budget=4)
    assert {p.total_steps() for p in seen} == {3} and len(seen) == 3
    assert short.train_time == (0.03, 0.03, 0.03)
    table.query(*SPEC, budget=4)
    assert len(seen) == 3  # cached
    full = table.query(*SPEC)
    assert full.test_acc_mean > short.test_acc_mean and table.query(*SPEC, budget=108) == full
    reopened = DigitsBenchmark(tmp_path / "d.sqlite", RUN_PROTOCOL, shipped=[], train_fn=_recording(seen))
    assert reopened.query(*SPEC, budget=4) == short and len(seen) == 6


def test_an_unknown_budget_names_the_budgets(tmp_path: Path) -> None:
    table = DigitsBenchmark(tmp_path / "d.sqlite", RUN_PROTOCOL, shipped=[], train_fn=_recording([]))
    with pytest.raises(UnknownBudgetError, match="budget 5: the 'digits' table holds 108, 4, 12, 36"):
        table.query(*SPEC, budget=5)


def test_tabulate_refuses_a_budget_it_does_not_hold(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bench import tabulate

    cache = tmp_path / "c.sqlite"
    argv = ["--benchmark", "digits", "--space", "1", "--budget", "5", "--cache", str(cache)]
    assert tabulate.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --budget 5: the digits benchmark holds budgets 4, 12, 36, 108"
    assert not cache.exists()

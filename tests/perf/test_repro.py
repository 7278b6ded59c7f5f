"""`python -m bench.perf repro`: the same run with and without reproducible=true, and their time ratio."""

from __future__ import annotations

import pytest

from bench.perf import repro


def test_prints_the_ratio_of_the_two_modes(monkeypatch, capsys, tmp_path) -> None:
    calls = []

    def fake_run(args, out, pinned):  # noqa: ANN001, ANN202
        calls.append(pinned)
        return {"seconds": 30.0 if pinned else 20.0, "numbers": [{"x": pinned}], "final_regret": "0.05"}

    monkeypatch.setattr(repro, "time_run", fake_run)
    assert repro.main(["--repeats", "2", "--json", str(tmp_path / "r.json")]) == 0
    assert calls == [False, True, False, True]  # alternating, so drift in load hits both modes
    out = capsys.readouterr().out
    assert "ratio reproducible / default: 1.50" in out and "numbers identical: False" in out


def test_refuses_to_be_told_the_mode() -> None:
    with pytest.raises(SystemExit) as exc:
        repro.parse_args(["--set", "reproducible=true"])
    assert exc.value.code == 2

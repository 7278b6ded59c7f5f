"""bench.runs.hpo / `python -m bench.hpo`: ranges, a study that resumes and extends, interrupted trials
continued from their checkpoint, and bad input. Trials run on the FixtureTable and toy data (fixtures,
not a benchmark) with a tiny supernet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bench import hpo as cli
from bench.errors import ConfigError
from bench.run import parse_sets
from bench.runs import hpo
from bench.runs.config import RunConfig
from bench.runs.hpo import HpoSpec
from bench.settings import Range
from optimizers import available, get_optimizer
from optimizers.registry import hyperparameter_names
from tests.helpers import FixtureTable, make_toy_data

TINY = {"epochs": "2", "batch_size": "16", "init_channels": "4", "cells_per_stack": "1"}


class ValidFixtureTable(FixtureTable):
    """TEST FIXTURE: FixtureTable with a (made-up) best validation error, so trials report regret."""

    def best_valid_error(self, space: int) -> float:
        return 0.0


def fixture_table() -> ValidFixtureTable:  # module level: picklable for worker processes
    return ValidFixtureTable()


def toy_data(cfg: RunConfig) -> object:
    return make_toy_data()


def spec(**kw) -> HpoSpec:
    base = dict(optimizer="darts", space=1, benchmark="digits", preset="quick", fixed=dict(TINY),
                tune=["w_lr", "a_lr"], device="cpu")  # fmt: skip
    return HpoSpec(**{**base, **kw})


def study_counts(s: HpoSpec, out: Path) -> dict[str, int]:
    return hpo.counts(hpo.load(s, out))


# ---- ranges -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", available())
def test_plugin_ranges_name_their_own_settings(name: str) -> None:
    cls = get_optimizer(name)
    assert set(cls.tunable) <= set(hyperparameter_names(cls))
    assert all(isinstance(r, Range) for r in cls.tunable.values())


def test_trainer_ranges_are_run_settings() -> None:
    assert set(hpo.TRAINER_RANGES) <= {f.name for f in dataclasses.fields(RunConfig)}
    assert {"w_lr", "w_weight_decay", "w_momentum", "a_lr", "batch_size"} <= set(hpo.TRAINER_RANGES)


def test_ranges_leave_out_fixed_settings_and_follow_tune() -> None:
    everything = spec(optimizer="msdarts", tune=None).ranges()
    assert {"bandwidth", "epsilon", "w_lr", "a_lr"} <= set(everything)
    assert "batch_size" not in everything  # fixed by --set
    assert list(spec(tune=["a_lr"]).ranges()) == ["a_lr"]
    with pytest.raises(hpo.UsageError, match="no search range for darts"):
        spec(tune=["bandwidth"]).ranges()
    with pytest.raises(hpo.UsageError, match="also fixed"):
        spec(tune=["batch_size"]).ranges()


def test_range_validation() -> None:
    with pytest.raises(ValueError):
        Range(1.0, 1.0)
    with pytest.raises(ValueError):
        Range(0.0, 1.0, log=True)
    assert (
        Range(1e-3, 1.0, log=True).describe() == "[0.001, 1] log"
        and Range(choices=(2, 4)).describe() == "{2, 4}"
    )


# ---- studies --------------------------------------------------------------------------------------
def test_study_resumes_and_extends(tmp_path: Path) -> None:
    s = spec()
    hpo.run_study(s, tmp_path, 2, fixture_table, toy_data)
    assert sum(study_counts(s, tmp_path).get(k, 0) for k in ("COMPLETE", "PRUNED")) == 2
    hpo.run_study(s, tmp_path, 2, fixture_table, toy_data)  # the same command again: nothing to do
    assert sum(study_counts(s, tmp_path).values()) == 2
    study = hpo.run_study(s, tmp_path, 4, fixture_table, toy_data)  # 2 more
    assert sum(study_counts(s, tmp_path).get(k, 0) for k in ("COMPLETE", "PRUNED")) == 4
    paths = hpo.write_reports(s, tmp_path, study)
    assert {p.name for p in paths} >= {"trials.csv", "best_regret.png"}
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 4 and set(trials.columns) >= {
        "param.w_lr",
        "param.a_lr",
        "valid_regret",
        "test_regret",
    }
    for t in study.trials:  # every epoch of a trial was reported (multi-fidelity over epochs)
        assert sorted(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))
        rows = pd.read_csv(tmp_path / t.user_attrs["run_dir"] / "epochs.csv")
        assert len(rows) == len(t.intermediate_values)
        if t.state.name == "COMPLETE":
            assert t.value == pytest.approx(rows["valid_error_mean"].iloc[-1] - 0.0)
        else:  # pruned before the last epoch, never after it
            assert t.state.name == "PRUNED" and max(t.intermediate_values) < 2
    if (tmp_path / "best_settings.txt").exists():
        line = (tmp_path / "best_settings.txt").read_text().splitlines()[1]
        sets = parse_sets([item for item in line.split() if item != "--set"])
        cfg = RunConfig.resolve("darts", 1, preset="quick", overrides={k: v[0] for k, v in sets.items()})
        best = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
        assert cfg.w_lr == best.params["w_lr"] and cfg.a_lr == best.params["a_lr"] and cfg.epochs == 2


def test_an_interrupted_trial_continues_from_its_checkpoint(tmp_path: Path, monkeypatch) -> None:
    s = spec()
    original = hpo.valid_regret
    calls = {"n": 0}

    def interrupt_once(row, best):
        calls["n"] += 1
        if calls["n"] == 1:  # after trial 0's first epoch is written and checkpointed
            raise KeyboardInterrupt
        return original(row, best)

    monkeypatch.setattr(hpo, "valid_regret", interrupt_once)
    with pytest.raises(KeyboardInterrupt):
        hpo.run_study(s, tmp_path, 1, fixture_table, toy_data)
    assert len(pd.read_csv(tmp_path / "trials" / "trial0" / "epochs.csv")) == 1
    study = hpo.run_study(s, tmp_path, 1, fixture_table, toy_data)
    first, resumed = study.trials[0], study.trials[1]
    assert first.state.name == "FAIL" and first.user_attrs["interrupted"]
    assert resumed.user_attrs["resumes"] == 0 and resumed.params == first.params
    assert resumed.user_attrs["run_dir"] == "trials/trial0"
    assert len(pd.read_csv(tmp_path / "trials" / "trial0" / "epochs.csv")) == 2
    assert sorted(resumed.intermediate_values) == [1, 2]
    hpo.run_study(s, tmp_path, 1, fixture_table, toy_data)  # queued once only
    assert len(hpo.load(s, tmp_path).trials) == 2


def test_a_study_whose_trials_all_fail_stops_with_an_error(tmp_path: Path, monkeypatch) -> None:
    def refuse(self, trial):
        trial.suggest_float("w_lr", 1e-3, 1.0, log=True)
        raise ConfigError("--set k=4: refused (test)")

    monkeypatch.setattr(hpo.Objective, "_run", refuse)
    monkeypatch.setattr(hpo, "MAX_FAILURES", 2)
    with pytest.raises(hpo.HpoError, match="3 trials failed in this process"):
        hpo.run_study(spec(tune=["w_lr"]), tmp_path, 3, fixture_table, toy_data)
    trials = hpo.trials_frame(hpo.load(spec(tune=["w_lr"]), tmp_path))
    assert (trials["state"] == "FAIL").all() and trials["failed"].str.contains("refused").all()


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path) -> None:
    s = spec()
    hpo.run_study(s, tmp_path, 4, fixture_table, toy_data, jobs=2)
    counts = study_counts(s, tmp_path)
    assert 4 <= counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) <= 5  # a race may add one


# ---- the command line -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_hpo():
    from bench.runs import parts

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parts, "open_table", lambda benchmark, paths: ValidFixtureTable())
        mp.setattr(parts, "load_data", lambda cfg, paths: make_toy_data())
        yield


def base_args(out: Path) -> list[str]:
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    return ["--optimizer", "darts", "--trials", "1", "--preset", "quick", "--benchmark", "digits",
            "--out", str(out), "--device", "cpu", "--tune", "w_lr", *sets]  # fmt: skip


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory: pytest.TempPathFactory, fixture_hpo) -> Path:
    """One study made by the command line (one trial), shared read-only by the CLI tests."""
    out = tmp_path_factory.mktemp("hpo_cli") / "study"
    assert cli.main(base_args(out)) in (0, 1)  # 1: the only trial was pruned
    return out


def test_cli_runs_and_lists(cli_study: Path, tmp_path: Path, capsys) -> None:
    assert {p.name for p in cli_study.iterdir()} >= {
        "study.sqlite3",
        "hpo.json",
        "trials.csv",
        "best_regret.png",
    }
    assert cli.main([*base_args(tmp_path / "x"), "--list"]) == 0
    assert capsys.readouterr().out.strip() == "w_lr [0.001, 1] log"
    assert cli.main(["--optimizer", "gdas", "--benchmark", "digits", "--list"]) == 0
    assert "tau_max [2, 20] log" in capsys.readouterr().out
    assert cli.main(["--optimizer", "gdas", "--benchmark", "digits"]) == 2
    assert "--trials is required" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--optimizer", "nope"], "unknown optimizer 'nope'"),
        (["--tune", "nonsense"], "no search range for darts"),
        (["--trials", "0"], "must be at least 1"),
        (["--space", "4"], "choose 1, 2 or 3"),
        (["--set", "nonsense=1"], "unknown setting"),
        (["--set", "w_lr=0.1,0.2"], "one value only"),
        (["--tune", "a_lr"], "holds a study with other settings (tune)"),
    ],
)
def test_cli_bad_input_exits_2_and_touches_nothing(cli_study: Path, capsys, extra, message) -> None:
    before = {p: p.read_bytes() for p in cli_study.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.main([*base_args(cli_study), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert {p: p.read_bytes() for p in cli_study.rglob("*") if p.is_file()} == before

"""The analysis takes any set of registered optimizers: labels, order and colours come from the
registry, so a new plug-in shows up in every figure and table without editing analysis code."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis import figure3, names, plotting, regret
from analysis.load import Filters, load
from optimizers import registry
from optimizers.base import OneShotOptimizer
from tests.analysis.fixtures import write_run


@pytest.fixture
def dummy_plugin(monkeypatch):
    """A plug-in registered for this test only (and forgotten afterwards)."""
    names.registered.cache_clear()
    registry.available()  # load the real plug-ins first, so the dummy is the only addition
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @registry.register("zz-dummy-nas")
    class DummyNas(OneShotOptimizer):
        label = "Dummy-NAS"

    @registry.register("aa-unlabelled")
    class Unlabelled(OneShotOptimizer):
        pass

    yield DummyNas
    names.registered.cache_clear()


def test_labels_order_and_colours_follow_the_registry(dummy_plugin) -> None:
    assert names.display_name("zz_dummy_nas") == "Dummy-NAS"
    assert names.display_name("aa-unlabelled") == "aa-unlabelled"  # label defaults to the name
    assert names.display_name("msdarts") == "MS-DARTS" and names.display_name("random_ws") == "RSWS"
    order = sorted(["zz-dummy-nas", "aa-unlabelled", "enas", "msdarts", "darts"], key=names.optimizer_rank)
    assert order == ["darts", "msdarts", "enas", "aa-unlabelled", "zz-dummy-nas"]  # papers', then by name
    assert names.optimizer_rank("not-registered") == len(names.registered())
    # The original six keep their colours whatever else a figure shows, and in any order.
    six = ["DARTS", "PC-DARTS", "GDAS", "SDARTS-RS", "SDARTS-ADV", "MS-DARTS"]
    before = dict(zip(six, plotting.OKABE_ITO, strict=False))
    mixed = plotting.palette(["Dummy-NAS", *reversed(six), "DARTS [unrolled=True]"])
    assert {g: mixed[g] for g in six} == before
    assert mixed["Dummy-NAS"] == plotting.optimizer_colour("zzdummynas")
    assert plotting.palette(["Dummy-NAS"]) == {"Dummy-NAS": mixed["Dummy-NAS"]}  # the same in every figure
    assert len(set(mixed.values())) == len(mixed)  # a second DARTS setting gets a colour of its own


def write_two(root: Path) -> None:
    for optimizer in ("darts", "zz-dummy-nas", "gdas"):
        for seed in range(3):
            write_run(root, optimizer=optimizer, seed=seed, space=1)


def test_figure3_and_regret_take_any_registered_set(dummy_plugin, tmp_path: Path) -> None:
    write_two(tmp_path / "r")
    out = tmp_path / "out"
    assert figure3.main([str(tmp_path / "r"), "-o", str(out), "--optimizers", "zz-dummy-nas,darts"]) == 0
    assert regret.main([str(tmp_path / "r"), "-o", str(out), "--optimizers", "darts,zz_dummy_nas"]) == 0
    res = load(tmp_path / "r", Filters(optimizers=("darts", "zz-dummy-nas")))
    assert res.groups() == ["DARTS", "Dummy-NAS"]
    fig = figure3.plot(figure3.compute(res), res)
    lines = {ln.get_label(): ln.get_color() for ln in fig.axes[0].lines}
    assert lines == {
        "DARTS (n=3)": plotting.OKABE_ITO[0],
        "Dummy-NAS (n=3)": plotting.optimizer_colour("zzdummynas"),
    }
    final = pd.read_csv(out / f"{regret.STEM}_final.csv")
    assert "Dummy-NAS" in set(final.iloc[:, 0].astype(str)) | set(final.astype(str).stack())
    shown = pd.read_csv(out / f"{figure3.STEM}_final.csv").astype(str).stack()
    assert "Dummy-NAS" in set(shown) and "GDAS" not in set(shown)


def test_unknown_optimizer_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    write_run(tmp_path / "r")
    code = figure3.main([str(tmp_path / "r"), "-o", str(tmp_path / "out"), "--optimizers", "darts,nonesuch"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nonesuch" in err[0] and "registered: darts" in err[0]
    assert not (tmp_path / "out").exists()

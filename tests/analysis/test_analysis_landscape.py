"""analysis.landscape and bench.runs.restore on a tiny real run (FixtureTable ground truth, toy data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import landscape, report
from analysis.load import AnalysisError
from bench import results
from bench.data.splits import SearchData
from bench.runs.config import RunConfig
from bench.runs.restore import load_run
from bench.runs.trainer import Trainer, config_record
from tests.helpers import FixtureTable


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, toy_data: SearchData) -> Path:
    """One epoch of DARTS on toy data, written the way bench.run writes it (config.json included)."""
    cfg = RunConfig(optimizer="darts", space=1, epochs=1, batch_size=16, init_channels=2, cells_per_stack=1,
                    hessian=False, device="cpu")  # fmt: skip
    root = tmp_path_factory.mktemp("tiny") / "results"
    run_dir = results.run_dir(root, "fixture", 1, "darts", "tiny", 0)
    trainer = Trainer(cfg, run_dir, FixtureTable(), toy_data, meta={"tag": "tiny"})
    trainer.run()
    extra = {"tag": "tiny", "benchmark_note": "TEST FIXTURE: toy data and FixtureTable"}
    results.write_json(run_dir / results.CONFIG_JSON, config_record(cfg, trainer, extra))
    return run_dir


def _snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_centre_is_the_trainers_one_shot_accuracy(tiny_run: Path, toy_data: SearchData) -> None:
    before = _snapshot(tiny_run)
    # 4 batches of 16 = all 64 validation images, the set the trainer's one-shot accuracy used.
    ls = landscape.compute(tiny_run, grid=3, batches=4, data=toy_data, device="cpu")
    assert ls.accuracy.shape == (3, 3) and ls.n_images == 64
    assert ((ls.accuracy >= 0) & (ls.accuracy <= 1)).all()
    row = pd.read_csv(tiny_run / results.EPOCHS_CSV).iloc[-1]
    assert ls.center == pytest.approx(row["oneshot_valid_acc"])
    np.testing.assert_allclose(ls.coords, [-1.5, 0.0, 1.5])
    assert _snapshot(tiny_run) == before  # restoring never rewrites the run's files


def test_restored_alphas_are_the_final_ones(tiny_run: Path, toy_data: SearchData) -> None:
    restored = load_run(tiny_run, data=toy_data, device="cpu")
    _, history = results.read_alphas(tiny_run / results.ALPHAS_NPZ)
    for name, alpha in zip(restored.alpha_names, restored.alphas, strict=True):
        np.testing.assert_allclose(alpha.numpy(), history[name][-1])
    assert not restored.model.training and restored.epoch == 0


def test_directions_are_normalized_and_reproducible() -> None:
    rng = np.random.default_rng(1)
    alphas = [rng.normal(size=(4, 3)), rng.normal(size=(1, 5))]
    d1, d2 = landscape.directions(alphas, seed=7, norm="row")
    for a, d in zip(alphas, d1, strict=True):
        np.testing.assert_allclose(np.linalg.norm(d, axis=-1), np.linalg.norm(a, axis=-1))
    e1, e2 = landscape.directions(alphas, seed=7, norm="row")
    assert all(np.array_equal(x, y) for x, y in zip(d1 + d2, e1 + e2, strict=True))
    assert not np.allclose(d1[0], d2[0])
    t1, _ = landscape.directions(alphas, seed=7, norm="tensor")
    for a, d in zip(alphas, t1, strict=True):
        assert np.linalg.norm(d) == pytest.approx(np.linalg.norm(a))


def test_side_by_side_figure_and_files(tiny_run: Path, toy_data: SearchData, tmp_path: Path,
                                       stub_savefig: None) -> None:  # fmt: skip
    ls = landscape.compute(tiny_run, grid=3, batches=1, data=toy_data, device="cpu")
    other = landscape.Landscape(Path("other"), "SDARTS-RS · space 1 · seed 0\ntiny, epoch 1", ls.coords,
                                ls.accuracy * 0.5, ls.n_images)  # fmt: skip
    fig = landscape.plot([ls, other])
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split("\n")[0] for ax in panels] == [
        "DARTS · space 1 · seed 0",
        "SDARTS-RS · space 1 · seed 0",
    ]
    assert len(fig.axes) == 3  # two panels and one shared colour bar
    assert panels[0].get_legend().get_texts()[0].get_text() == f"final α (acc {ls.center:.3f})"
    paths = landscape.write([ls, other], tmp_path)
    assert {p.name for p in paths} == {"landscape.png", "landscape.pdf", "landscape.csv", "landscape.txt"}
    assert len(pd.read_csv(tmp_path / "landscape.csv")) == 2 * 9


def test_bad_input(tiny_run: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(AnalysisError, match="odd number"):
        landscape.compute(tiny_run, grid=4)
    empty = tmp_path / "run"
    empty.mkdir()
    (empty / results.CONFIG_JSON).write_text((tiny_run / results.CONFIG_JSON).read_text())
    assert landscape.main([str(empty), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint.pt" in err[0]


def test_report_includes_landscapes(tiny_run: Path, toy_data: SearchData, tmp_path: Path, monkeypatch,
                                    stub_savefig: None) -> None:  # fmt: skip
    """The report restores each run with its own data loader; here that loader hands back the toy data
    the run was trained on (the real digits loader costs seconds of sklearn import)."""
    import bench.runs.restore

    monkeypatch.setattr(bench.runs.restore, "search_data", lambda cfg, data_dir=None: toy_data)
    root = tiny_run.parents[4]
    argv = [
        str(root),
        "-o",
        str(tmp_path),
        "--landscape",
        "--landscape-grid",
        "3",
        "--landscape-batches",
        "1",
    ]
    assert report.main([*argv, "--device", "cpu"]) == 0
    page = (tmp_path / report.REPORT_HTML).read_text()
    section = page[page.index("<h2>Accuracy landscapes") :].split("</section>")[0]
    assert "Not available" not in section and "data:image/png;base64," in section
    assert "Not available: no MS-DARTS runs" in page  # no MS-DARTS here: Table 4 says why

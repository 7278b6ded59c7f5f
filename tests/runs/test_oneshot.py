"""One-shot measurements: BN re-estimated at the evaluated weights, a measurement that leaves
the search untouched, and NAS-Bench-1Shot1's one-shot vs ground-truth correlation."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import results
from bench.data.splits import SearchData
from bench.runs import oneshot
from bench.runs.config import RunConfig
from bench.runs.trainer import Trainer
from bench.search.graph import hash_spec
from bench.search.spaces import SearchSpace
from bench.search.supernet import Supernet
from optimizers import get_optimizer
from optimizers.base import row_softmax


def blob_data(n: int = 192, seed: int = 0) -> SearchData:
    """TEST FIXTURE: 8x8 images = a fixed template per class + noise, so a tiny supernet learns them in a
    few steps and accuracies mean something."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn(10, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    x = templates[y] + 0.7 * torch.randn(n, 1, 8, 8, generator=g)
    h = n // 2
    return SearchData("blobs-fixture", x[:h], y[:h], x[h:], y[h:], num_classes=10, in_channels=1)


def tiny_config(optimizer: str = "darts", **kw) -> RunConfig:
    base = dict(optimizer=optimizer, space=1, epochs=3, batch_size=16, init_channels=4, cells_per_stack=1,
                hessian=False, device="cpu", w_lr=0.1, bn_recal_batches=4)  # fmt: skip
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
def trained() -> tuple[Supernet, list[torch.Tensor], SearchData]:
    """A tiny supernet trained for a few steps at softmax(alphas) on the blob fixture."""
    torch.manual_seed(0)
    data = blob_data()
    space = SearchSpace(1)
    # bn_momentum 0.1: running statistics that follow the training (NB-101's 0.003 would not).
    model = Supernet(
        space, init_channels=4, num_classes=10, in_channels=1, cells_per_stack=1, bn_momentum=0.1
    )
    alphas = space.init_alphas(torch.Generator().manual_seed(0))
    weights = row_softmax(alphas)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for step in range(60):
        i = (step * 16) % len(data.x_train)
        x, y = data.x_train[i : i + 16], data.y_train[i : i + 16]
        opt.zero_grad()
        F.cross_entropy(model(x, [w.detach() for w in weights]), y).backward()
        opt.step()
    return model, [w.detach() for w in weights], data


def evaluator(model: Supernet, data: SearchData) -> oneshot.Evaluator:
    return oneshot.Evaluator(model, data.x_valid, data.y_valid, data.x_train[:64], 16, torch.device("cpu"))


def test_stale_statistics_degrade_eval_mode_but_not_the_recalibrated_accuracy(trained) -> None:
    model, weights, data = trained
    evaluate = evaluator(model, data)
    recal_before = evaluate(model, weights, "recalibrate")
    eval_before = evaluate(model, weights, "eval")
    assert recal_before.acc > 0.3  # chance is 0.1: the measurement sees a trained supernet
    assert eval_before.acc > 0.3  # and statistics that followed the training are fine too
    # Stale statistics, as left by weight steps at other mixing weights: every BN's buffers off.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(3.0)
                m.running_var.mul_(25.0)
    eval_after = evaluate(model, weights, "eval")
    recal_after = evaluate(model, weights, "recalibrate")
    assert eval_after.acc < eval_before.acc - 0.2
    assert recal_after == recal_before  # independent of whatever the search left in the buffers


def test_recalibration_matches_an_independent_reimplementation(trained) -> None:
    model, weights, data = trained
    got = evaluator(model, data)(model, weights, "recalibrate")
    ref = copy.deepcopy(model)
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    ref.train()
    with torch.no_grad():
        for i in range(0, 64, 16):
            ref(data.x_train[i : i + 16], weights)
        ref.eval()
        logits = torch.cat([ref(data.x_valid[i : i + 16], weights) for i in range(0, len(data.x_valid), 16)])
    assert got.acc == pytest.approx(float((logits.argmax(1) == data.y_valid).float().mean()))
    assert got.loss == pytest.approx(float(F.cross_entropy(logits, data.y_valid)), rel=1e-5)


@pytest.mark.parametrize("bn", oneshot.BN_MODES)
def test_a_measurement_leaves_model_and_rng_untouched(trained, bn: str) -> None:
    model, weights, data = trained
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    momenta = [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    rng = torch.get_rng_state()
    np_rng = np.random.get_state()[1].copy()
    evaluator(model, data)(model, weights, bn)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert momenta == [m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(rng, torch.get_rng_state())
    assert (np_rng == np.random.get_state()[1]).all()


def test_trainer_reports_both_columns_recalibrated_and_eval_mode(tmp_path, fixture_table) -> None:
    """Weight steps at heavily perturbed weights (SDARTS-RS, large radius) with last-batch statistics
    (momentum 1.0): the eval-mode column sees those statistics, the main column re-estimates them."""
    data = blob_data()
    cfg = tiny_config("sdarts-rs", epochs=4, bn_momentum=1.0, optimizer_params={"epsilon_max": 1.0})
    trainer = Trainer(cfg, tmp_path, fixture_table, data)
    trainer.run()
    frame = pd.read_csv(tmp_path / results.EPOCHS_CSV)
    assert {"oneshot_valid_acc", "oneshot_valid_acc_evalbn", "oneshot_valid_loss_evalbn"} <= set(
        frame.columns
    )
    last = frame.iloc[-1]
    # Independent check of the final epoch's numbers on the final model (the Hessian is off).
    ev = oneshot.Evaluator(
        trainer.model, data.x_valid, data.y_valid, data.x_train[: 4 * 16], 16, trainer.device
    )
    weights = trainer.plugin.oneshot_weights(trainer.alphas)
    assert last["oneshot_valid_acc"] == pytest.approx(ev(trainer.plugin.forward, weights, "recalibrate").acc)
    assert last["oneshot_valid_acc_evalbn"] == pytest.approx(ev(trainer.plugin.forward, weights, "eval").acc)
    assert last["oneshot_valid_acc"] > last["oneshot_valid_acc_evalbn"]


def test_oneshot_bn_eval_reproduces_the_plain_column(tmp_path, fixture_table) -> None:
    cfg = tiny_config(epochs=1, oneshot_bn="eval")
    Trainer(cfg, tmp_path, fixture_table, blob_data()).run()
    frame = pd.read_csv(tmp_path / results.EPOCHS_CSV)
    assert (frame["oneshot_valid_acc"] == frame["oneshot_valid_acc_evalbn"]).all()


# ---- correlation -----------------------------------------------------------------------------------
def test_correlation_stats_known_rankings() -> None:
    truth = np.arange(20, dtype=float)
    same = oneshot.correlation_stats(truth * 2, truth, truth)
    assert same["spearman_valid"] == pytest.approx(1.0) and same["kendall_test"] == pytest.approx(1.0)
    assert same["top10_overlap_valid"] == 1.0
    rev = oneshot.correlation_stats(-truth, truth, truth)
    assert rev["spearman_test"] == pytest.approx(-1.0) and rev["top10_overlap_test"] == 0.0
    # Top 10 % of 20 = 2 models: one of the one-shot top two is a ground-truth top two.
    scores = truth.copy()
    scores[[19, 0]] = scores[[0, 19]]  # the best and the worst swap places
    assert oneshot.top_overlap(scores, truth) == 0.5
    flat = oneshot.correlation_stats(np.ones(5), np.arange(5.0), np.arange(5.0))
    assert np.isnan(flat["spearman_valid"])


def test_sampled_models_are_distinct_reproducible_and_cover_the_space() -> None:
    space = SearchSpace(1)
    archs = oneshot.sample_architectures(space, 50, seed=3)
    hashes = [hash_spec(*space.spec(a)) for a in archs]
    assert len(set(hashes)) == 50
    assert archs == oneshot.sample_architectures(space, 50, seed=3)
    assert archs != oneshot.sample_architectures(space, 50, seed=4)
    everything = oneshot.sample_architectures(space, 10**6, seed=0)
    assert {hash_spec(*space.spec(a)) for a in everything} == set(space.unique_hashes())


@pytest.mark.parametrize("name", ["darts", "pcdarts"])
def test_correlation_forward_runs_only_the_chosen_ops_exactly(name: str) -> None:
    """Scoring a model on the supernet with op_choice equals the mixed forward at its one-hot weights."""
    space = SearchSpace(1)
    cls = get_optimizer(name)
    model = Supernet(space, init_channels=4, num_classes=10, in_channels=1, cells_per_stack=1,
                     **cls.supernet_kwargs(cls.Hyperparameters()))  # fmt: skip
    model.eval()
    arch = space.sample(torch.Generator().manual_seed(1))
    w = space.one_hot(arch)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(model(x, w, op_choice=torch.tensor(arch.ops)), model(x, w))


class _Stop(Exception):
    pass


def test_correlation_csv_and_resume(tmp_path, fixture_table) -> None:
    data = blob_data()
    cfg = tiny_config(epochs=3, correlation_every=2, correlation_samples=6)
    Trainer(cfg, tmp_path / "full", fixture_table, data).run()
    corr = pd.read_csv(tmp_path / "full" / results.CORRELATION_CSV)
    assert corr["epoch"].tolist() == [1, 2]  # every 2nd epoch, and the last
    assert (corr["n"] == 6).all() and corr["spearman_valid"].between(-1, 1).all()
    archs = pd.read_csv(tmp_path / "full" / results.CORRELATION_ARCHS_CSV, dtype={"arch_hash": str})
    assert len(archs) == 12
    assert archs[archs.epoch == 1].arch_hash.tolist() == archs[archs.epoch == 2].arch_hash.tolist()

    def stop(row: dict) -> None:
        if row["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        Trainer(cfg, tmp_path / "cut", fixture_table, data).run(on_epoch=stop)
    Trainer(cfg, tmp_path / "cut", fixture_table, data).run()
    for name in (results.EPOCHS_CSV, results.CORRELATION_CSV):
        a, b = (pd.read_csv(tmp_path / d / name) for d in ("full", "cut"))
        drop = [c for c in (*results.TIMING_COLUMNS, "seconds") if c in a.columns]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop))

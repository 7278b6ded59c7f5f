"""Every registered optimizer: the interface, two steps per space, the trainer, the CLI; GDAS, PC-DARTS, RSWS.

The perturbation-based optimizers (SDARTS-RS/ADV, MS-DARTS) have their own file, test_perturbation.py.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bench import results
from bench import run as cli
from bench.runs.config import RunConfig
from bench.runs.trainer import Trainer
from bench.search.graph import hash_spec
from bench.search.supernet import MixedOp, Supernet, channel_shuffle
from bench.settings import field_types, parse_value
from optimizers import OneShotOptimizer, available, build_hyperparameters, get_optimizer
from optimizers.gdas import gdas_tau
from tests.helpers import FAST, batch, make_optimizer, record_forwards, same, snapshot

EXPECTED = {
    "darts", "pcdarts", "gdas", "sdarts-rs", "sdarts-adv", "msdarts", "rsws", "enas",
    "drnas", "beta-darts", "fair-darts", "darts-minus", "snas", "darts-pt",
}  # fmt: skip


def test_all_competitors_registered() -> None:
    assert EXPECTED <= set(available())


@pytest.mark.parametrize("name", available())
def test_interface(name: str) -> None:
    cls = get_optimizer(name)
    assert issubclass(cls, OneShotOptimizer) and cls.name == name
    assert isinstance(cls.reference_epochs, int) and cls.reference_epochs > 0
    assert dataclasses.is_dataclass(cls.Hyperparameters)
    defaults = cls.Hyperparameters()  # every field has a default
    for key, annotation in field_types(cls.Hyperparameters).items():
        value = getattr(defaults, key)
        kinds = set(typing.get_args(annotation)) or {annotation}
        assert kinds <= {bool, int, float, str, type(None)}, f"{name}.{key}: {annotation} not settable"
        # What `--set key=<default>` parses to is the default itself.
        assert parse_value(key, str(value), annotation) == value
    assert isinstance(cls.supernet_kwargs(defaults), dict)


def test_every_plugin_has_its_own_label() -> None:
    labels = {name: get_optimizer(name).label for name in available()}
    assert all(labels.values()) and len(set(labels.values())) == len(labels), labels
    assert all(labels[name] != name for name in EXPECTED), "a shipped plug-in without a display label"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reference_epochs(name: str) -> None:
    # The paper preset's budgets: the scripts behind the figures (corrected: DARTS and RSWS 50).
    expected = {"darts": 100, "pcdarts": 100, "gdas": 100, "sdarts-rs": 100, "sdarts-adv": 100,
                "msdarts": 80, "rsws": 100, "enas": 100,
                # the released scripts' budgets of the later plug-ins (each module's docstring)
                "drnas": 100, "beta-darts": 100, "fair-darts": 50, "darts-minus": 50, "snas": 150,
                "darts-pt": 50}  # fmt: skip
    assert get_optimizer(name).reference_epochs == expected[name]


@pytest.mark.parametrize("space", [1, 2, 3])
@pytest.mark.parametrize("name", available())
def test_two_steps_each_space(name: str, space: int) -> None:
    opt = make_optimizer(name, space)
    ctx = opt.ctx
    a0, w0 = snapshot(ctx.alphas), snapshot(ctx.weight_params)
    opt.on_epoch_start(3)
    for i in range(2):
        stats = opt.step(batch(i), batch(100 + i))
        assert stats.n == 8 and torch.isfinite(torch.tensor(stats.loss))
    assert not same(w0, ctx.weight_params)
    if name in ("rsws", "enas"):
        assert same(a0, ctx.alphas)  # no alphas learned; the incumbent / cell comes at the epoch's end
    else:
        assert all(not torch.equal(a, b) for a, b in zip(a0, ctx.alphas, strict=True))
    opt.on_epoch_end(3)
    if name in ("rsws", "enas"):
        assert not same(a0, ctx.alphas)
    matrix, ops = ctx.space.discretize(ctx.alphas)
    assert len(hash_spec(matrix, ops)) == 32
    assert all(torch.isfinite(w).all() for w in opt.eval_weights(ctx.alphas))


def tiny_config(name: str, **kw) -> RunConfig:
    base = dict(optimizer=name, space=1, epochs=1, batch_size=16, init_channels=4, cells_per_stack=1,
                hessian=False, device="cpu", optimizer_params=dict(FAST.get(name, {})))  # fmt: skip
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", available())
def test_trainer_one_epoch(name: str, tmp_path, fixture_table, toy_data) -> None:
    outcome = Trainer(tiny_config(name), tmp_path, fixture_table, toy_data).run()
    assert outcome.state == "complete" and outcome.epochs == 1
    row = outcome.last_row
    assert row is not None and row["optimizer"] == name and len(row["arch_hash"]) == 32
    assert 0.0 <= row["oneshot_valid_acc"] <= 1.0 and 0.0 <= row["oneshot_train_acc"] <= 1.0


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    "name", ["gdas", "msdarts", "rsws", "enas"]
)  # schedules, RNG use, incumbent, controller
def test_resume_gives_identical_rows(name: str, tmp_path, fixture_table, toy_data) -> None:
    """Plug-in state (schedules, RSWS' incumbent) survives a restart: same rows and alphas."""
    cfg = tiny_config(name, epochs=2, batch_size=32)
    Trainer(cfg, tmp_path / "full", fixture_table, toy_data).run()

    def stop(row: dict) -> None:
        raise _Stop

    with pytest.raises(_Stop):
        Trainer(cfg, tmp_path / "cut", fixture_table, toy_data).run(on_epoch=stop)
    Trainer(cfg, tmp_path / "cut", fixture_table, toy_data).run()
    frames = [
        pd.read_csv(tmp_path / d / results.EPOCHS_CSV, dtype={"arch_hash": str}).drop(
            columns=list(results.TIMING_COLUMNS)
        )
        for d in ("full", "cut")
    ]
    assert len(frames[0]) == 2
    pd.testing.assert_frame_equal(*frames)
    _, a_full = results.read_alphas(tmp_path / "full" / results.ALPHAS_NPZ)
    _, a_cut = results.read_alphas(tmp_path / "cut" / results.ALPHAS_NPZ)
    assert all((a_full[k] == a_cut[k]).all() for k in a_full)


@pytest.mark.usefixtures("fixture_cli")
@pytest.mark.parametrize("name", available())
def test_cli_end_to_end(name: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    sets = [f"{k}={v}" for k, v in FAST.get(name, {}).items()]
    argv = ["--optimizer", name, "--epochs", "1", "--benchmark", "digits", "--out", str(out), "--no-progress",
            "--set", "batch_size=16", "--set", "init_channels=4", "--set", "cells_per_stack=1",
            "--set", "hessian=false", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    assert cli.main(argv) == 0
    (run,) = results.find_runs(out)
    record = json.loads((run / results.CONFIG_JSON).read_text())
    hp = dataclasses.asdict(build_hyperparameters(get_optimizer(name), FAST.get(name, {})))
    assert record["optimizer_hyperparameters"] == hp
    assert record["config"]["optimizer"] == name
    assert len(results.load_results(out)) == 1


# ---- GDAS ----------------------------------------------------------------------------------------
def count_op_calls(model: Supernet) -> tuple[dict[tuple[int, int], int], list]:
    """Per (cell, block): how many of the mixed op's candidate ops ran (via forward hooks)."""
    calls: dict[tuple[int, int], int] = {}
    handles = []
    for c, cell in enumerate(model.cells):
        for b, block in enumerate(cell.blocks):
            calls[(c, b)] = 0
            for op in block.ops:

                def hook(*_, key=(c, b)) -> None:
                    calls[key] += 1

                handles.append(op.register_forward_hook(hook))
    return calls, handles


def test_gdas_runs_exactly_one_op_per_block() -> None:
    opt = make_optimizer("gdas")
    calls, handles = count_op_calls(opt.ctx.model)
    try:
        weights = opt.arch_weights(opt.ctx.alphas)
        opt.forward(batch(0)[0], weights)
        assert set(calls.values()) == {1}
        for v in calls:
            calls[v] = 0
        opt.step(batch(1), batch(2))  # arch step + weight step: one op per block in each
        assert set(calls.values()) == {2}
    finally:
        for h in handles:
            h.remove()


def test_gdas_weights_hard_ops_soft_rest_per_cell() -> None:
    opt = make_optimizer("gdas")
    n = opt.ctx.model.num_cells
    torch.manual_seed(1)
    w = opt.arch_weights(opt.ctx.alphas)
    assert w[0].shape == (n, 4, 3) and all(t.shape[0] == n for t in w)
    hard = w[0].detach()
    assert torch.allclose(hard, F.one_hot(hard.argmax(-1), 3).float())  # straight-through one-hots
    for soft in w[1:]:
        assert torch.allclose(soft.detach().sum(-1), torch.ones(soft.shape[:-1]))
        assert ((soft > 0) & (soft < 1)).all()  # soft Gumbel: no hard zeros or ones
        assert not torch.allclose(soft[0], soft[1])  # an independent draw per cell
    # Straight-through: gradient reaches the op alphas although the forward value is one-hot.
    loss = F.cross_entropy(opt.forward(batch(0)[0], w), batch(0)[1])
    grads = torch.autograd.grad(loss, opt.ctx.alphas)
    assert all(g.abs().sum() > 0 for g in grads)
    shared = make_optimizer("gdas", per_cell=False)
    assert shared.arch_weights(shared.ctx.alphas)[0].shape == (4, 3)


def test_gdas_tau_schedule() -> None:
    """The corrected schedule; the paper's (the scripts') is in tests/runs/test_protocol.py."""
    assert gdas_tau(10, 1, 0, 100) == 10 and gdas_tau(10, 1, 99, 100) == 1
    assert gdas_tau(10, 1, 1, 4) == pytest.approx(7.0)
    opt = make_optimizer("gdas", epochs=5, tau_schedule="endpoints")
    assert opt.tau == 10
    opt.on_epoch_start(4)
    assert opt.tau == pytest.approx(1.0)
    opt.on_epoch_start(2)
    assert opt.tau == pytest.approx(5.5)


def test_gdas_clips_arch_gradient_and_evaluates_with_softmax() -> None:
    opt = make_optimizer("gdas")
    huge = [torch.full_like(a, 100.0) for a in opt.ctx.alphas]
    opt.apply_arch_grads(huge)
    norm = torch.cat([a.grad.flatten() for a in opt.ctx.alphas]).norm()
    assert norm == pytest.approx(5.0, rel=1e-4)
    ev = opt.eval_weights(opt.ctx.alphas)
    assert all(torch.equal(e, F.softmax(a, -1)) for e, a in zip(ev, opt.ctx.alphas, strict=True))


def test_gdas_weight_step_trains_on_a_fresh_sample() -> None:
    opt = make_optimizer("gdas")
    seen = record_forwards(opt.ctx.model)
    opt.step(batch(1), batch(2))
    (arch_w, arch_choice), (train_w, train_choice) = ((c["weights"], c["op_choice"]) for c in seen)
    assert arch_choice is not None and train_choice is not None
    assert torch.equal(train_choice, train_w[0].argmax(-1))
    assert not same(arch_w[1:], train_w[1:])  # a new Gumbel draw, not the arch step's


# ---- PC-DARTS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [4, 2])
def test_pcdarts_turns_on_partial_channels(k: int) -> None:
    opt = make_optimizer("pcdarts", k=k)
    model = opt.ctx.model
    assert model.partial_channels == k
    block: MixedOp = model.cells[0].blocks[0]
    c = model.cells[0].channels
    assert block.op_channels == c // k
    seen = []
    handle = block.ops[1].register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[1]))
    try:
        opt.step(batch(1), batch(2))
    finally:
        handle.remove()
    assert seen and set(seen) == {c // k}  # only 1/K of the channels reach the ops
    # Output = channel_shuffle(cat(mixed op on the first C/K channels, the untouched rest), K).
    x = torch.randn(2, c, 8, 8)
    w = [t.detach() for t in opt.arch_weights(opt.ctx.alphas)][0][0]
    model.eval()
    with torch.no_grad():
        got = block(x, tuple(w.unbind(0)))
        xa = x[:, : c // k]
        mixed = sum(w[o] * block.ops[o](xa) for o in range(3))
        expected = channel_shuffle(torch.cat([mixed, x[:, c // k :]], dim=1), k)
    assert got.shape == x.shape and torch.allclose(got, expected, atol=1e-6)


def test_pcdarts_default_k_and_darts_has_none() -> None:
    cls = get_optimizer("pcdarts")
    assert cls.supernet_kwargs(cls.Hyperparameters()) == {"partial_channels": 4}
    darts = get_optimizer("darts")
    assert darts.supernet_kwargs(darts.Hyperparameters()) == {}


# ---- RSWS ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("unsampled", ["zero", "skip"])
@pytest.mark.parametrize("space", [1, 3])
def test_rsws_trains_on_random_discrete_architectures(space: int, unsampled: str) -> None:
    opt = make_optimizer("rsws", space, unsampled_ops=unsampled)
    sp = opt.ctx.space
    seen = record_forwards(opt.ctx.model)
    a0 = snapshot(opt.ctx.alphas)
    for i in range(3):
        opt.step(batch(i), batch(10 + i))
    assert same(a0, opt.ctx.alphas) and all(a.grad is None for a in opt.ctx.alphas)
    assert len(seen) == 3  # no arch forward: only the weight steps ran the model
    for weights, choice in ((c["weights"], c["op_choice"]) for c in seen):
        if unsampled == "skip":  # only the sampled op runs
            assert torch.equal(choice, weights[0].argmax(-1))
        else:  # every op runs, the unsampled ones x 0 (NAS-Bench-1Shot1's discrete mixed op)
            assert choice is None
        assert torch.equal(weights[0].sum(-1), torch.ones(sp.num_blocks))  # one-hot ops
        for (name, _), w in zip(sp.alpha_shapes().items(), weights, strict=True):
            assert set(w.unique().tolist()) <= {0.0, 1.0}
            if name != "ops":  # exactly as many parents as the node has
                node = sp.output_node if name == "output" else int(name.split("_")[1])
                assert w.sum() == sp.num_parents[node - 1]
    assert len({tuple(torch.cat([w.flatten() for w in c["weights"]]).tolist()) for c in seen}) > 1


def test_rsws_shared_incumbent_is_the_best_scored_candidate() -> None:
    """corrected: every candidate on the epoch's last search batches, (error, loss) order."""
    opt = make_optimizer(
        "rsws", eval_archs=6, eval_batches=2, rerank_top=0, candidate_batches="shared", tie_break_by_loss=True
    )
    for i in range(3):
        opt.step(batch(i), batch(10 + i))
    assert len(opt._val_batches) == 2
    opt.on_epoch_end(0)
    scores = opt.last_scores
    assert len(scores) == 6
    best = min((s for _, s in scores), key=lambda s: (s.error, s.loss))
    assert opt.incumbent is not None and dict(scores)[opt.incumbent] == best
    assert same(opt.ctx.alphas, opt.architecture_weights(opt.incumbent))
    assert opt.score(opt.incumbent) == best  # scoring is deterministic (eval mode, same batches)
    assert hash_spec(*opt.ctx.space.discretize(opt.ctx.alphas)) == hash_spec(*opt.spec(opt.incumbent))
    assert same(opt.eval_weights(opt.ctx.alphas), opt.ctx.alphas)


def test_rsws_keeps_alphas_without_steps() -> None:
    opt = make_optimizer("rsws", candidate_batches="shared")
    a0 = snapshot(opt.ctx.alphas)
    opt.on_epoch_end(0)
    assert same(a0, opt.ctx.alphas) and opt.incumbent is None


def test_plugin_settings_parse_without_postponed_annotations() -> None:
    """A plug-in file without `from __future__ import annotations` declares real types, not strings."""
    import dataclasses as dc

    hp_cls = dc.make_dataclass("Hp", [("k", int, 4), ("eps", float | None, None), ("on", bool, False)])
    types_ = field_types(hp_cls)
    assert parse_value("k", "8", types_["k"]) == 8
    assert parse_value("eps", "none", types_["eps"]) is None
    assert parse_value("eps", "0.5", types_["eps"]) == 0.5
    assert parse_value("on", "yes", types_["on"]) is True

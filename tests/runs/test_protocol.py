"""The paper preset = the published scripts' protocol; the corrected preset = the harness's corrections.

Each paper behaviour is checked against an independent re-implementation written here from the
documented behaviour of the scripts (docs/protocols.md): the LR sequence, the
steps per epoch, which batch the Hessian sees and when, the alphas an epoch's row looks up, the GDAS
temperature, the crop padding and cutout, RSWS' selection, in-place zero_grad. The GDAS Hessian and the
BN side effect of the measurement are in tests/optimizers/test_hessian_protocol.py.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench import results
from bench.benchmarks import get_benchmark
from bench.benchmarks.digits import SUPERNET_STACKS
from bench.data.splits import (
    CIFAR_MEAN,
    CIFAR_STD,
    STREAM_VALID,
    Augmentation,
    SearchData,
    cutout_masks,
    epoch_batches,
)
from bench.runs.config import CORRECTED_SETTINGS, RunConfig
from bench.runs.trainer import Trainer
from bench.search import hessian as hessian_module
from bench.search.hessian import EigenInfo
from bench.truth.digits_protocol import PROTOCOL_1X1, RUN_PROTOCOL, DigitsProtocol
from optimizers.gdas import gdas_tau
from tests.helpers import batch, make_optimizer, toy_validation_stream


def tiny(preset_values: dict | None = None, **kw: object) -> RunConfig:
    """A tiny run with the paper preset's values (the field defaults), or others on top."""
    base = dict(
        optimizer="darts", space=1, epochs=3, batch_size=24, init_channels=2, cells_per_stack=1,
        hessian=False, device="cpu",
    )  # fmt: skip
    base.update(preset_values or {})
    base.update(kw)
    return RunConfig(**base)  # type: ignore[arg-type]


def cosine(t: float, total: int, top: float = 0.025, bottom: float = 0.001) -> float:
    return bottom + (top - bottom) * (1 + math.cos(math.pi * t / total)) / 2


def read_csv(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / results.EPOCHS_CSV, dtype={"arch_hash": str})


class StepSpy:
    """Records what the plug-in's steps saw: LR, batch sizes, the validation batches."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.lrs: list[float] = []
        self.train_sizes: list[int] = []
        self.valid_batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._step = trainer.plugin.step
        trainer.plugin.step = self  # type: ignore[method-assign]

    def __call__(self, batch_train, batch_val):
        self.lrs.append(self.trainer.w_optim.param_groups[0]["lr"])
        self.train_sizes.append(len(batch_train[1]))
        self.valid_batches.append(batch_val)
        return self._step(batch_train, batch_val)


# ---- the LR schedule -----------------------------------------------------------------------------
@pytest.mark.parametrize("step_first", [True, False])
def test_lr_sequence(step_first: bool, tmp_path, fixture_table, toy_data) -> None:
    """Scripts: `scheduler.step()` first, so epoch e trains at eta(e + 1), the last at w_lr_min."""
    epochs = 4
    trainer = Trainer(
        tiny(epochs=epochs, scheduler_step_first=step_first, eval_oneshot=False),
        tmp_path, fixture_table, toy_data,
    )  # fmt: skip
    spy = StepSpy(trainer)
    trainer.run()
    shift = 1 if step_first else 0
    expected = [cosine(e + shift, epochs) for e in range(epochs)]
    assert read_csv(tmp_path)["lr"].tolist() == pytest.approx(expected, rel=1e-9)
    steps = len(spy.lrs) // epochs
    assert spy.lrs == pytest.approx([lr for lr in expected for _ in range(steps)], rel=1e-9)
    if step_first:
        assert expected[-1] == pytest.approx(0.001) and expected[0] < 0.025


# ---- steps per epoch and the partial batch -------------------------------------------------------
@pytest.mark.parametrize("partial", [True, False])
def test_steps_per_epoch_include_the_partial_batch(partial: bool, tmp_path, fixture_table, toy_data) -> None:
    """Scripts: a DataLoader without drop_last; 64 images in batches of 24 = 24, 24, 16."""
    trainer = Trainer(
        tiny(epochs=1, partial_batch=partial, eval_oneshot=False), tmp_path, fixture_table, toy_data
    )
    spy = StepSpy(trainer)
    trainer.run()
    n = len(toy_data.x_train)
    if partial:
        assert len(spy.train_sizes) == math.ceil(n / 24) == 3
        assert spy.train_sizes == [24, 24, n - 2 * 24]
    else:
        assert spy.train_sizes == [24] * (n // 24)


def test_an_exhausted_validation_half_restarts_with_a_new_shuffle() -> None:
    """SDARTS' `except: valid_queue_iter = iter(valid_queue)`: more steps than validation batches."""
    x, y = torch.arange(30.0).view(30, 1, 1, 1), torch.arange(30)
    got = list(epoch_batches(x, y, 16, 0, 0, STREAM_VALID, torch.device("cpu"), steps=4, partial=True))
    assert [len(b[1]) for b in got] == [16, 14, 16, 14]
    for first, second in ((0, 1), (2, 3)):  # each pair is one full pass over the 30 images
        assert sorted(torch.cat([got[first][1], got[second][1]]).tolist()) == list(range(30))
    assert not torch.equal(got[0][1], got[2][1])  # a fresh shuffle


def test_steps_per_epoch_formula(toy_data) -> None:
    assert toy_data.steps_per_epoch(96, partial=True) == 1
    cifar = SearchData("c", torch.zeros(25000, 1, 1, 1), torch.zeros(25000), torch.zeros(25000, 1, 1, 1),
                       torch.zeros(25000), 10, 1)  # fmt: skip
    assert cifar.steps_per_epoch(96, partial=True) == 261 and cifar.steps_per_epoch(96) == 260
    assert cifar.steps_per_epoch(64, partial=True) == 391  # RSWS' batch 64


# ---- the Hessian: which batch, when, and its columns ---------------------------------------------
class HessianSpy:
    """Stands in for the eigenvalue computation: records its arguments (and the order of events)."""

    def __init__(self, monkeypatch, order: list[str] | None = None, value: float = -0.25) -> None:
        self.calls: list[dict] = []
        self.order = order
        self.value = value
        monkeypatch.setattr(hessian_module, "supernet_eigenvalue_info", self)

    def __call__(self, model, alphas, mixing, batch, **kw):
        if self.order is not None:
            self.order.append("hessian")
        self.calls.append({"batch": batch, "mixing": mixing, **kw})
        return EigenInfo(self.value, 1, True, 0.0, 1, "spy")


def spy_evaluation(monkeypatch, order: list[str]) -> None:
    evaluate = Trainer._evaluate_oneshot

    def spy(self):
        order.append("eval")
        return evaluate(self)

    monkeypatch.setattr(Trainer, "_evaluate_oneshot", spy)


def test_paper_hessian_sees_the_epochs_last_search_batch_before_the_evaluation(
    monkeypatch, tmp_path, fixture_table, toy_data
) -> None:
    order: list[str] = []
    hess = HessianSpy(monkeypatch, order)
    spy_evaluation(monkeypatch, order)
    trainer = Trainer(tiny(epochs=2, hessian=True), tmp_path, fixture_table, toy_data)
    spy = StepSpy(trainer)
    trainer.run()
    assert order == ["hessian", "eval"] * 2
    steps = len(spy.valid_batches) // 2
    for epoch, call in enumerate(hess.calls):
        last = spy.valid_batches[(epoch + 1) * steps - 1]  # the epoch's last search batch ...
        assert call["batch"][0] is last[0] and len(call["batch"][1]) == 64 - 2 * 24  # ... the remainder
        assert call["restore_bn"] is False  # its forward updates the BN statistics (scripts)
        assert call["forward"] is None  # DARTS runs the plain supernet (keeps the staged loss)
    frame = read_csv(tmp_path)
    assert frame["hessian_lambda_max"].tolist() == [-0.25, -0.25]
    assert frame["hessian_eig_max"].tolist() == [0.25, 0.25]  # SD: norm(max(eigvals))


def test_corrected_hessian_is_the_fixed_batch_after_the_evaluation(
    monkeypatch, tmp_path, fixture_table, toy_data
) -> None:
    order: list[str] = []
    hess = HessianSpy(monkeypatch, order)
    spy_evaluation(monkeypatch, order)
    trainer = Trainer(tiny(CORRECTED_SETTINGS, epochs=2, hessian=True), tmp_path, fixture_table, toy_data)
    trainer.run()
    assert order == ["eval", "hessian"] * 2
    (x0, y0), (x1, y1) = (c["batch"] for c in hess.calls)
    assert torch.equal(x0, x1) and torch.equal(y0, y1) and len(y0) == 24  # one batch, every epoch
    rows = [(x0[i] == toy_data.x_valid).flatten(1).all(1).any() for i in range(len(y0))]
    assert all(rows)  # unaugmented images of the validation half
    assert all(c["restore_bn"] is True and c["forward"] is None for c in hess.calls)
    assert hess.calls[0]["mixing"] == trainer.plugin.eval_weights


def test_robustdarts_hessian_batch_is_fresh_and_random(
    monkeypatch, tmp_path, fixture_table, toy_data
) -> None:
    hess = HessianSpy(monkeypatch)
    Trainer(tiny(epochs=2, hessian=True, hessian_batch="random", hessian_batch_size=20), tmp_path,
            fixture_table, toy_data).run()  # fmt: skip
    (x0, y0), (x1, y1) = (c["batch"] for c in hess.calls)
    assert len(y0) == len(y1) == 20 and not torch.equal(x0, x1)
    for xb in (x0, x1):  # no augmentation on the toy data: rows of the validation half, no repeats
        idx = [int((xb[i] == toy_data.x_valid).flatten(1).all(1).nonzero()[0]) for i in range(len(xb))]
        assert len(set(idx)) == len(idx)


def test_segmented_hvp_cannot_take_a_custom_forward_apart() -> None:
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="hessian_hvp=reverse"):
        RunConfig.resolve("gdas", 1, overrides={"hessian_hvp": "segmented"})
    assert RunConfig.resolve("gdas", 1, overrides={"hessian_hvp": "segmented", "hessian_weights": "eval"})
    assert RunConfig.resolve("darts", 1, overrides={"hessian_hvp": "segmented"})


def test_gdas_hessian_uses_its_own_sample(monkeypatch, tmp_path, fixture_table, toy_data) -> None:
    hess = HessianSpy(monkeypatch)
    trainer = Trainer(tiny(optimizer="gdas", epochs=1, hessian=True), tmp_path, fixture_table, toy_data)
    trainer.run()
    call = hess.calls[0]
    assert call["forward"] == trainer.plugin.forward
    w1, w2 = call["mixing"](trainer.alphas), call["mixing"](trainer.alphas)
    assert all(torch.equal(a, b) for a, b in zip(w1, w2, strict=True))  # noise frozen per measurement
    assert w1[0].shape[0] == trainer.model.num_cells  # a sample per cell
    assert set(w1[0].detach().unique().tolist()) <= {0.0, 1.0}  # hard straight-through ops


# ---- which alphas an epoch's row looks up --------------------------------------------------------
@pytest.mark.parametrize("lookup", ["start", "end"])
def test_lookup_alphas(lookup: str, tmp_path, fixture_table, toy_data) -> None:
    """Scripts: `one_shot_architecture_{epoch}.obj` is saved at the start of the epoch and looked up."""
    from bench.runs.parts import build_parts
    from bench.search.graph import hash_spec

    cfg = tiny(epochs=3, lookup_alphas=lookup, eval_oneshot=False)
    init = [a.detach().clone() for a in build_parts(cfg, toy_data).alphas]
    trainer = Trainer(cfg, tmp_path, fixture_table, toy_data)
    trainer.run()
    _, saved = results.read_alphas(tmp_path / results.ALPHAS_NPZ)
    names = list(trainer.space.alpha_shapes())
    after = [[torch.as_tensor(saved[n][e]) for n in names] for e in range(3)]
    used = [init, after[0], after[1]] if lookup == "start" else after
    expected = [hash_spec(*trainer.space.discretize(a)) for a in used]
    assert read_csv(tmp_path)["arch_hash"].tolist() == expected


# ---- GDAS temperature ------------------------------------------------------------------------------
def test_gdas_tau_schedules() -> None:
    epochs = 100
    # NAS-Bench-1Shot1's gdas/train_search.py: tau_epoch = tau_max; train; tau_epoch += (min - max) / epochs
    tau, scripts = 10.0, []
    for _ in range(epochs):
        scripts.append(tau)
        tau += (1.0 - 10.0) / epochs
    assert [gdas_tau(10, 1, e, epochs, "scripts") for e in range(epochs)] == pytest.approx(scripts)
    assert gdas_tau(10, 1, epochs - 1, epochs, "scripts") == pytest.approx(1.09)
    assert gdas_tau(10, 1, epochs - 1, epochs, "endpoints") == pytest.approx(1.0)
    gdas = make_optimizer("gdas", epochs=epochs)
    gdas.on_epoch_start(99)  # paper is the default
    assert gdas.tau == pytest.approx(1.09)


# ---- crop padding and cutout -----------------------------------------------------------------------
def _normalize(raw: torch.Tensor) -> torch.Tensor:
    return (raw - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)


def _reference_crops(raw: torch.Tensor, fill: str) -> list[torch.Tensor]:
    """torchvision's order written out: RandomCrop(32, padding=4) on the image, flip, ToTensor, Normalize.
    Every possible crop offset and flip; `fill="mean"` pads the normalized image with zeros instead."""
    out = []
    for dy in range(9):
        for dx in range(9):
            if fill == "black":  # pad the raw image with 0 (black), crop, then normalize
                crop = _normalize(
                    torch.nn.functional.pad(raw, (4, 4, 4, 4))[:, :, dy : dy + 32, dx : dx + 32]
                )
            else:  # normalize, then pad with 0 (the mean colour) and crop
                crop = torch.nn.functional.pad(_normalize(raw), (4, 4, 4, 4))[
                    :, :, dy : dy + 32, dx : dx + 32
                ]
            out += [crop, crop.flip(3)]
    return out


@pytest.mark.parametrize("fill", ["black", "mean"])
def test_crop_padding_order(fill: str) -> None:
    raw = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    black = tuple(-m / s for m, s in zip(CIFAR_MEAN, CIFAR_STD, strict=True))
    x = _normalize(raw)
    data = SearchData("c", x, torch.zeros(6), x, torch.zeros(6), 10, 3, augment=True, black=black)
    aug = data.augmentation(fill)
    out = aug(data.x_train, torch.Generator().manual_seed(1))
    shifted = 0
    for i in range(len(raw)):
        candidates = _reference_crops(raw[i : i + 1], fill)
        matches = [c for c in candidates if torch.allclose(out[i : i + 1], c, atol=1e-5)]
        assert matches, f"image {i} is no crop of the {fill}-padded image"
        other = _reference_crops(raw[i : i + 1], "mean" if fill == "black" else "black")
        shifted += not any(torch.allclose(out[i : i + 1], c, atol=1e-5) for c in other)
    assert shifted > 0  # the two paddings were told apart on some shifted crop


def _reference_cutout(h: int, w: int, y: int, x: int, length: int) -> torch.Tensor:
    """NAS-Bench-1Shot1's utils.Cutout for centre (y, x): np.clip'd square set to 0."""
    mask = np.ones((h, w), np.float32)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    return torch.from_numpy(mask)


def test_cutout_masks_match_the_reference() -> None:
    masks = cutout_masks(200, 32, 32, 16, 1.0, torch.Generator().manual_seed(0))
    assert masks.shape == (200, 1, 32, 32)
    centres_all = [(y, x) for y in range(32) for x in range(32)]  # every centre the reference can draw
    references = torch.stack([_reference_cutout(32, 32, y, x, 16) for y, x in centres_all])
    centres = set()
    for m in masks[:, 0]:
        found = (references == m).flatten(1).all(1).nonzero()
        assert len(found), "a mask no reference centre produces"
        centres.add(centres_all[int(found[0])])
    assert len(centres) > 50  # centres are spread, not fixed
    assert masks.mean(dim=(1, 2, 3)).min() >= 1 - 256 / 1024  # at most a 16x16 square
    off = cutout_masks(50, 32, 32, 16, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(off, torch.ones_like(off))
    half = cutout_masks(400, 32, 32, 16, 0.5, torch.Generator().manual_seed(0))
    assert 0.35 < (half.flatten(1).min(1).values == 0).float().mean() < 0.65


def test_cutout_sets_the_square_to_the_mean_after_normalization() -> None:
    x = torch.randn(8, 3, 32, 32) + 5.0  # no zeros anywhere
    out = Augmentation(crop_padding=0, flip=False, cutout_length=16)(x, torch.Generator().manual_seed(0))
    zero = out == 0
    assert zero.any(dim=(1, 2, 3)).all()  # every image cut (prob 1)
    assert torch.equal(zero[:, 0], zero[:, 1]) and torch.equal(zero[:, 0], zero[:, 2])  # all channels
    assert torch.equal(out[~zero], x[~zero])


def test_cutout_setting_reaches_the_trainer(tmp_path, fixture_table) -> None:
    from bench.runs.parts import augmentation

    x = torch.zeros(4, 3, 32, 32)
    data = SearchData(
        "c", x, torch.zeros(4), x, torch.zeros(4), 10, 3, augment=True, black=(-1.0, -1.0, -1.0)
    )
    assert augmentation(tiny(), data) == Augmentation(pad_value=(-1.0, -1.0, -1.0))
    assert augmentation(tiny(cutout=True), data).cutout_length == 16
    assert augmentation(tiny(CORRECTED_SETTINGS), data).pad_value is None
    assert augmentation(tiny(augment=False), data) is None


# ---- RSWS -----------------------------------------------------------------------------------------
def test_rsws_candidate_counts_and_selection() -> None:
    """NAS-Bench-1Shot1: N random architectures, each on the next K validation batches; the top T
    re-scored on a whole pass; the incumbent is the best of those (stable sort by error)."""
    opt = make_optimizer("rsws", eval_archs=7, eval_batches=3, rerank_top=2)
    sampled = []
    sample = opt.sample_architecture
    opt.sample_architecture = lambda g=None: sampled.append(sample(g)) or sampled[-1]  # type: ignore
    opt.step(batch(0), batch(1))
    sampled.clear()
    opt.on_epoch_end(0)
    assert len(sampled) == 7 and len(opt.last_scores) == 7 and len(opt.last_rerank) == 2

    # Independent re-implementation: the stream, consumed in order.
    stream = toy_validation_stream(0)
    model = opt.ctx.model
    model.eval()

    def error(arch, batches) -> float:
        w = opt.ctx.space.one_hot(arch)
        with torch.no_grad():
            wrong = sum(int((model(x, w).argmax(1) != y).sum()) for x, y in batches)
        return wrong / sum(len(y) for _, y in batches)

    first = [(a, error(a, [next(stream) for _ in range(3)])) for a in sampled]
    top = [a for a, _ in sorted(first, key=lambda t: t[1])[:2]]
    second = [(a, error(a, [next(stream) for _ in range(4)])) for a in top]  # a pass = 4 toy batches
    best = sorted(second, key=lambda t: t[1])[0][0]
    assert [s.error for _, s in opt.last_scores] == pytest.approx([e for _, e in first])
    assert opt.incumbent == best


def test_rsws_paper_protocol_is_recorded() -> None:
    paper = RunConfig.resolve("rsws", 1, benchmark="nb101", preset="paper")
    assert (paper.batch_size, paper.grad_clip, paper.resolved_epochs(100)) == (64, 0.25, 100)
    hp = paper.hyperparameters()
    assert (hp.eval_archs, hp.eval_batches, hp.rerank_top, hp.unsampled_ops) == (1000, 10, 5, "zero")
    corrected = RunConfig.resolve("rsws", 1, benchmark="nb101", preset="corrected")
    assert (corrected.batch_size, corrected.grad_clip, corrected.epochs) == (96, 5.0, 50)
    assert (
        corrected.hyperparameters().eval_archs == 100
        and corrected.optimizer_params["unsampled_ops"] == "skip"
    )


def test_enas_paper_protocol_trains_the_shared_weights_as_nb1() -> None:
    paper = RunConfig.resolve("enas", 1, benchmark="nb101", preset="paper")
    assert (paper.batch_size, paper.grad_clip, paper.w_weight_decay, paper.resolved_epochs(100)) == (
        64, 0.25, 1e-4, 100,
    )  # fmt: skip
    corrected = RunConfig.resolve("enas", 1, benchmark="nb101", preset="corrected")
    assert (corrected.batch_size, corrected.grad_clip, corrected.w_weight_decay) == (96, 5.0, 3e-4)
    quick = RunConfig.resolve("enas", 1, benchmark="nb101", preset="quick")
    assert quick.batch_size == 32  # quick shrinks paper, the ENAS layer included


# ---- in-place zero_grad (PyTorch 1.3) -------------------------------------------------------------
@pytest.mark.parametrize("to_none", [False, True])
def test_unsampled_ops_keep_moving_with_in_place_zero_grad(to_none: bool) -> None:
    opt = make_optimizer("rsws", unsampled_ops="skip")
    opt.ctx.zero_grad_set_to_none = to_none
    space = opt.ctx.space
    sampled = space.sample(torch.Generator().manual_seed(0))
    first = dataclasses.replace(sampled, ops=(1,) * space.num_blocks)  # conv3x3 everywhere
    second = dataclasses.replace(sampled, ops=(2,) * space.num_blocks)  # then conv1x1 everywhere
    opt.weight_step(batch(0), space.one_hot(first))
    params = list(opt.ctx.model.cells[0].blocks[0].ops[1].parameters())
    before = [p.detach().clone() for p in params]
    opt.weight_step(batch(1), space.one_hot(second))  # that op is not sampled now
    moved = any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
    assert moved is (not to_none)


# ---- presets and config.json -----------------------------------------------------------------------
def test_presets_resolve_every_protocol_setting() -> None:
    paper = RunConfig.resolve("darts", 1, benchmark="nb101", preset="paper")
    corrected = RunConfig.resolve("darts", 1, benchmark="nb101", preset="corrected")
    for key, value in CORRECTED_SETTINGS.items():
        assert getattr(corrected, key) == value
        assert getattr(paper, key) != value, key  # every corrected setting is a difference
    assert (paper.bn_momentum, paper.head_bn_momentum, paper.downsample_padding) == (0.997, 0.1, 1)
    assert paper.resolved_epochs(100) == 100 and corrected.epochs == 50
    assert paper.benchmark_overrides == {} and corrected.benchmark_overrides == {}
    quick = RunConfig.resolve("darts", 1, benchmark="nb101", preset="quick")
    assert quick.epochs == 10 and all(getattr(quick, k) == getattr(paper, k) for k in CORRECTED_SETTINGS)
    adv = {p: RunConfig.resolve("sdarts-adv", 1, benchmark="nb101", preset=p).hyperparameters() for p in
           ("paper", "corrected")}  # fmt: skip
    assert (adv["paper"].projection, adv["corrected"].projection) == ("clip", "exact")
    gdas = RunConfig.resolve("gdas", 1, benchmark="nb101", preset="corrected").hyperparameters()
    assert gdas.tau_schedule == "endpoints"


def test_digits_changes_are_recorded_not_silent() -> None:
    mirror = {"cells_per_stack"} if RUN_PROTOCOL.num_stacks == SUPERNET_STACKS else set()
    paper = RunConfig.resolve("darts", 1, benchmark="digits", preset="paper")
    assert paper.bn_momentum == 0.997 and paper.head_bn_momentum == 0.1  # the preset's fidelity kept
    assert set(paper.benchmark_overrides) == {"augment"} | mirror and paper.augment is False
    corrected = RunConfig.resolve("darts", 1, benchmark="digits", preset="corrected")
    assert set(corrected.benchmark_overrides) == {"augment", "bn_momentum", "head_bn_momentum"} | mirror
    assert corrected.bn_momentum == 0.1 and "0.003 -> 0.1" in corrected.benchmark_overrides["bn_momentum"]
    explicit = RunConfig.resolve(
        "darts", 1, benchmark="digits", preset="corrected", overrides={"bn_momentum": "0.003"}
    )
    assert explicit.bn_momentum == 0.003 and "bn_momentum" not in explicit.benchmark_overrides


def test_digits_supernet_mirrors_the_ground_truth_network() -> None:
    cfg = RunConfig.resolve("darts", 1, benchmark="nb101", preset="paper")
    assert cfg.cells_per_stack == 3
    mirrored = get_benchmark("digits").adjustments(cfg, DigitsProtocol())  # 3 stacks x 1 cell
    value, why = mirrored["cells_per_stack"]
    assert value == DigitsProtocol().modules_per_stack == 1 and "3 stacks x 1 cell" in why
    # a one-stack ground truth has no supernet to mirror; NB-101 is never adjusted
    assert "cells_per_stack" not in get_benchmark("digits").adjustments(cfg, PROTOCOL_1X1)
    assert get_benchmark("nb101").adjustments(cfg) == {}
    # already mirrored: nothing to record
    cfg.cells_per_stack = 1
    assert "cells_per_stack" not in get_benchmark("digits").adjustments(cfg, DigitsProtocol())


@pytest.mark.usefixtures("fixture_cli")
@pytest.mark.parametrize("preset", ["paper", "corrected"])
def test_config_json_records_every_setting(preset: str, tmp_path: Path) -> None:
    from bench import run as cli

    out = tmp_path / "results"
    argv = ["--optimizer", "darts", "--epochs", "1", "--benchmark", "digits", "--preset", preset, "--out",
            str(out), "--no-progress", "--set", "batch_size=24", "--set", "init_channels=2",
            "--set", "cells_per_stack=1", "--set", "hessian=false"]  # fmt: skip
    assert cli.main(argv) == 0
    (config_path,) = out.rglob(results.CONFIG_JSON)
    record = json.loads(config_path.read_text())
    config = record["config"]
    assert set(config) == {f.name for f in dataclasses.fields(RunConfig)}
    assert config["preset"] == preset
    for key, value in CORRECTED_SETTINGS.items():
        if key not in config["benchmark_overrides"]:
            assert (config[key] == value) is (preset == "corrected"), key
    assert "augment" in config["benchmark_overrides"]


def test_paper_supernet_has_the_scripts_pooling_and_bn(toy_data) -> None:
    from bench.runs.parts import build_parts

    model = build_parts(tiny(), toy_data).model
    assert model.head_bn.momentum == 0.1 and model.stem.bn.momentum == 0.997
    assert model.downsample.padding == 1 and model.downsample(torch.zeros(1, 1, 32, 32)).shape[-1] == 17
    corrected = build_parts(tiny(CORRECTED_SETTINGS), toy_data).model
    assert corrected.head_bn.momentum == 0.003 and corrected.stem.bn.momentum == 0.003
    assert corrected.downsample(torch.zeros(1, 1, 32, 32)).shape[-1] == 16

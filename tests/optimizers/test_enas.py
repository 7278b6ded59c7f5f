"""ENAS: the controller's sampling distribution, REINFORCE's sign, valid cells, the trainer's view of it.

The generic tests (interface, two steps per space, one epoch through the trainer, resume, CLI) run ENAS
too: tests/optimizers/test_optimizers.py iterates every registered plug-in.
"""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from bench.runs.config import RunConfig
from bench.runs.trainer import Trainer
from bench.search.graph import hash_spec
from bench.search.spaces import PRIMITIVES, Architecture, SearchSpace
from optimizers.enas import (
    Controller,
    EnasHyperparameters,
    greedy_policy,
    sample_policy,
    subset_log_prob,
)
from tests.helpers import batch, make_optimizer, record_forwards, same, snapshot


# ---- one decision --------------------------------------------------------------------------------
def test_single_draws_follow_the_softmax() -> None:
    torch.manual_seed(0)
    logits = torch.tensor([0.7, -0.3, 0.1])
    n = 6000
    counts = Counter(sample_policy("op", 1, logits, 1)[0] for _ in range(n))
    freq = torch.tensor([counts[i] / n for i in range(3)])
    torch.testing.assert_close(freq, F.softmax(logits, -1), atol=0.025, rtol=0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_parent_sets_follow_drawing_without_replacement(k: int) -> None:
    """Sets of k distinct parents: frequencies match exp(subset_log_prob), which sums to 1 over all sets."""
    torch.manual_seed(1)
    logits = torch.tensor([1.0, -0.5, 0.3, 0.0, -1.2])
    sets = list(itertools.combinations(range(5), k))
    probs = {s: float(subset_log_prob(logits, s).exp()) for s in sets}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    n = 6000
    counts = Counter(sample_policy("parents", 4, logits, k) for _ in range(n))
    assert set(counts) <= set(sets)
    for s in sets:
        assert counts[s] / n == pytest.approx(probs[s], abs=0.025)
    # The greedy choice (the k most likely single draws) is the most likely set.
    assert greedy_policy("parents", 4, logits, k) == max(sets, key=probs.get)


def test_controller_op_frequencies_match_its_softmax() -> None:
    """With the controller's (fixed) parameters, the first op it draws follows softmax of its logits."""
    torch.manual_seed(2)
    space = SearchSpace(1)
    controller = Controller(space, EnasHyperparameters(lstm_size=16))
    seen = []

    def record(kind, node, logits, k):
        if kind == "op" and node == 1:
            seen.append(logits.detach().clone())
        return greedy_policy(kind, node, logits, k)

    controller.decide(record)
    probs = F.softmax(seen[0], -1)
    assert probs[2] < probs[0]  # NB1's op prior: conv1x1 starts least likely
    n = 400
    with torch.no_grad():
        counts = Counter(controller.sample().arch.ops[0] for _ in range(n))
    freq = torch.tensor([counts[i] / n for i in range(len(PRIMITIVES))])
    torch.testing.assert_close(freq, probs, atol=0.08, rtol=0)


def test_log_prob_of_a_sampled_cell_is_reproducible() -> None:
    torch.manual_seed(3)
    controller = Controller(SearchSpace(2), EnasHyperparameters(lstm_size=16))
    decision = controller.sample()
    # Replaying the sampled cell's decisions (teacher forcing) gives the log p it was sampled with.
    assert torch.allclose(controller.log_prob(decision.arch), decision.log_prob)
    assert float(decision.log_prob.detach()) < 0 and float(decision.entropy) > 0


# ---- REINFORCE -----------------------------------------------------------------------------------
@pytest.mark.parametrize("reward, direction", [(90.0, 1), (10.0, -1)])
def test_reinforce_moves_log_prob_with_the_advantage(reward: float, direction: int) -> None:
    """Above the baseline a step raises log p(sampled cell); below it, lowers it."""
    opt = make_optimizer("enas")
    opt.baseline = 50.0
    torch.manual_seed(4)
    decision = opt.controller.sample()
    before = float(opt.controller.log_prob(decision.arch))
    opt.reinforce(decision, reward)
    assert opt.baseline == pytest.approx(0.99 * 50.0 + 0.01 * reward)  # the baseline moves first
    after = float(opt.controller.log_prob(decision.arch))
    assert (after - before) * direction > 0


def test_controller_steps_learn_a_rewarded_op() -> None:
    """Rewarding cells by their count of conv1x1 blocks makes conv1x1 the most likely op everywhere."""
    opt = make_optimizer("enas", controller_lr=0.05, op_prior=False)
    torch.manual_seed(5)
    for _ in range(60):
        decision = opt.controller.sample()
        opt.reinforce(decision, 25.0 * sum(o == 2 for o in decision.arch.ops))
    assert opt.controller.most_likely().ops == (2, 2, 2, 2)


# ---- cells ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", [1, 2, 3])
def test_sampled_cells_are_valid(space: int) -> None:
    sp = SearchSpace(space)
    torch.manual_seed(space)
    controller = Controller(sp, EnasHyperparameters(lstm_size=16))
    with torch.no_grad():
        cells = [controller.sample().arch for _ in range(60)] + [controller.most_likely()]
    for arch in cells:
        assert len(arch.ops) == sp.num_blocks and all(0 <= o < len(PRIMITIVES) for o in arch.ops)
        assert len(arch.topology) == sp.num_blocks + 1
        for node, parents in enumerate(arch.topology, start=1):
            assert len(parents) == sp.num_parents[node - 1] == len(set(parents))
            assert list(parents) == sorted(parents) and all(0 <= p < node for p in parents)
            if node not in sp.input_alpha_nodes() and node != sp.output_node:
                assert parents == tuple(range(node))[: sp.num_parents[node - 1]]  # fixed parents
        weights = sp.one_hot(arch)
        assert sp.argmax_architecture(weights) == arch  # the 0/1 encoding decodes to the same cell
        assert len(hash_spec(*sp.spec(arch))) == 32
    assert len({c for c in cells}) > 10  # the untrained controller explores


def test_weight_step_trains_a_sampled_cell_and_runs_only_its_ops() -> None:
    opt = make_optimizer("enas")
    seen = record_forwards(opt.ctx.model)
    a0 = snapshot(opt.ctx.alphas)
    for i in range(3):
        opt.step(batch(i), batch(10 + i))
    assert len(seen) == 3 and same(a0, opt.ctx.alphas)  # weight steps only; the alphas wait
    sp = opt.ctx.space
    for weights, choice in ((c["weights"], c["op_choice"]) for c in seen):
        arch = sp.argmax_architecture(weights)
        assert same(weights, sp.one_hot(arch)) and torch.equal(choice, torch.tensor(arch.ops))
    assert len(opt._reward_batches) == 3


def test_epoch_end_writes_the_most_likely_cell_into_the_alphas() -> None:
    opt = make_optimizer("enas", controller_steps=5, reward_batches=2)
    opt.on_epoch_start(0)
    for i in range(3):
        opt.step(batch(i), batch(10 + i))
    state0 = {k: v.clone() for k, v in opt.controller.state_dict().items()}
    opt.on_epoch_end(0)
    assert len(opt.last_rewards) == 5 and all(0 <= r <= 100.01 for r in opt.last_rewards)
    assert any(not torch.equal(v, opt.controller.state_dict()[k]) for k, v in state0.items())
    cell = opt.controller.most_likely()
    sp = opt.ctx.space
    assert same(opt.ctx.alphas, sp.one_hot(cell))
    assert sp.argmax_architecture(opt.ctx.alphas) == cell
    assert same(opt.oneshot_weights(opt.ctx.alphas), sp.one_hot(cell))
    opt.on_epoch_start(1)
    assert not opt._reward_batches  # the next epoch's rewards use its own batches


def test_reward_is_the_cells_accuracy_in_percent() -> None:
    opt = make_optimizer("enas")
    arch = Architecture((1, 2, 0, 1), ((0,), (0, 1), (1, 2), (0, 3), (2, 4)))
    x, y = batch(7, n=16)
    model = opt.ctx.model
    model.eval()
    with torch.no_grad():
        expected = 100.0 * float((opt.forward(x, opt.ctx.space.one_hot(arch)).argmax(1) == y).float().mean())
    model.train()
    assert opt.reward(arch, (x, y)) == pytest.approx(expected)
    assert model.training  # the eval-mode reward leaves the model as it found it


def test_trainer_row_is_the_controllers_most_likely_cell(tmp_path, fixture_table, toy_data) -> None:
    cfg = RunConfig(optimizer="enas", space=1, epochs=1, batch_size=16, init_channels=4, cells_per_stack=1,
                    hessian=False, device="cpu", optimizer_params={"controller_steps": 4},
                    lookup_alphas="end")  # the row looks up the alphas the epoch produced  # fmt: skip
    trainer = Trainer(cfg, tmp_path, fixture_table, toy_data)
    outcome = trainer.run()
    cell = trainer.plugin.controller.most_likely()
    assert outcome.last_row is not None
    assert outcome.last_row["arch_hash"] == hash_spec(*trainer.space.spec(cell))

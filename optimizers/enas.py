"""ENAS (Pham et al., ICML 2018) as NAS-Bench-1Shot1's one-shot baseline (NB1 `optimizers/enas`).

An LSTM controller samples a cell; the shared weights train on sampled cells; the controller learns by
REINFORCE from the sampled cells' validation accuracy. Per epoch, as in NB1's `ENAS.run`:

1. Weight steps (the trainer's steps): each samples a cell from the controller and trains the shared
   weights on it: the cell's 0/1 encoding is the mixing weights, shared by all cells of the supernet,
   and only the chosen op of each block runs (`op_choice`). The trainer's validation batches are kept
   (the last `reward_batches` of the epoch) for step 2; there is no arch step.
2. Controller steps (`on_epoch_end`): `controller_steps` REINFORCE updates, each on one validation
   batch (cycling over the kept ones): sample a cell, reward = its top-1 accuracy in percent on the
   batch (supernet in eval mode, no gradient) plus `entropy_weight` times the sampled decisions' summed
   entropy; the baseline moves first, b <- d*b + (1-d)*reward (it starts at 0, as in NB1), then one Adam
   step on -log p(cell) * (reward - b).
3. The discretized architecture is the controller's most likely cell (greedy decoding: the most likely
   op, the k most likely parents), written into the alphas as a 0/1 encoding (like RSWS's incumbent),
   so the trainer's discretization, one-shot accuracy and alpha history all see it.

The controller (written from the description of NB1's `micro_controller.py`, itself a port of ENAS'
micro controller): an `LSTMCell` of `lstm_size` units walks the cell node by node. For each choice
block it first picks the parents, if the node chooses them (attention over the earlier nodes' anchors,
v·tanh(W1·anchor + W2·h)), then the op (a linear layer on h plus a learned bias); the op's embedding is
fed back and the new hidden state becomes the node's anchor. Last come the output's parents. Logits
are divided by `temperature`, then squashed: parents tanh_constant·tanh(·), ops
(tanh_constant/op_tanh_reduce)·tanh(·) plus, with `op_prior`, NB1's fixed op bias (+0.25, +0.25, -0.25)
and its learned op bias initialized to 10 for maxpool3x3 and conv3x3 (ENAS' "prefer convolutions"
start, carried over by NB1 to its own op order). Parents are drawn without replacement with the space's
parent counts; log p of a parent set is the exact probability of the set (the sum over the orders it can
be drawn in), and the input fed back is the mean of the chosen parents' anchors (NB1 feeds the last
drawn parent's anchor; the mean makes the cell's probability independent of the draw order).

Hyperparameters: NB1's values, read from its code (enas.py argument defaults, overridden where
ENASChild sets them): LSTM 64 units, Adam lr 3.5e-4 with betas (0.1, 0.999) and eps 1e-3, tanh
constant 2.5, op tanh reduce 5, temperature 5, entropy weight 1e-4, baseline decay 0.99, 300 controller
steps per epoch, 100 epochs (its cluster scripts). (The original ENAS micro search used tanh 1.10 and op
tanh reduce 2.5.)

Differences from NB1, all deliberate:
- Rewards use the last `reward_batches` (10) validation batches of the epoch in turn; NB1 draws 300 fresh
  batches. The plug-in only sees the trainer's batches, and keeping 300 would hold 300 batches in memory.
- The discretized cell is the controller's most likely cell (the brief for this harness); NB1 samples
  1,000 cells, scores each on one validation batch and re-scores the top 5 on the whole validation half.
- The shared weights train with NB1's batch 64, grad clip 0.25 and weight decay 1e-4 under the paper
  preset (`preset_settings`; the corrected preset keeps the run's 96 / 5 / 3e-4), but with the run's
  LR schedule: NB1 steps its cosine schedule once per BATCH with a period of `epochs` (100) batches, so
  its learning rate swings between 0.025 and 0.001 every 100 steps, which reads as a slip, not a
  protocol. Ops outside the sampled cell do not run (NB1 runs them x0).
- `eval_weights` (the Hessian) is the 0/1 cell itself, as for RSWS: a Hessian w.r.t. mixing weights at a
  discrete cell, not comparable to the softmax methods'.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import ConfigError
from bench.search.spaces import PRIMITIVES, Architecture, SearchSpace
from optimizers.base import Batch, OneShotOptimizer, SearchContext
from optimizers.perturb import eval_mode
from optimizers.registry import register

# NB1's controller optimizer: Adam with these betas and eps (ENASChild).
ADAM_BETAS = (0.1, 0.999)
ADAM_EPS = 1e-3
# NB1's op prior (in PRIMITIVES order: maxpool3x3, conv3x3-bn-relu, conv1x1-bn-relu).
OP_BIAS_INIT = (10.0, 10.0, 0.0)  # learned bias, initial value
OP_BIAS_FIXED = (0.25, 0.25, -0.25)  # added after the tanh, never learned


@dataclass
class EnasHyperparameters:
    lstm_size: int = 64  # controller LSTM units (NB1 --lstm_size)
    controller_lr: float = 3.5e-4  # Adam (NB1 ENASChild adam_learning_rate)
    tanh_constant: float = 2.5  # parent logits: c * tanh(logits / temperature)
    op_tanh_reduce: float = 5.0  # op logits: (c / reduce) * tanh(logits / temperature)
    temperature: float = 5.0
    entropy_weight: float = 1e-4  # reward bonus per nat of the sampled decisions' entropy
    baseline_decay: float = 0.99  # moving-average baseline of the reward
    controller_steps: int = 300  # REINFORCE updates after each epoch's weight steps
    reward_batches: int = 10  # last validation batches of the epoch the rewards are measured on
    op_prior: bool = True  # NB1's op bias (learned init 10 for maxpool/conv3x3; fixed +-0.25)

    def __post_init__(self) -> None:
        for key in ("lstm_size", "controller_steps", "reward_batches"):
            if getattr(self, key) < 1:
                raise ConfigError(f"--set {key}={getattr(self, key)}: must be at least 1")
        for key in ("controller_lr", "tanh_constant", "op_tanh_reduce", "temperature"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"--set {key}={getattr(self, key)}: must be > 0")
        if self.entropy_weight < 0:
            raise ConfigError(f"--set entropy_weight={self.entropy_weight}: must be >= 0")
        if not 0 <= self.baseline_decay < 1:
            raise ConfigError(f"--set baseline_decay={self.baseline_decay}: must lie in [0, 1)")


# ---- one decision ----------------------------------------------------------------------------------
def subset_log_prob(logits: Tensor, subset: Sequence[int]) -> Tensor:
    """log P(the set `subset`) when len(subset) items are drawn without replacement from softmax(logits):
    log of the sum, over the orders the set can be drawn in, of prod_j p_j / (1 - mass drawn before)."""
    log_p = F.log_softmax(logits, dim=-1)
    p = log_p.exp()
    terms = []
    for order in itertools.permutations(subset):
        term, drawn = log_p.new_zeros(()), log_p.new_zeros(())
        for i in order:
            term = term + log_p[i] - torch.log1p(-drawn)
            drawn = drawn + p[i]
        terms.append(term)
    return torch.logsumexp(torch.stack(terms), dim=0)


def entropy(logits: Tensor) -> Tensor:
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum()


Policy = Callable[[str, int, Tensor, int], tuple[int, ...]]  # (kind, node, logits, k) -> chosen indices


def sample_policy(kind: str, node: int, logits: Tensor, k: int) -> tuple[int, ...]:
    """Draw k distinct indices from softmax(logits) (torch's global RNG, checkpointed by the trainer)."""
    drawn = torch.multinomial(F.softmax(logits.detach(), dim=-1), k, replacement=False)
    return tuple(sorted(drawn.tolist()))


def greedy_policy(kind: str, node: int, logits: Tensor, k: int) -> tuple[int, ...]:
    """The k most likely indices: the most likely set under drawing without replacement (ties: lower)."""
    values = logits.detach().tolist()
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    return tuple(sorted(order[:k]))


def forced_policy(arch: Architecture) -> Policy:
    """Replays `arch`'s decisions, to score a given cell."""

    def choose(kind: str, node: int, logits: Tensor, k: int) -> tuple[int, ...]:
        return (arch.ops[node - 1],) if kind == "op" else tuple(arch.topology[node - 1])

    return choose


@dataclass
class Decision:
    """A cell and how the controller came to it."""

    arch: Architecture
    log_prob: Tensor  # log p(cell), differentiable w.r.t. the controller
    entropy: Tensor  # summed entropy of the decisions' distributions (detached)


# ---- the controller --------------------------------------------------------------------------------
class Controller(nn.Module):
    """The LSTM that decides a cell of `space` (see the module docstring)."""

    def __init__(self, space: SearchSpace, hp: EnasHyperparameters) -> None:
        super().__init__()
        self.space = space
        self.hp = hp
        n_ops, h = len(PRIMITIVES), hp.lstm_size
        self.embedding = nn.Embedding(n_ops + 1, h)  # 0: "next node" token; 1 + o: op o
        self.lstm = nn.LSTMCell(h, h)
        self.op_logits = nn.Linear(h, n_ops, bias=False)
        self.attn_anchor = nn.Linear(h, h, bias=False)
        self.attn_query = nn.Linear(h, h, bias=False)
        self.attn_v = nn.Linear(h, 1, bias=False)
        for p in self.parameters():  # ENAS' initialization
            nn.init.uniform_(p, -0.1, 0.1)
        prior = hp.op_prior
        self.op_bias = nn.Parameter(torch.tensor(OP_BIAS_INIT if prior else (0.0,) * n_ops))
        self.register_buffer("op_bias_fixed", torch.tensor(OP_BIAS_FIXED if prior else (0.0,) * n_ops))
        self.choosers = frozenset(space.input_alpha_nodes())

    def decide(self, policy: Policy) -> Decision:
        """Walk the cell once, choosing with `policy`; log p and entropy of the choices made."""
        hp, space = self.hp, self.space
        start = self.embedding.weight[:1]
        state = (start.new_zeros(1, hp.lstm_size), start.new_zeros(1, hp.lstm_size))
        state = self.lstm(start, state)
        anchors, keys = [state[0]], [self.attn_anchor(state[0])]  # node 0: the cell's input
        log_prob, ent = start.new_zeros(()), start.new_zeros(())
        ops: list[int] = []
        topology: list[tuple[int, ...]] = []

        def choose_parents(node: int, inp: Tensor, state: tuple[Tensor, Tensor]):
            nonlocal log_prob, ent
            state = self.lstm(inp, state)
            query = torch.tanh(torch.cat(keys[:node]) + self.attn_query(state[0]))
            logits = hp.tanh_constant * torch.tanh(self.attn_v(query).view(-1) / hp.temperature)
            parents = policy("parents", node, logits, space.num_parents[node - 1])
            log_prob = log_prob + subset_log_prob(logits, parents)
            ent = ent + entropy(logits).detach()
            return parents, torch.stack([anchors[p] for p in parents]).mean(0), state

        inp = start
        for node in range(1, space.num_blocks + 1):
            if node in self.choosers:
                parents, inp, state = choose_parents(node, inp, state)
            else:
                parents = tuple(range(node))[: space.num_parents[node - 1]]
            topology.append(parents)
            state = self.lstm(inp, state)
            logits = (self.op_logits(state[0]).view(-1) + self.op_bias) / hp.temperature
            logits = hp.tanh_constant / hp.op_tanh_reduce * torch.tanh(logits) + self.op_bias_fixed
            (op,) = policy("op", node, logits, 1)
            log_prob = log_prob + F.log_softmax(logits, dim=-1)[op]
            ent = ent + entropy(logits).detach()
            ops.append(op)
            state = self.lstm(self.embedding.weight[1 + op].unsqueeze(0), state)
            anchors.append(state[0])
            keys.append(self.attn_anchor(state[0]))
            inp = start
        parents, _, _ = choose_parents(space.output_node, inp, state)
        topology.append(parents)
        return Decision(Architecture(tuple(ops), tuple(topology)), log_prob, ent)

    def sample(self) -> Decision:
        return self.decide(sample_policy)

    def most_likely(self) -> Architecture:
        with torch.no_grad():
            return self.decide(greedy_policy).arch

    def log_prob(self, arch: Architecture) -> Tensor:
        return self.decide(forced_policy(arch)).log_prob


# ---- the plug-in -----------------------------------------------------------------------------------
@register("enas")
class Enas(OneShotOptimizer):
    label = "ENAS"
    reference_epochs = 100
    Hyperparameters = EnasHyperparameters

    @classmethod
    def preset_settings(cls, preset: str) -> dict[str, Any]:
        if preset == "paper":
            # NB1's ENAS child trains the shared weights with these (enas.py / ENASChild defaults).
            return {"batch_size": 64, "grad_clip": 0.25, "w_weight_decay": 1e-4}
        return {}

    def __init__(self, ctx: SearchContext, hp: EnasHyperparameters) -> None:
        super().__init__(ctx, hp)
        device = ctx.alphas[0].device
        self.controller = Controller(ctx.space, hp).to(device)
        self.controller_optim = torch.optim.Adam(
            self.controller.parameters(), lr=hp.controller_lr, betas=ADAM_BETAS, eps=ADAM_EPS
        )
        self.baseline = 0.0
        self.last_rewards: list[float] = []  # the latest epoch's rewards (diagnostics)
        self._reward_batches: deque[Batch] = deque(maxlen=hp.reward_batches)

    # ---- cells ---------------------------------------------------------------------------------
    def cell_weights(self, arch: Architecture) -> list[Tensor]:
        ref = self.ctx.alphas[0]
        return self.ctx.space.one_hot(arch, dtype=ref.dtype, device=ref.device)

    # ---- hooks ---------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        self._reward_batches.clear()  # rewards come from this epoch's batches only

    def forward(self, x: Tensor, weights: Sequence[Tensor]) -> Tensor:
        return self.ctx.model(x, weights, op_choice=weights[0].detach().argmax(-1))

    def eval_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        return list(alphas)

    def oneshot_weights(self, alphas: Sequence[Tensor]) -> list[Tensor]:
        """The discretized cell (the controller's most likely one, in the alphas) as 0/1 weights."""
        return self.cell_weights(self.ctx.space.argmax_architecture(alphas))

    def arch_step(self, batch_val: Batch, batch_train: Batch | None = None) -> None:
        self._reward_batches.append(batch_val)

    def weight_step_weights(self, batch_train: Batch) -> list[Tensor]:
        with torch.no_grad():
            return self.cell_weights(self.controller.sample().arch)

    def on_epoch_end(self, epoch: int) -> None:
        if not self._reward_batches:
            return  # no step ran this epoch: keep the controller and the cell
        batches = list(self._reward_batches)
        self.last_rewards = [
            self.controller_step(batches[i % len(batches)]) for i in range(self.hp.controller_steps)
        ]
        with torch.no_grad():
            for a, w in zip(self.ctx.alphas, self.cell_weights(self.controller.most_likely()), strict=True):
                a.copy_(w)

    # ---- REINFORCE -----------------------------------------------------------------------------
    def reward(self, arch: Architecture, batch: Batch) -> float:
        """Top-1 accuracy in percent of `arch` with the shared weights on `batch` (eval mode)."""
        x, y = batch
        with eval_mode(self.ctx.model), torch.no_grad():
            logits = self.forward(x, self.cell_weights(arch))
        return 100.0 * float((logits.argmax(1) == y).float().mean())

    def controller_step(self, batch: Batch) -> float:
        """One REINFORCE update from one sampled cell; returns its reward (entropy bonus included)."""
        decision = self.controller.sample()
        reward = self.reward(decision.arch, batch) + self.hp.entropy_weight * float(decision.entropy)
        self.reinforce(decision, reward)
        return reward

    def reinforce(self, decision: Decision, reward: float) -> None:
        """Baseline update first (as NB1 and ENAS), then an Adam step on -log p * advantage."""
        d = self.hp.baseline_decay
        self.baseline = d * self.baseline + (1 - d) * reward
        self.controller_optim.zero_grad(set_to_none=True)
        loss = -decision.log_prob * (reward - self.baseline)
        loss.backward()
        self.controller_optim.step()

    # ---- checkpoints ---------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {
            "controller": self.controller.state_dict(),
            "controller_optim": self.controller_optim.state_dict(),
            "baseline": self.baseline,
        }

    def load_extra_state(self, state: dict) -> None:
        if not state:
            return
        self.controller.load_state_dict(state["controller"])
        self.controller_optim.load_state_dict(state["controller_optim"])
        self.baseline = float(state["baseline"])

"""A search space's architectures as categorical parameters, the way NAS-Bench-1Shot1 encodes them for its
black-box optimizers (its ConfigSpace): one op per choice block, and one parent set per node that has a
choice of parents (the output included).

Parameter names are `op_<block>` (values: the op names of PRIMITIVES) and `parents_<node>` /
`parents_output` (values: a parent set written `0+2`; Optuna's categorical values must be plain
strings or numbers). Nodes with a single possible parent set (node 1 everywhere, node 2 in space 1)
have no parameter. Sampling every parameter uniformly is uniform over the raw architectures, as
`SearchSpace.sample` is.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from bench.search.spaces import PRIMITIVES, Architecture, SearchSpace

MUTATIONS = ("identity", "parents", "op")


def _parents_text(parents: tuple[int, ...]) -> str:
    return "+".join(map(str, parents))


class Encoding:
    """The categorical parameters of search space `space`, and the moves between architectures."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.params: dict[str, tuple[str, ...]] = {}
        self._parent_sets: list[tuple[tuple[int, ...], ...]] = []  # per node 1..B+1
        self._node_param: dict[int, str] = {}
        for b in range(1, space.num_blocks + 1):
            self.params[f"op_{b}"] = PRIMITIVES
        for node, k in enumerate(space.num_parents, start=1):
            sets = tuple(itertools.combinations(range(node), k))
            self._parent_sets.append(sets)
            if len(sets) > 1:
                name = "parents_output" if node == space.output_node else f"parents_{node}"
                self._node_param[node] = name
                self.params[name] = tuple(_parents_text(s) for s in sets)

    def __repr__(self) -> str:
        return f"Encoding(space={self.space.number}, params={len(self.params)})"

    @property
    def choice_nodes(self) -> tuple[int, ...]:
        """Nodes (1..B+1) whose parents are a choice."""
        return tuple(self._node_param)

    # ---- conversions ------------------------------------------------------------------------------
    def decode(self, values: Mapping[str, Any]) -> Architecture:
        """Parameter values (op names, `0+2` parent sets) -> Architecture."""
        ops = tuple(PRIMITIVES.index(values[f"op_{b}"]) for b in range(1, self.space.num_blocks + 1))
        topology = []
        for node, sets in enumerate(self._parent_sets, start=1):
            name = self._node_param.get(node)
            if name is None:
                topology.append(sets[0])
            else:
                topology.append(sets[self.params[name].index(values[name])])
        return Architecture(ops, tuple(topology))

    def encode(self, arch: Architecture) -> dict[str, str]:
        out = {f"op_{b}": PRIMITIVES[o] for b, o in enumerate(arch.ops, start=1)}
        for node, name in self._node_param.items():
            out[name] = _parents_text(arch.topology[node - 1])
        return out

    def suggest(self, trial: Any) -> Architecture:
        """An architecture from an Optuna trial (`trial.suggest_categorical` per parameter)."""
        return self.decode(
            {name: trial.suggest_categorical(name, list(c)) for name, c in self.params.items()}
        )

    # ---- random moves -----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random raw architecture."""
        ops = tuple(int(o) for o in rng.integers(len(PRIMITIVES), size=self.space.num_blocks))
        topology = tuple(sets[int(rng.integers(len(sets)))] for sets in self._parent_sets)
        return Architecture(ops, topology)

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """NAS-Bench-1Shot1's RE mutation (optimizers/regularized_evolution/run_regularized_evolution.py):
        one of identity, parent swap, op change, each with probability 1/3.

        Parent swap: a node with a choice of parents drops one of its parents for one it does not
        have yet. Op change: one choice block gets one of the two other ops.
        """
        kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        if kind == "identity":
            return arch
        if kind == "parents":
            nodes = self.choice_nodes
            node = nodes[int(rng.integers(len(nodes)))]
            parents = arch.topology[node - 1]
            others = [p for p in range(node) if p not in parents]
            drop = parents[int(rng.integers(len(parents)))]
            add = others[int(rng.integers(len(others)))]
            new = tuple(sorted((set(parents) - {drop}) | {add}))
            topology = list(arch.topology)
            topology[node - 1] = new
            return Architecture(arch.ops, tuple(topology))
        block = int(rng.integers(len(arch.ops)))
        choices = [o for o in range(len(PRIMITIVES)) if o != arch.ops[block]]
        ops = list(arch.ops)
        ops[block] = choices[int(rng.integers(len(choices)))]
        return Architecture(tuple(ops), arch.topology)

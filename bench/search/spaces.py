"""The three NAS-Bench-1Shot1 search spaces: alpha shapes, discretization, enumeration.

No training code lives here. A cell is a DAG: node 0 = input, nodes 1..B = choice blocks, node B+1 =
output. Each choice block picks one op from `PRIMITIVES` and a fixed number of parents among the
earlier nodes; the output picks its parents among the input and all choice blocks.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.errors import HarnessError
from bench.search.graph import INPUT, OUTPUT, hash_pruned

log = logging.getLogger(__name__)

# Column order of the op alphas (the reference code's order); not NAS-Bench-101's hashing order.
PRIMITIVES: tuple[str, ...] = ("maxpool3x3", "conv3x3-bn-relu", "conv1x1-bn-relu")
NB101_VERTICES = 7
# Spaces 1 and 2 have 4 choice blocks (6 vertices); NAS-Bench-1Shot1 pads them to 7 with an
# unconnected conv1x1 vertex at index 5, which NB-101 pruning removes again.
DUMMY_INDEX = 5
DUMMY_OP = "conv1x1-bn-relu"
UNIQUE_CACHE_VERSION = 1


class UnknownSpaceError(HarnessError, ValueError):
    """A search-space number other than 1, 2 or 3."""


@dataclass(frozen=True)
class _SpaceDef:
    num_parents: tuple[int, ...]  # parents of node 1..B, then of the output
    best_test_error: float  # best single-run NB-101 test error in the space (reference constants)
    best_valid_error: float


_SPACES: dict[int, _SpaceDef] = {
    1: _SpaceDef((1, 2, 2, 2, 2), 0.05448716878890991, 0.049278855323791504),
    2: _SpaceDef((1, 1, 2, 2, 3), 0.057592153549194336, 0.051582515239715576),
    3: _SpaceDef((1, 1, 1, 2, 2, 2), 0.05338543653488159, 0.04847759008407593),
}

Topology = tuple[tuple[int, ...], ...]  # parents of node 1..B and of the output (node B+1)


@dataclass(frozen=True)
class Architecture:
    """One cell before NB-101 mapping: an op index (into PRIMITIVES) per choice block and the parents of
    nodes 1..B and of the output."""

    ops: tuple[int, ...]
    topology: Topology


class SearchSpace:
    """NAS-Bench-1Shot1 search space `number` (1, 2 or 3)."""

    def __init__(self, number: int) -> None:
        if number not in _SPACES:
            raise UnknownSpaceError(f"unknown search space {number!r}; choose 1, 2 or 3")
        d = _SPACES[number]
        self.number = number
        self.num_parents = d.num_parents
        self.num_blocks = len(d.num_parents) - 1
        self.best_test_error = d.best_test_error
        self.best_valid_error = d.best_valid_error

    def __repr__(self) -> str:
        return f"SearchSpace({self.number})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and other.number == self.number

    def __hash__(self) -> int:
        return hash(("SearchSpace", self.number))

    # ---- architecture parameters -------------------------------------------------------------
    @property
    def output_node(self) -> int:
        return self.num_blocks + 1

    def input_alpha_nodes(self) -> tuple[int, ...]:
        """Choice blocks that choose among their candidate parents (and so carry input alphas)."""
        return tuple(i for i in range(1, self.num_blocks + 1) if i > self.num_parents[i - 1])

    def alpha_shapes(self) -> dict[str, tuple[int, int]]:
        """Ordered names and shapes of the arch tensors: ops, output, then inputs of each node."""
        shapes = {"ops": (self.num_blocks, len(PRIMITIVES)), "output": (1, self.num_blocks + 1)}
        for i in self.input_alpha_nodes():
            shapes[f"inputs_{i}"] = (1, i)
        return shapes

    @property
    def num_alphas(self) -> int:
        return sum(r * c for r, c in self.alpha_shapes().values())

    def init_alphas(
        self, generator: torch.Generator | None = None, device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        """Fresh alphas, 1e-3·N(0, 1) as in the reference, as leaf tensors requiring grad."""
        return [
            (1e-3 * torch.randn(shape, generator=generator)).to(device).requires_grad_(True)
            for shape in self.alpha_shapes().values()
        ]

    # ---- topologies and NB-101 mapping -------------------------------------------------------
    def topologies(self) -> Iterator[Topology]:
        """Every parent-set choice: the product of combinations per node, output last."""
        per_node = [
            list(itertools.combinations(range(node), k)) for node, k in enumerate(self.num_parents, start=1)
        ]
        return itertools.product(*per_node)

    def num_topologies(self) -> int:
        n = 1
        for node, k in enumerate(self.num_parents, start=1):
            n *= len(list(itertools.combinations(range(node), k)))
        return n

    def _live_nodes(self, topology: Topology) -> list[int]:
        """Nodes reached by walking back from the output; loose ends never enter the cell."""
        out = self.output_node
        live = {out}
        stack = [out]
        while stack:
            node = stack.pop()
            for p in topology[node - 1]:
                if p not in live:
                    live.add(p)
                    stack.append(p)
        return sorted(live)

    def _nb101_index(self, node: int) -> int:
        if self.num_blocks == 4 and node == self.output_node:
            return NB101_VERTICES - 1
        return node

    def to_nb101(self, topology: Topology, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """A topology plus one op per choice block as a 7×7 NAS-Bench-101 spec (unpruned)."""
        if len(ops) != self.num_blocks:
            raise ValueError(f"space {self.number} needs {self.num_blocks} ops, got {len(ops)}")
        matrix = np.zeros((NB101_VERTICES, NB101_VERTICES), dtype=np.int8)
        for node in self._live_nodes(topology):
            if node == 0:
                continue
            for p in topology[node - 1]:
                matrix[self._nb101_index(p), self._nb101_index(node)] = 1
        nb_ops = [INPUT, *ops]
        if self.num_blocks == 4:
            nb_ops.append(DUMMY_OP)
        nb_ops.append(OUTPUT)
        return matrix, nb_ops

    # ---- discretization ----------------------------------------------------------------------
    def argmax_architecture(self, alphas: Sequence[torch.Tensor | np.ndarray]) -> Architecture:
        """Argmax op per block, top-k parents per node; ties go to the lower index, always."""
        shapes = self.alpha_shapes()
        if len(alphas) != len(shapes):
            raise ValueError(f"space {self.number} has {len(shapes)} alpha tensors, got {len(alphas)}")
        arrays = {}
        for (name, shape), a in zip(shapes.items(), alphas, strict=True):
            arr = a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, float)
            if arr.shape != shape:
                raise ValueError(f"alpha tensor {name!r} has shape {arr.shape}, expected {shape}")
            arrays[name] = arr
        ops = tuple(int(np.argmax(row)) for row in arrays["ops"])  # argmax: first maximum

        def top_k(values: np.ndarray, k: int) -> tuple[int, ...]:
            order = np.argsort(-values, kind="stable")  # stable: equal values keep index order
            return tuple(sorted(int(i) for i in order[:k]))

        topology = []
        for node, k in enumerate(self.num_parents[:-1], start=1):
            name = f"inputs_{node}"
            topology.append(top_k(arrays[name][0], k) if name in arrays else tuple(range(node))[:k])
        topology.append(top_k(arrays["output"][0], self.num_parents[-1]))
        return Architecture(ops, tuple(topology))

    def discretize(self, alphas: Sequence[torch.Tensor | np.ndarray]) -> tuple[np.ndarray, list[str]]:
        """The NB-101 (matrix, ops) of the argmax architecture (unpruned)."""
        return self.spec(self.argmax_architecture(alphas))

    def spec(self, arch: Architecture) -> tuple[np.ndarray, list[str]]:
        """`arch` as an (unpruned) NAS-Bench-101 (matrix, ops)."""
        return self.to_nb101(arch.topology, [PRIMITIVES[o] for o in arch.ops])

    def sample(self, generator: torch.Generator | None = None) -> Architecture:
        """A uniformly random cell: one op per choice block, a random parent subset of the right size for
        every node that chooses its parents, and for the output (raw architectures, not unique models)."""
        ops = tuple(torch.randint(len(PRIMITIVES), (self.num_blocks,), generator=generator).tolist())
        topology = []
        for node, k in enumerate(self.num_parents, start=1):
            parents = torch.randperm(node, generator=generator)[:k].sort().values
            topology.append(tuple(parents.tolist()))
        return Architecture(ops, tuple(topology))

    def one_hot(
        self, arch: Architecture, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        """The 0/1 mixing weights of `arch` in alpha_shapes order: the chosen op of each block, and 1 on
        each chosen parent (the discrete cell sums its parents, as NB-101 does)."""
        out = []
        for name, shape in self.alpha_shapes().items():
            w = torch.zeros(shape, dtype=dtype, device=device)
            if name == "ops":
                w[torch.arange(len(arch.ops)), torch.tensor(arch.ops)] = 1.0
            else:
                node = self.output_node if name == "output" else int(name.split("_", 1)[1])
                w[0, list(arch.topology[node - 1])] = 1.0
            out.append(w)
        return out

    # ---- enumeration -------------------------------------------------------------------------
    def num_raw_architectures(self) -> int:
        return self.num_topologies() * len(PRIMITIVES) ** self.num_blocks

    def enumerate(self) -> Iterator[tuple[np.ndarray, list[str]]]:
        """Every raw architecture (topology × ops) as an unpruned 7×7 NB-101 spec."""
        for topology in self.topologies():
            for ops in itertools.product(PRIMITIVES, repeat=self.num_blocks):
                yield self.to_nb101(topology, ops)

    def _live_graphs(self) -> list[np.ndarray]:
        """The distinct pruned adjacency matrices over all topologies (many topologies share one)."""
        graphs: dict[bytes, np.ndarray] = {}
        dummy_ops = [PRIMITIVES[0]] * self.num_blocks
        for topology in self.topologies():
            matrix, _ = self.to_nb101(topology, dummy_ops)
            live = [self._nb101_index(n) for n in self._live_nodes(topology)]
            pruned = np.ascontiguousarray(matrix[np.ix_(live, live)])
            graphs.setdefault(pruned.tobytes(), pruned)
        return list(graphs.values())

    def architecture_counts(self, cache_dir: Path | None = None) -> dict[str, int]:
        """Hash -> how many raw architectures (topology x op choices, `enumerate`) are that model: the
        weights under which a uniformly random architecture of the space (random search's draw) is each
        unique model. Sums to `num_raw_architectures()`; ops of blocks that do not reach the output
        multiply a pruned graph's weight instead of being hashed. Cached on disk like `unique_specs`."""
        path = _unique_cache_path(self.number, cache_dir).with_name(
            f"space{self.number}_counts_v{UNIQUE_CACHE_VERSION}.npz"
        )
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return dict(zip(z["hashes"].tolist(), z["counts"].tolist(), strict=True))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable architecture-count cache %s (%s); rebuilding", path, exc)
        dummy_ops = [PRIMITIVES[0]] * self.num_blocks
        graphs: dict[bytes, tuple[np.ndarray, int]] = {}
        for topology in self.topologies():
            matrix, _ = self.to_nb101(topology, dummy_ops)
            live = [self._nb101_index(n) for n in self._live_nodes(topology)]
            pruned = np.ascontiguousarray(matrix[np.ix_(live, live)])
            dead_blocks = self.num_blocks - (len(live) - 2)
            key = pruned.tobytes()
            old = graphs.get(key, (pruned, 0))
            graphs[key] = (old[0], old[1] + len(PRIMITIVES) ** dead_blocks)
        counts: dict[str, int] = {}
        for pruned, weight in graphs.values():
            for ops in itertools.product(PRIMITIVES, repeat=pruned.shape[0] - 2):
                h = hash_pruned(pruned, (INPUT, *ops, OUTPUT))
                counts[h] = counts.get(h, 0) + weight
        hashes = sorted(counts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, hashes=np.array(hashes, dtype="<U32"), counts=np.array([counts[h] for h in hashes]))
        os.replace(tmp, path)
        return counts

    @staticmethod
    def _hash_labelings(graphs: Sequence[np.ndarray]) -> dict[str, tuple[bytes, tuple]]:
        """Hash → (pruned matrix bytes, pruned ops) for every op choice on the given pruned graphs.

        Ops of blocks that do not reach the output cannot change the pruned spec, so only the live
        blocks' op choices are hashed: far fewer hashes than raw architectures.
        """
        found: dict[str, tuple[bytes, tuple]] = {}
        for pruned in graphs:
            for ops in itertools.product(PRIMITIVES, repeat=pruned.shape[0] - 2):
                spec_ops = (INPUT, *ops, OUTPUT)
                found.setdefault(hash_pruned(pruned, spec_ops), (pruned.tobytes(), spec_ops))
        return found

    def unique_specs(
        self, cache_dir: Path | None = None, n_jobs: int = 1
    ) -> dict[str, tuple[np.ndarray, list[str]]]:
        """Every unique NB-101 model of the space: hash → one pruned (matrix, ops).

        The result is cached on disk (it takes a while for space 3) under `cache_dir`, default the
        user cache directory; the cache is rebuilt when missing or from another version.
        """
        path = _unique_cache_path(self.number, cache_dir)
        if path.exists():
            try:
                return _load_unique(path)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable unique-spec cache %s (%s); rebuilding", path, exc)
        graphs = self._live_graphs()
        if n_jobs == 1:
            found = self._hash_labelings(graphs)
        else:
            from joblib import Parallel, delayed

            chunks = [graphs[i :: n_jobs * 4] for i in range(n_jobs * 4)]
            found = {}
            for part in Parallel(n_jobs=n_jobs)(delayed(self._hash_labelings)(c) for c in chunks):
                for h, v in part.items():
                    found.setdefault(h, v)
        specs = {
            h: (np.frombuffer(m, dtype=np.int8).reshape(len(o), len(o)).copy(), list(o))
            for h, (m, o) in found.items()
        }
        _save_unique(path, specs)
        return specs

    def unique_hashes(self, cache_dir: Path | None = None, n_jobs: int = 1) -> frozenset[str]:
        return frozenset(self.unique_specs(cache_dir, n_jobs))


def default_cache_dir() -> Path:
    """Where derived, rebuildable data lives: $NB1SHOT1_CACHE or the user cache directory."""
    env = os.environ.get("NB1SHOT1_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nasbench-1shot1-harness"))


def _unique_cache_path(space: int, cache_dir: Path | None) -> Path:
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return base / "spaces" / f"space{space}_unique_v{UNIQUE_CACHE_VERSION}.npz"


def _save_unique(path: Path, specs: dict[str, tuple[np.ndarray, list[str]]]) -> None:
    hashes = sorted(specs)
    matrices = np.zeros((len(hashes), NB101_VERTICES, NB101_VERTICES), dtype=np.int8)
    ops = np.full((len(hashes), NB101_VERTICES), "", dtype="<U15")
    sizes = np.zeros(len(hashes), dtype=np.int8)
    for i, h in enumerate(hashes):
        m, o = specs[h]
        n = len(o)
        matrices[i, :n, :n] = m
        ops[i, :n] = o
        sizes[i] = n
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, hashes=np.array(hashes, dtype="<U32"), matrices=matrices, ops=ops, sizes=sizes)
    os.replace(tmp, path)


def _load_unique(path: Path) -> dict[str, tuple[np.ndarray, list[str]]]:
    with np.load(path, allow_pickle=False) as z:
        hashes, matrices, ops, sizes = z["hashes"], z["matrices"], z["ops"], z["sizes"]
    out = {}
    for h, m, o, n in zip(hashes.tolist(), matrices, ops.tolist(), sizes.tolist(), strict=True):
        out[h] = (m[:n, :n].copy(), o[:n])
    return out


def summary_table(n_jobs: int = 1, cache_dir: Path | None = None) -> str:
    """A Markdown table of the per-space counts, computed (never typed in) for the README."""
    lines = [
        "| space | choice blocks | arch parameters | topologies | raw architectures | unique NB-101 models |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k in sorted(_SPACES):
        s = SearchSpace(k)
        unique = len(s.unique_specs(cache_dir=cache_dir, n_jobs=n_jobs))
        lines.append(
            f"| {k} | {s.num_blocks} | {s.num_alphas} | {s.num_topologies():,} | "
            f"{s.num_raw_architectures():,} | {unique:,} |"
        )
    return "\n".join(lines)

"""NAS-Bench-101 cell specs: validation, pruning and the isomorphism-invariant hash.

Pure Python and NumPy, no TensorFlow. The hash reproduces google-research/nasbench exactly (it is what
the tabular benchmark is keyed by), so every detail below is load-bearing: Python ints in `str()`,
the label order, and the sorted-neighbour rounds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
# Order used for hashing only (NAS-Bench-101's `graph_util` labels); not the op-alpha column order.
HASH_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9


class InvalidSpecError(ValueError):
    """A cell spec that is not a NAS-Bench-101 model (malformed, disconnected, too large)."""


def _as_matrix(matrix: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidSpecError(f"adjacency matrix must be square, got shape {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise InvalidSpecError("adjacency matrix must contain only 0 and 1")
    if np.tril(m).any():
        raise InvalidSpecError("adjacency matrix must be strictly upper triangular (a DAG in vertex order)")
    return m.astype(np.int8)


def prune(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Drop vertices not on an input→output path, exactly as NAS-Bench-101's ModelSpec does.

    Raises InvalidSpecError when the output is unreachable from the input.
    """
    m = _as_matrix(matrix)
    n = m.shape[0]
    ops = list(ops)
    if len(ops) != n:
        raise InvalidSpecError(f"{len(ops)} ops for a {n}x{n} matrix")
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidSpecError("ops must start with 'input' and end with 'output'")
    bad = [op for op in ops[1:-1] if op not in HASH_OPS]
    if bad:
        raise InvalidSpecError(f"unknown op(s) {bad}; allowed: {list(HASH_OPS)}")

    from_input = {0}
    frontier = [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if m[top, v] and v not in from_input:
                from_input.add(v)
                frontier.append(v)
    to_output = {n - 1}
    frontier = [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(0, top):
            if m[v, top] and v not in to_output:
                to_output.add(v)
                frontier.append(v)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        raise InvalidSpecError("the output is not reachable from the input")
    return m[np.ix_(keep, keep)], [ops[i] for i in keep]


def check_in_nb101(matrix: np.ndarray, ops: Sequence[str]) -> None:
    """Raise InvalidSpecError if a pruned spec exceeds NAS-Bench-101's vertex or edge budget."""
    n = matrix.shape[0]
    if n > MAX_VERTICES:
        raise InvalidSpecError(f"{n} vertices after pruning; NAS-Bench-101 has at most {MAX_VERTICES}")
    edges = int(matrix.sum())
    if edges > MAX_EDGES:
        raise InvalidSpecError(f"{edges} edges after pruning; NAS-Bench-101 has at most {MAX_EDGES}")


@lru_cache(maxsize=None)
def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_pruned(matrix: np.ndarray, ops: Sequence[str]) -> str:
    """The NAS-Bench-101 module hash of an already pruned spec."""
    n = matrix.shape[0]
    labels = [-1] + [HASH_OPS.index(op) for op in ops[1:-1]] + [-2]
    # Python ints on purpose: str(np.int64(2)) is "np.int64(2)" under NumPy 2 and changes the hash.
    in_edges = [int(x) for x in matrix.sum(axis=0)]
    out_edges = [int(x) for x in matrix.sum(axis=1)]
    rows = matrix.tolist()
    preds = [[w for w in range(n) if rows[w][v]] for v in range(n)]
    succs = [[w for w in range(n) if rows[v][w]] for v in range(n)]
    hashes = [_md5(str((out_edges[v], in_edges[v], labels[v]))) for v in range(n)]
    md5 = hashlib.md5
    for _ in range(n):
        hashes = [
            md5(
                (
                    "".join(sorted([hashes[w] for w in preds[v]]))
                    + "|"
                    + "".join(sorted([hashes[w] for w in succs[v]]))
                    + "|"
                    + hashes[v]
                ).encode("utf-8")
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def hash_spec(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> str:
    """Prune, check the NAS-Bench-101 budget and hash; the key of the tabular benchmark."""
    pm, pops = prune(matrix, ops)
    check_in_nb101(pm, pops)
    return hash_pruned(pm, pops)


def ops_from_labels(labels: Sequence[int]) -> list[str]:
    """Integer op labels (-1 input, 0 conv3x3, 1 conv1x1, 2 maxpool, -2 output, -3 padding) to names."""
    names = {-1: INPUT, -2: OUTPUT, 0: CONV3X3, 1: CONV1X1, 2: MAXPOOL3X3}
    return [names[int(x)] for x in labels if int(x) != -3]

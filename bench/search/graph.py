"""NAS-Bench-101 cell specs: validation, pruning and the isomorphism-invariant hash.

Pure Python, no TensorFlow. The hash reproduces google-research/nasbench exactly (it is what the tabular
benchmark is keyed by), so every detail below is load-bearing: Python ints in `str()`, the label order,
and the sorted-neighbour rounds.

Speed matters here: the search-space enumeration hashes over a million specs and every table query by
spec hashes once. NumPy calls cost a microsecond each on 7x7 arrays, so the hot path works on Python
ints instead: each adjacency row becomes a bitmask (bit j set = edge to vertex j), pruning is two
bitmask sweeps, and the hashing rounds build their strings with as few Python operations as possible.
What is left is dominated by the n*n + 1 MD5 calls the hash itself needs.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from bench.errors import HarnessError

try:  # CPython's own MD5 has less per-call overhead than OpenSSL's on these ~100-byte inputs.
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - interpreters built without it
    _md5 = hashlib.md5

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
# Order used for hashing only (NAS-Bench-101's `graph_util` labels); not the op-alpha column order.
HASH_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9

# Read-only lookup tables, built once at import (about 10 ms).
_LABEL = {op: i for i, op in enumerate(HASH_OPS)}
# Every 0/1 row of length 1..7 -> its bitmask. Keys compare equal for ints, bools and floats alike,
# matching the 0/1 check of the NumPy path; anything else misses and takes the slow, exact path.
_ROW_MASK = {
    bits: sum(b << j for j, b in enumerate(bits))
    for n in range(1, MAX_VERTICES + 1)
    for bits in itertools.product((0, 1), repeat=n)
}
_SET_BITS = tuple(tuple(j for j in range(MAX_VERTICES) if m >> j & 1) for m in range(1 << MAX_VERTICES))


def _compaction_table() -> tuple[int, ...]:
    """_COMPACT[keep << 7 | mask]: the bits of `mask` at the positions set in `keep`, packed to the low
    end (a software PEXT), so restricting a graph's rows to the kept vertices is one lookup per row."""
    table: list[int] = []
    for keep in range(1 << MAX_VERTICES):
        # Where bit j of a row lands after compaction (0 if vertex j is dropped).
        target = [
            1 << (keep & ((1 << j) - 1)).bit_count() if keep >> j & 1 else 0 for j in range(MAX_VERTICES)
        ]
        row = [0] * (1 << MAX_VERTICES)
        for mask in range(1, 1 << MAX_VERTICES):
            row[mask] = row[mask & (mask - 1)] | target[(mask & -mask).bit_length() - 1]
        table.extend(row)
    return tuple(table)


_COMPACT = _compaction_table()
# Round-0 vertex hashes: md5(str((out_degree, in_degree, label))) for every value a <= 7-vertex cell has.
_INITIAL = {
    (o, i, lab): hashlib.md5(str((o, i, lab)).encode("utf-8")).hexdigest()
    for o in range(MAX_VERTICES)
    for i in range(MAX_VERTICES)
    for lab in (-2, -1, *range(len(HASH_OPS)))
}
# Bounded memo for hash_spec: a trainer queries the same discretized cell every epoch.
_HASH_CACHE_SIZE = 1 << 15


class InvalidSpecError(HarnessError, ValueError):
    """A cell spec that is not a NAS-Bench-101 model (malformed, disconnected, too large)."""


def _as_matrix(matrix: Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    try:
        m = np.asarray(matrix)
    except ValueError as e:  # ragged nested lists
        raise InvalidSpecError(f"adjacency matrix must be a square 0/1 matrix ({e})") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidSpecError(f"adjacency matrix must be square, got shape {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise InvalidSpecError("adjacency matrix must contain only 0 and 1")
    if np.tril(m).any():
        raise InvalidSpecError("adjacency matrix must be strictly upper triangular (a DAG in vertex order)")
    return m.astype(np.int8)


def _row_masks(matrix: Sequence[Sequence[int]] | np.ndarray) -> list[int]:
    """Validated rows as bitmasks; the NumPy path only runs for odd input (and raises its errors)."""
    rows = matrix.tolist() if isinstance(matrix, np.ndarray) else matrix
    try:
        n = len(rows)
        if n <= MAX_VERTICES:
            masks = []
            for i, row in enumerate(rows):
                mask = _ROW_MASK.get(tuple(row))
                # Strictly upper triangular: no bit at or left of the diagonal.
                if mask is None or len(row) != n or mask & ((2 << i) - 1):
                    break
                masks.append(mask)
            else:
                return masks
    except TypeError:
        pass
    m = _as_matrix(matrix)
    return [sum(1 << j for j, x in enumerate(row) if x) for row in m.tolist()]


def _labels(ops: Sequence[str], n: int) -> list[int]:
    if len(ops) != n:
        raise InvalidSpecError(f"{len(ops)} ops for a {n}x{n} matrix")
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidSpecError("ops must start with 'input' and end with 'output'")
    try:
        return [-1, *[_LABEL[op] for op in ops[1:-1]], -2]
    except (KeyError, TypeError):
        bad = [op for op in ops[1:-1] if op not in HASH_OPS]
        raise InvalidSpecError(f"unknown op(s) {bad}; allowed: {list(HASH_OPS)}") from None


def _keep_mask(masks: list[int]) -> int:
    """Vertices on some input->output path; 0 when the output is unreachable."""
    n = len(masks)
    reach = 1
    for v in range(n):
        if reach >> v & 1:
            reach |= masks[v]
    coreach = 1 << (n - 1)
    for v in range(n - 2, -1, -1):
        if masks[v] & coreach:
            coreach |= 1 << v
    return reach & coreach


def _compact(masks: list[int], keep: int) -> tuple[list[int], list[int]]:
    """Masks restricted to the kept vertices (renumbered in order), and the kept vertex indices."""
    if len(masks) <= MAX_VERTICES:
        base = keep << MAX_VERTICES
        idx = _SET_BITS[keep]
        return [_COMPACT[base | masks[v]] for v in idx], list(idx)
    idx = [v for v in range(len(masks)) if keep >> v & 1]
    return [sum(1 << k for k, w in enumerate(idx) if masks[v] >> w & 1) for v in idx], idx


def prune_masks(
    matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]
) -> tuple[list[int], list[int], list[int]]:
    """(pruned row masks, pruned labels, kept vertex indices) of a raw spec."""
    masks = _row_masks(matrix)
    labels = _labels(ops, len(masks))
    keep = _keep_mask(masks)
    if not keep:
        raise InvalidSpecError("the output is not reachable from the input")
    if keep == (1 << len(masks)) - 1:
        return masks, labels, list(range(len(masks)))
    masks, idx = _compact(masks, keep)
    return masks, [labels[v] for v in idx], idx


def check_budget(masks: list[int]) -> None:
    """InvalidSpecError unless pruned row masks fit NAS-Bench-101's vertex and edge budget."""
    n = len(masks)
    if n > MAX_VERTICES:
        raise InvalidSpecError(f"{n} vertices after pruning; NAS-Bench-101 has at most {MAX_VERTICES}")
    edges = sum(m.bit_count() for m in masks)
    if edges > MAX_EDGES:
        raise InvalidSpecError(f"{edges} edges after pruning; NAS-Bench-101 has at most {MAX_EDGES}")


def _slot(mask: int) -> tuple[int, int, int, tuple[int, ...]]:
    """(kind, first, second, all) of a neighbour bitmask for the hashing loop.

    kind 1 covers zero or one neighbour: index -1 reads the '' sentinel at the end of the hash list.
    """
    bits = tuple(j for j in range(mask.bit_length()) if mask >> j & 1)
    if len(bits) <= 1:
        return 1, bits[0] if bits else -1, -1, bits
    return len(bits), bits[0], bits[1], bits


_SLOT = tuple(_slot(m) for m in range(1 << MAX_VERTICES))


def hash_masks(masks: Sequence[int], labels: Sequence[int]) -> str:
    """The module hash of a pruned spec given as row bitmasks and integer labels."""
    n = len(masks)
    small = n <= MAX_VERTICES
    pmasks = [0] * n  # column bitmasks: bit w set = edge w -> v
    for w, m in enumerate(masks):
        for v in _SET_BITS[m] if small else _slot(m)[3]:
            pmasks[v] |= 1 << w
    # Python ints on purpose: str(np.int64(2)) is "np.int64(2)" under NumPy 2 and changes the hash.
    keys = [(m.bit_count(), p.bit_count(), lab) for m, p, lab in zip(masks, pmasks, labels, strict=True)]
    hashes = [_INITIAL.get(k) or hashlib.md5(str(k).encode("utf-8")).hexdigest() for k in keys]
    # Neighbour lists of 0-2 vertices (nearly all of them) are sorted by one comparison instead of a
    # list + sorted() + join.
    slot = _SLOT.__getitem__ if small else _slot
    slots = list(zip(map(slot, pmasks), map(slot, masks), range(n), strict=True))
    md5 = _md5
    join = "".join
    hashes.append("")
    for _ in range(n):
        new = []
        append = new.append
        for (pk, pa, pb, ps), (sk, sa, sb, ss), v in slots:
            if pk == 1:
                a = hashes[pa]
            elif pk == 2:
                a = hashes[pa]
                x = hashes[pb]
                a = f"{a}{x}" if a < x else f"{x}{a}"
            else:
                a = join(sorted([hashes[w] for w in ps]))
            if sk == 1:
                b = hashes[sa]
            elif sk == 2:
                b = hashes[sa]
                x = hashes[sb]
                b = f"{b}{x}" if b < x else f"{x}{b}"
            else:
                b = join(sorted([hashes[w] for w in ss]))
            append(md5(f"{a}|{b}|{hashes[v]}".encode()).hexdigest())
        append("")
        hashes = new
    hashes.pop()
    # str(sorted(list_of_str)), spelled out: "['h1', 'h2', ...]" (hex digests need no escaping).
    return hashlib.md5(("['" + "', '".join(sorted(hashes)) + "']").encode("utf-8")).hexdigest()


@lru_cache(maxsize=_HASH_CACHE_SIZE)
def _hash_cached(masks: tuple[int, ...], labels: tuple[int, ...]) -> str:
    return hash_masks(masks, labels)


def prune(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Drop vertices not on an input→output path, exactly as NAS-Bench-101's ModelSpec does.

    Raises InvalidSpecError when the output is unreachable from the input.
    """
    masks, _, idx = prune_masks(matrix, ops)
    k = len(masks)
    pm = np.array([[m >> j & 1 for j in range(k)] for m in masks], dtype=np.int8).reshape(k, k)
    return pm, [ops[i] for i in idx]


def check_in_nb101(matrix: np.ndarray, ops: Sequence[str]) -> None:
    """Raise InvalidSpecError if a pruned spec exceeds NAS-Bench-101's vertex or edge budget."""
    n = matrix.shape[0]
    if n > MAX_VERTICES:
        raise InvalidSpecError(f"{n} vertices after pruning; NAS-Bench-101 has at most {MAX_VERTICES}")
    edges = int(matrix.sum())
    if edges > MAX_EDGES:
        raise InvalidSpecError(f"{edges} edges after pruning; NAS-Bench-101 has at most {MAX_EDGES}")


def hash_pruned(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> str:
    """The NAS-Bench-101 module hash of an already pruned spec (not validated: callers pruned it)."""
    rows = matrix.tolist() if isinstance(matrix, np.ndarray) else matrix
    masks = []
    for row in rows:
        mask = _ROW_MASK.get(tuple(row))
        masks.append(mask if mask is not None else sum(1 << j for j, x in enumerate(row) if x))
    try:
        labels = [-1, *[_LABEL[op] for op in ops[1:-1]], -2]
    except (KeyError, TypeError):
        bad = [op for op in ops[1:-1] if op not in HASH_OPS]
        raise InvalidSpecError(f"unknown op(s) {bad}; allowed: {list(HASH_OPS)}") from None
    return hash_masks(masks, labels)


def hash_spec(matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> str:
    """Prune, check the NAS-Bench-101 budget and hash; the key of the tabular benchmark."""
    masks, labels, _ = prune_masks(matrix, ops)
    check_budget(masks)
    return _hash_cached(tuple(masks), tuple(labels))


def clear_hash_cache() -> None:
    """Forget hash_spec's memo (benchmarks use it to time cold lookups)."""
    _hash_cached.cache_clear()


def ops_from_labels(labels: Sequence[int]) -> list[str]:
    """Integer op labels (-1 input, 0 conv3x3, 1 conv1x1, 2 maxpool, -2 output, -3 padding) to names."""
    names = {-1: INPUT, -2: OUTPUT, 0: CONV3X3, 1: CONV1X1, 2: MAXPOOL3X3}
    return [names[int(x)] for x in labels if int(x) != -3]

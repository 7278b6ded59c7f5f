"""NAS-Bench-101 pruning and hashing against real data (tests/assets/nb101_sample_1k.json)."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

from bench.search import graph
from bench.search.graph import (
    HASH_OPS,
    InvalidSpecError,
    check_in_nb101,
    hash_pruned,
    hash_spec,
    ops_from_labels,
    prune,
)

SAMPLE = Path(__file__).parents[1] / "assets" / "nb101_sample_1k.json"


@pytest.fixture(scope="module")
def sample() -> list[tuple[np.ndarray, list[str], str]]:
    """1,000 real NAS-Bench-101 architectures: (pruned matrix, ops, module hash)."""
    data = json.loads(SAMPLE.read_text())
    out = []
    for adjacency, labels, key in zip(data["adjacency"], data["operations"], data["key"], strict=True):
        ops = ops_from_labels(labels)
        out.append((np.array(adjacency)[: len(ops), : len(ops)], ops, key))
    return out


def reference_hash(matrix: np.ndarray, ops: list[str]) -> str:
    """The algorithm of specs/nb101_format.md written plainly (slow, obviously right)."""
    n = matrix.shape[0]
    labels = [-1] + [HASH_OPS.index(op) for op in ops[1:-1]] + [-2]
    ins = [int(x) for x in matrix.sum(axis=0)]
    outs = [int(x) for x in matrix.sum(axis=1)]
    h = [hashlib.md5(str((outs[v], ins[v], labels[v])).encode()).hexdigest() for v in range(n)]
    for _ in range(n):
        h = [
            hashlib.md5(
                (
                    "".join(sorted(h[w] for w in range(n) if matrix[w, v]))
                    + "|"
                    + "".join(sorted(h[w] for w in range(n) if matrix[v, w]))
                    + "|"
                    + h[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(h)).encode()).hexdigest()


def test_every_sample_key_reproduces(sample):
    graph.clear_hash_cache()
    assert [hash_spec(m, o) for m, o, _ in sample] == [k for _, _, k in sample]
    assert [hash_pruned(m, o) for m, o, _ in sample] == [k for _, _, k in sample]
    # Second pass hits the memo and must agree; list input must too.
    assert [hash_spec(m.tolist(), o) for m, o, _ in sample] == [k for _, _, k in sample]


def test_sample_matches_plain_reference(sample):
    for m, o, k in sample[:50]:
        assert reference_hash(m, o) == k


def test_real_record_hash():
    adj = "0100110001000000010010000010000001000000010000000"
    ops = "input,conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output"
    m = np.array([int(c) for c in adj]).reshape(7, 7)
    assert hash_spec(m, ops.split(",")) == "00005c142e6f48ac74fdcf73e3439874"


def test_hash_is_isomorphism_invariant(sample):
    rng = random.Random(0)
    for m, o, k in sample[:100]:
        n = len(o)
        middle = list(range(1, n - 1))
        for _ in range(3):
            perm = [0, *rng.sample(middle, len(middle)), n - 1]
            pm = np.zeros_like(m)
            for i, j in itertools.product(range(n), repeat=2):
                if m[i, j]:
                    pm[perm.index(i), perm.index(j)] = 1
            if np.tril(pm).any():  # keep the vertex order topological
                continue
            assert hash_spec(pm, [o[p] for p in perm]) == k


def random_raw(rng: random.Random, n: int) -> tuple[np.ndarray, list[str]]:
    m = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(i + 1, n):
            m[i, j] = rng.random() < 0.35
    return m, ["input", *(rng.choice(HASH_OPS) for _ in range(n - 2)), "output"]


def test_fast_prune_matches_numpy_reference():
    """prune() against a straightforward NumPy reachability implementation on random raw specs."""
    rng = random.Random(1)
    for _ in range(500):
        m, ops = random_raw(rng, rng.randint(2, 9))
        n = len(ops)
        reach = np.linalg.matrix_power(np.eye(n, dtype=int) + m, n) > 0
        keep = [v for v in range(n) if reach[0, v] and reach[v, n - 1]]
        if n - 1 not in keep:
            with pytest.raises(InvalidSpecError, match="not reachable"):
                prune(m, ops)
            continue
        pm, pops = prune(m, ops)
        assert pm.dtype == np.int8
        assert pm.tolist() == m[np.ix_(keep, keep)].tolist()
        assert pops == [ops[v] for v in keep]
        try:
            check_in_nb101(pm, pops)
        except InvalidSpecError:
            with pytest.raises(InvalidSpecError):
                hash_spec(m, ops)
            continue
        assert hash_spec(m, ops) == reference_hash(pm, pops)


def test_eight_vertex_raw_spec_that_prunes_to_six_is_valid():
    ops = ["input", *["conv3x3-bn-relu"] * 6, "output"]
    chain = np.eye(8, k=1, dtype=int)  # 8 live vertices: outside NAS-Bench-101
    with pytest.raises(InvalidSpecError, match="8 vertices"):
        hash_spec(chain, ops)
    m = np.zeros((8, 8), dtype=int)
    for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 7), (4, 5), (5, 6)]:  # 5 and 6 are dead ends
        m[i, j] = 1
    pm, pops = prune(m, ops)
    assert pm.shape == (6, 6) and len(pops) == 6
    assert hash_spec(m, ops) == hash_pruned(pm, pops) == reference_hash(pm, pops)


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        ([[0, 1], [0]], ["input", "output"], "square 0/1"),
        (np.zeros((2, 3)), ["input", "output"], "square"),
        ([[0, 2], [0, 0]], ["input", "output"], "only 0 and 1"),
        ([[1, 1], [0, 0]], ["input", "output"], "upper triangular"),
        ([[0, 1], [0, 0]], ["input", "conv3x3-bn-relu", "output"], "3 ops for a 2x2"),
        ([[0, 1], [0, 0]], ["output", "input"], "start with 'input'"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "unknown op"),
        ([[0, 0], [0, 0]], ["input", "output"], "not reachable"),
    ],
)
def test_invalid_specs(matrix, ops, match):
    with pytest.raises(InvalidSpecError, match=match):
        hash_spec(matrix, ops)


def test_input_types_agree():
    m = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    ops = ["input", "maxpool3x3", "output"]
    expected = hash_spec(m, ops)
    assert hash_spec(m.tolist(), tuple(ops)) == expected
    assert hash_spec(m.astype(bool), ops) == expected
    assert hash_spec(m.astype(float), ops) == expected
    assert hash_spec(m.astype(np.int8), np.array(ops)) == expected


def test_hash_uses_python_ints_under_numpy2():
    # str(np.int64(1)) != "1" under NumPy 2; the hash must not depend on the matrix dtype.
    m = np.array([[0, 1], [0, 0]], dtype=np.int64)
    assert hash_pruned(m, ["input", "output"]) == reference_hash(m, ["input", "output"])

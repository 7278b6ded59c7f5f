"""The three search spaces: shapes, counts, validity, discretization."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.search.graph import MAX_EDGES, MAX_VERTICES, hash_spec, prune
from bench.search.spaces import PRIMITIVES, SearchSpace, UnknownSpaceError

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("k", "n_alphas", "n_topologies", "n_raw"),
    [(1, 24, 180, 14_580), (2, 26, 360, 29_160), (3, 35, 5_400, 1_312_200)],
)
def test_counts(k: int, n_alphas: int, n_topologies: int, n_raw: int) -> None:
    space = SearchSpace(k)
    assert space.num_alphas == n_alphas
    assert sum(len(a.flatten()) for a in space.init_alphas()) == n_alphas
    assert len(list(space.topologies())) == n_topologies == space.num_topologies()
    assert space.num_raw_architectures() == n_raw


@pytest.mark.parametrize("k", [1, 2])
def test_enumerate_yields_every_raw_architecture_once(k: int) -> None:
    space = SearchSpace(k)
    seen = set()
    for matrix, ops in space.enumerate():
        assert matrix.shape == (7, 7) and len(ops) == 7
        seen.add((matrix.tobytes(), tuple(ops)))
    # Distinct topologies can collapse onto one matrix once loose ends are dropped, so count raw
    # architectures through the generator itself.
    assert sum(1 for _ in space.enumerate()) == space.num_raw_architectures()
    assert len(seen) <= space.num_raw_architectures()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_every_topology_is_a_valid_nb101_spec(k: int) -> None:
    """Validity depends on the topology only, so one op choice per topology covers every raw arch."""
    space = SearchSpace(k)
    for topology in space.topologies():
        matrix, ops = space.to_nb101(topology, [PRIMITIVES[1]] * space.num_blocks)
        pm, pops = prune(matrix, ops)
        assert pm.shape[0] <= MAX_VERTICES and pm.sum() <= MAX_EDGES
        assert pops[0] == "input" and pops[-1] == "output"


def test_every_raw_architecture_of_space1_hashes(cache_dir: Path) -> None:
    space = SearchSpace(1)
    brute = {hash_spec(m, o) for m, o in space.enumerate()}
    assert brute == set(space.unique_specs(cache_dir=cache_dir))


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_unique_specs_equal_brute_force(k: int, cache_dir: Path) -> None:
    space = SearchSpace(k)
    brute = {hash_spec(m, o) for m, o in space.enumerate()}
    assert brute == set(space.unique_specs(cache_dir=cache_dir, n_jobs=2))


def test_unique_specs_representatives_hash_back(cache_dir: Path) -> None:
    specs = SearchSpace(2).unique_specs(cache_dir=cache_dir)
    for h, (m, o) in list(specs.items())[:500]:
        assert hash_spec(m, o) == h
    # The second call reads the on-disk cache and returns the same thing.
    again = SearchSpace(2).unique_specs(cache_dir=cache_dir)
    assert again.keys() == specs.keys()
    h = next(iter(specs))
    assert np.array_equal(again[h][0], specs[h][0]) and again[h][1] == specs[h][1]


def test_corrupt_unique_cache_is_rebuilt(cache_dir: Path) -> None:
    space = SearchSpace(1)
    n = len(space.unique_specs(cache_dir=cache_dir))
    path = next(cache_dir.rglob("*.npz"))
    path.write_bytes(b"not a cache")
    assert len(space.unique_specs(cache_dir=cache_dir)) == n


def test_readme_counts_are_the_computed_ones(cache_dir: Path) -> None:
    """The README's count table is pasted from `python -m bench.spaces`; keep it honest."""
    text = README.read_text()
    text = text[text.index("| space | choice blocks |") :]  # the count table, not other tables
    for k in (1, 2):
        row = re.search(rf"^\| {k} \|(.*)$", text, flags=re.M)
        assert row, f"README has no count row for space {k}"
        unique = int(row.group(1).split("|")[-2].strip().replace(",", ""))
        assert unique == len(SearchSpace(k).unique_specs(cache_dir=cache_dir))


@pytest.mark.parametrize("bad", [0, 4, -1, "1"])
def test_unknown_space(bad: object) -> None:
    with pytest.raises(UnknownSpaceError, match="choose 1, 2 or 3"):
        SearchSpace(bad)  # type: ignore[arg-type]


def _alphas(space: SearchSpace, **overrides: list[float]) -> list[torch.Tensor]:
    out = []
    for name, shape in space.alpha_shapes().items():
        t = torch.zeros(shape)
        if name in overrides:
            t = torch.tensor(overrides[name], dtype=torch.float32).reshape(shape)
        out.append(t)
    return out


def test_discretize_argmax_ops_and_topk_parents() -> None:
    space = SearchSpace(1)
    alphas = _alphas(
        space,
        ops=[[0, 5, 1], [9, 0, 0], [0, 0, 3], [0, 2, 1]],
        output=[[0, 0, 0, 4, 5]],  # output parents: nodes 3 and 4
        inputs_3=[[1, 0, 2]],  # node 3 parents: input and node 2
        inputs_4=[[0, 3, 0, 4]],  # node 4 parents: nodes 1 and 3
    )
    matrix, ops = space.discretize(alphas)
    assert ops == ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu",
                   "conv1x1-bn-relu", "output"]  # fmt: skip
    expected = np.zeros((7, 7), dtype=int)
    for a, b in [(0, 1), (0, 2), (1, 2), (0, 3), (2, 3), (1, 4), (3, 4), (3, 6), (4, 6)]:
        expected[a, b] = 1
    assert np.array_equal(matrix, expected)


def test_discretize_ties_are_deterministic() -> None:
    for k in (1, 2, 3):
        space = SearchSpace(k)
        zeros = _alphas(space)
        m1, o1 = space.discretize(zeros)
        m2, o2 = space.discretize([z.clone() for z in zeros])
        assert np.array_equal(m1, m2) and o1 == o2
        # Ties go to the first op and the lowest-indexed parents.
        assert set(o1[1 : space.num_blocks + 1]) == {PRIMITIVES[0]}
        out_col = 6
        parents = [i for i in range(7) if m1[i, out_col]]
        assert parents == list(range(space.num_parents[-1]))


def test_discretize_drops_loose_ends() -> None:
    space = SearchSpace(3)
    # Output reads node 5 only (plus the input); blocks not on a path to it must not enter the matrix.
    alphas = _alphas(space, output=[[1, 0, 0, 0, 0, 1]], inputs_5=[[0, 1, 0, 0, 1]], inputs_4=[[1, 1, 0, 0]])
    matrix, _ = space.discretize(alphas)
    assert matrix[:, 6].nonzero()[0].tolist() == [0, 5]
    assert matrix[:, 5].nonzero()[0].tolist() == [1, 4]
    assert matrix[2].sum() == 0 and matrix[3].sum() == 0  # nodes 2, 3 feed nothing that survives
    hash_spec(matrix, space.discretize(alphas)[1])  # and it is a valid NB-101 spec


def test_discretize_rejects_wrong_shapes() -> None:
    space = SearchSpace(1)
    with pytest.raises(ValueError, match="alpha tensors"):
        space.discretize(space.init_alphas()[:-1])
    bad = space.init_alphas()
    bad[0] = torch.zeros(5, 3)
    with pytest.raises(ValueError, match="shape"):
        space.discretize(bad)


def test_spaces_1_2_use_the_dummy_vertex() -> None:
    for k in (1, 2):
        space = SearchSpace(k)
        matrix, ops = space.discretize(space.init_alphas(torch.Generator().manual_seed(0)))
        assert ops[5] == "conv1x1-bn-relu" and matrix[5].sum() == 0 and matrix[:, 5].sum() == 0


def test_init_alphas_seeded_and_small() -> None:
    space = SearchSpace(3)
    a = space.init_alphas(torch.Generator().manual_seed(1))
    b = space.init_alphas(torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) and x.requires_grad for x, y in zip(a, b, strict=True))
    assert max(float(x.detach().abs().max()) for x in a) < 0.01


def test_architecture_counts_sum_to_the_raw_architectures(tmp_path) -> None:
    space = SearchSpace(1)
    counts = space.architecture_counts(cache_dir=tmp_path)
    assert sum(counts.values()) == space.num_raw_architectures() == 14580 and len(counts) == 2685
    assert space.architecture_counts(cache_dir=tmp_path) == counts  # read back from the disk cache


@pytest.mark.slow
def test_architecture_counts_weigh_every_raw_architecture(tmp_path) -> None:
    """Space 1's 14,580 raw architectures, hashed one by one, give the counts (computed per pruned graph)."""
    from collections import Counter

    space = SearchSpace(1)
    counts = space.architecture_counts(cache_dir=tmp_path)
    assert set(counts) == set(space.unique_specs(cache_dir=tmp_path))
    assert counts == Counter(hash_spec(m, o) for m, o in space.enumerate())

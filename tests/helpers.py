"""Shared test helpers: TEST FIXTURES (a labelled fixture ground truth, toy data, synthetic CIFAR-10
files) and small builders. Fixtures that wrap them live in conftest.py."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from bench.data import cifar10
from bench.data.splits import SearchData
from bench.search.graph import hash_spec
from bench.search.spaces import SearchSpace
from bench.search.supernet import Supernet
from bench.truth.base import ArchResult, GroundTruth
from optimizers import OneShotOptimizer, SearchContext, build_hyperparameters, get_optimizer


class FixtureTable(GroundTruth):
    """TEST FIXTURE, not a benchmark: accuracies are a deterministic function of the NB-101 hash."""

    name = "fixture"

    def __init__(self, best_test_error: float | None = 0.0) -> None:
        self._best = best_test_error
        self.queries = 0

    budgets = (108, 4, 12, 36)  # the digits benchmark's, so runs may ask for truth_budgets

    def query(self, matrix: np.ndarray, ops: Sequence[str], budget: int | None = None) -> ArchResult:
        self.check_budget(budget)
        self.queries += 1
        h = hash_spec(matrix, ops)
        base = int(h[:6], 16) / 16**6 * (1.0 if budget in (None, 108) else budget / 108)
        seconds = 1.0 if budget is None else budget / 108
        return ArchResult(
            h,
            (base, base + 0.001, base + 0.002),
            (base, base - 0.001, base + 0.001),
            (seconds, seconds, seconds),
            7,
        )

    def best_test_error(self, space: int) -> float | None:
        return self._best


def fake_space(specs: Sequence[tuple], best_test_error: float = 0.0) -> type:
    """TEST FIXTURE: a stand-in for SearchSpace whose spaces 1-3 each hold exactly `specs` (hand-written
    (matrix, ops) pairs), for tabulation tests that must not enumerate a real space."""

    class FakeSpace:
        def __init__(self, number: int) -> None:
            self.best_test_error = best_test_error
            if number not in (1, 2, 3):
                from bench.search.spaces import UnknownSpaceError

                raise UnknownSpaceError(f"unknown search space {number!r}; choose 1, 2 or 3")

        def unique_specs(self, cache_dir: Path | None = None, n_jobs: int = 1) -> dict:
            return {hash_spec(*s): (np.asarray(s[0]), list(s[1])) for s in specs}

        def architecture_counts(self, cache_dir: Path | None = None) -> dict[str, int]:
            return {h: i + 1 for i, h in enumerate(self.unique_specs())}  # FIXTURE weights 1, 2, 3, ...

    return FakeSpace


def make_toy_data() -> SearchData:
    """TEST FIXTURE: random 8x8 single-channel images, enough to exercise every code path in seconds."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)
    return SearchData("toy-fixture", x[:64], y[:64], x[64:], y[64:], num_classes=10, in_channels=1)


LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _dump(obj: object, path: Path) -> None:
    # Protocol 2, like the official Python 2 files.
    path.write_bytes(pickle.dumps(obj, protocol=2))


def write_fake_cifar(
    directory: Path, per_batch: int = 3, seed: int = 0
) -> dict[str, tuple[np.ndarray, list]]:
    """Write synthetic batches (random pixels, NOT real CIFAR-10) and return what each file holds."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in (*cifar10.TRAIN_BATCHES, *cifar10.TEST_BATCHES):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=per_batch)]
        _dump(
            {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": []},
            directory / name,
        )
        written[name] = (data, labels)
    _dump(
        {
            b"label_names": [n.encode() for n in LABEL_NAMES],
            b"num_cases_per_batch": per_batch,
            b"num_vis": 3072,
        },
        directory / cifar10.META,
    )
    return written


# Small settings for the slow parts of some plug-ins; the defaults are checked separately.
FAST = {"rsws": {"eval_archs": 4}, "sdarts-adv": {"steps": 2}, "enas": {"controller_steps": 4}}


def make_optimizer(name: str, space: int = 1, epochs: int = 10, seed: int = 0, **hp) -> OneShotOptimizer:
    """A plug-in on a tiny supernet built as the trainer builds it (with its supernet_kwargs)."""
    torch.manual_seed(seed)
    sp = SearchSpace(space)
    cls = get_optimizer(name)
    params = build_hyperparameters(cls, {**FAST.get(name, {}), **hp})
    model = Supernet(
        sp, init_channels=4, num_classes=10, in_channels=1, cells_per_stack=1, **cls.supernet_kwargs(params)
    )
    alphas = sp.init_alphas(torch.Generator().manual_seed(seed))
    weights = list(model.parameters())
    w_optim = torch.optim.SGD(weights, lr=0.05, momentum=0.9, weight_decay=3e-4)
    a_optim = torch.optim.Adam(alphas, lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ctx = SearchContext(
        model, sp, alphas, w_optim, a_optim, 5.0, epochs, weights,
        validation_stream=toy_validation_stream, validation_pass=TOY_VALIDATION_PASS,
    )  # fmt: skip
    return cls(ctx, params)


TOY_VALIDATION_PASS = 4  # batches in one "pass" of the toy validation stream


def toy_validation_stream(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """TEST FIXTURE: an endless stream of distinct random batches for `epoch` (a plug-in's own
    validation iterator, as the trainer builds it from the data)."""
    return (batch(10_000 * (epoch + 1) + i) for i in itertools.count())


def batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def snapshot(tensors) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


# ---- the interface -------------------------------------------------------------------------------


def record_forwards(model: torch.nn.Module) -> list[dict]:
    """Wrap `model.forward` to record every supernet call: its mixing weights (copied), `op_choice`,
    train/eval mode and autograd state. Returns the list the calls are appended to."""
    calls: list[dict] = []
    forward = model.forward

    def spy(x, weights, op_choice=None):  # noqa: ANN001, ANN202
        calls.append({
            "weights": [w.detach().clone() for w in weights], "op_choice": op_choice,
            "training": model.training, "grad": torch.is_grad_enabled(),
            "inference": torch.is_inference_mode_enabled(),
        })  # fmt: skip
        return forward(x, weights, op_choice)

    model.forward = spy
    return calls


class TouchOnLoad:
    """TEST FIXTURE: an object whose unpickling creates the file `marker` (code a loader must never
    run). A loader is safe when reading a file that holds one raises and `marker` does not exist."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def write_nb101_full_fixture(
    path: Path, specs: Sequence[tuple[np.ndarray, Sequence[str]]], seed: int = 0
) -> dict[tuple[str, int], np.ndarray]:
    """TEST FIXTURE, not NAS-Bench-101 numbers: a file in nasbench_full.tfrecord's format holding every
    spec at 4, 12, 36 and 108 epochs x 3 repeats, records shuffled so a spec's runs are scattered.

    Returns (hash, budget) -> (3 repeats, 6) array of final valid, test, time, halfway valid, test, time.
    """
    from bench.truth.fixtures import metrics_from_final, records_for_spec, write_tfrecord

    rng = np.random.default_rng(seed)
    truth: dict[tuple[str, int], np.ndarray] = {}
    records = []
    for matrix, ops in specs:
        h = hash_spec(matrix, ops)
        for budget in (4, 12, 36, 108):
            valid = rng.uniform(0.5, 0.95, 3)
            test = valid - rng.uniform(0.0, 0.02, 3)
            seconds = budget * rng.uniform(10.0, 30.0, 3)
            half = (valid - 0.1, test - 0.1)
            metrics = [
                metrics_from_final(v, t, s, 1000, epochs=budget, halfway=(hv, ht))
                for v, t, s, hv, ht in zip(valid, test, seconds, *half, strict=True)
            ]
            truth[h, budget] = np.stack([valid, test, seconds, *half, seconds / 2], axis=1)
            records.extend(records_for_spec(matrix, ops, metrics, epochs=budget))
    # Repeats keep their relative file order (the reader's repeat order is file order).
    write_tfrecord(path, _scatter_keeping_repeat_order(records, rng))
    return truth


def _scatter_keeping_repeat_order(records: list, rng: np.random.Generator) -> list:
    """Shuffle runs (groups of 3 repeats) and interleave them, each run's repeats staying in order."""
    runs = [records[i : i + 3] for i in range(0, len(records), 3)]
    rng.shuffle(runs)
    # Round-robin over blocks of 4 runs: repeats of one run are never adjacent.
    out = []
    for k in range(0, len(runs), 4):
        block = runs[k : k + 4]
        for r in range(3):
            out.extend(run[r] for run in block)
    return out

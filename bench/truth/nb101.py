"""TensorFlow-free NAS-Bench-101: the table that answers queries (implements bench.truth.base.GroundTruth).

`NB101Table.load` takes the official tfrecord (converted once into a columnar cache beside it, see
`bench.truth.nb101_cache`; the file format itself is read by `bench.truth.nb101_wire`) or a cache.
The table has one row per architecture, sorted by the 16-byte module hash so a lookup is a binary
search. A row's repeats are columns 0..n_repeats-1 in file order: deterministic, never sampled.

A table may hold several budgets (`bench.truth.nb101_full`): its metric columns then have a budget
axis, and a query names the budget (None: the first, 108 epochs). Tables built from 108-epoch data get
the same axis, of length one, as a free view.

A query by spec is first looked up in the cache's stored-spec index (an exact integer per stored spec
and vertex order, no hashing); only specs the index lacks are hashed, as before: those not in the table
(to raise SpecNotInTableError) and rows whose stored spec failed the converter's check.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.search.graph import (
    MAX_VERTICES,
    InvalidSpecError,
    check_budget,
    hash_spec,
    ops_from_labels,
    prune_masks,
)
from bench.truth.base import ArchResult, GroundTruth
from bench.truth.character import RandomBaseline, random_baseline
from bench.truth.nb101_cache import (
    CACHE_ERRORS,
    CACHE_SUFFIX,
    HALFWAY_ARRAYS,
    OutdatedCacheError,
    cache_path_for,
    check_spec_index,
    convert_tfrecord,
    is_fresh,
    read_cache,
    spec_key,
    write_cache,
)
from bench.truth.nb101_wire import DOWNLOAD_FIX, FINAL_EPOCHS, NO_PARAMS, NB101Error, NB101FormatError

__all__ = [
    "InvalidHashError",
    "InvalidSpecError",
    "NB101Batch",
    "NB101Error",
    "NB101FileNotFoundError",
    "NB101FormatError",
    "NB101Table",
    "SpecNotInTableError",
    "cache_path_for",
    "hash_key",
    "hash_spec",
]

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------- errors
class NB101FileNotFoundError(NB101Error, FileNotFoundError):
    """The NAS-Bench-101 file is not where the caller said."""


class InvalidHashError(NB101Error, ValueError):
    """A module hash that is not 32 hex digits (or 16 bytes)."""


class SpecNotInTableError(NB101Error, KeyError):
    """A valid NAS-Bench-101 spec (or hash) that this table has no row for."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def hash_key(h: str | bytes) -> bytes:
    if isinstance(h, bytes) and len(h) == 16:
        return h
    try:
        key = bytes.fromhex(h) if isinstance(h, str) else b""
    except ValueError:
        key = b""
    if len(key) != 16:
        raise InvalidHashError(f"{h!r} is not a NAS-Bench-101 module hash; pass the 32-hex-digit md5 string")
    return key


@dataclass(frozen=True)
class NB101Batch:
    """Results of many hashes at once: row-aligned arrays, repeats as columns (NaN beyond n_repeats)."""

    rows: np.ndarray  # (k,) table rows
    valid_acc: np.ndarray  # (k, R)
    test_acc: np.ndarray
    train_time: np.ndarray
    n_repeats: np.ndarray  # (k,)
    params: np.ndarray  # (k,), -1 where unknown

    def valid_acc_mean(self) -> np.ndarray:
        return np.nanmean(self.valid_acc, axis=1)

    def test_acc_mean(self) -> np.ndarray:
        return np.nanmean(self.test_acc, axis=1)


class NB101Table(GroundTruth):
    """The NAS-Bench-101 table at 108 epochs; implements bench.truth.base.GroundTruth.

    A variant holding more of the official data (bench.truth.nb101_full) overrides the class
    attributes below, nothing else.
    """

    name = "nb101"
    budgets: tuple[int, ...] = (FINAL_EPOCHS,)  # kept from the file, in this order (first: standard)
    keeps_halfway = False  # whether the halfway evaluation of each run is kept too
    official_file = "nasbench_only108.tfrecord"
    download_command = "python -m bench.data download nb101"
    cache_suffix = CACHE_SUFFIX

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict | None = None, source: Path | None = None):
        self._hashes = arrays["hashes"]
        # A zero-copy byte view: slicing one hash out of it is 5x faster than formatting hi/lo.
        self._hash_bytes = memoryview(np.ascontiguousarray(self._hashes)).cast("B")
        pairs = self._hashes.view(">u8").reshape(-1, 2)
        self._hi = pairs[:, 0].astype(np.uint64)
        self._lo = pairs[:, 1].astype(np.uint64)
        order_ok = (self._hi[1:] > self._hi[:-1]) | (
            (self._hi[1:] == self._hi[:-1]) & (self._lo[1:] > self._lo[:-1])
        )
        if not order_ok.all():
            raise ValueError("hashes are not strictly sorted")
        # Two rows sharing the first 8 bytes (not seen in NB-101) make the fast search ambiguous.
        self._hi_unique = bool((self._hi[1:] != self._hi[:-1]).all())
        self._index: dict[int, int] | None = None  # first 8 hash bytes -> row, for single lookups
        held = tuple((meta or {}).get("budgets", self.budgets))
        if held != self.budgets:
            raise ValueError(f"it holds the budgets {held}, the {self.name!r} table needs {self.budgets}")
        # Metric columns as (rows, budgets, repeats); one-budget arrays get the axis as a view.
        axis = (lambda a: a[:, None]) if len(self.budgets) == 1 else (lambda a: a)
        self._valid = axis(arrays["valid_acc"])
        self._test = axis(arrays["test_acc"])
        self._time = axis(arrays["train_time"])
        self._n_repeats = axis(arrays["n_repeats"])
        self._halfway = (
            tuple(axis(arrays[k]) for k in HALFWAY_ARRAYS)
            if all(k in arrays for k in HALFWAY_ARRAYS)
            else None
        )
        self._budget_column = {b: k for k, b in enumerate(self.budgets)}
        self._params = arrays["params"]
        self._adjacency = arrays["adjacency"]
        self._num_vertices = arrays["num_vertices"]
        self._ops = arrays["ops"]
        # Without an index (arrays made by hand) every query by spec is hashed.
        self._spec_keys = arrays.get("spec_keys", np.zeros(0, dtype=np.int64))
        self._spec_rows = arrays.get("spec_rows", np.zeros(0, dtype=np.int32))
        check_spec_index(self._spec_keys, self._spec_rows, len(self._hashes))
        self.meta = dict(meta or {})
        self.source = source

    # ------------------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls, path: str | os.PathLike, *, cache_path: str | os.PathLike | None = None, rebuild: bool = False
    ) -> NB101Table:
        """The table from an official tfrecord (converted once, then cached beside it) or from a cache.

        A tfrecord is only parsed when its cache is missing, stale (the file's size or mtime changed),
        unreadable, or `rebuild` is set. A cache that cannot be written is logged and skipped.
        """
        path = Path(path)
        if path.name.endswith((".npz", cls.cache_suffix)):
            return cls._from_cache(path)
        cache = Path(cache_path) if cache_path is not None else cache_path_for(path, cls.cache_suffix)
        if not path.exists():
            if cache.exists() and not rebuild:
                log.info("%s is missing; using its converted cache %s", path, cache)
                return cls._from_cache(cache)
            raise NB101FileNotFoundError(
                f"{path} does not exist; download NAS-Bench-101 with `{cls.download_command}` "
                f"or pass the path of {cls.official_file}"
            )
        if cache.exists() and not rebuild:
            try:
                arrays, meta = read_cache(cache)
                if is_fresh(meta, path):
                    return cls(arrays, meta, cache)
                log.info("cache %s is stale (%s changed); converting again", cache, path.name)
            except OutdatedCacheError as e:
                log.warning("cache %s is outdated (%s); converting %s again, once", cache, e, path.name)
            except CACHE_ERRORS as e:
                log.warning("ignoring unreadable cache %s (%s); converting %s again", cache, e, path.name)
        log.info("converting %s to the fast cache %s (once)", path, cache)
        arrays, meta = convert_tfrecord(path, cls.budgets, halfway=cls.keeps_halfway)
        try:
            write_cache(cache, arrays, meta)
        except OSError as e:
            log.warning("could not write the cache %s (%s); the next load will convert again", cache, e)
        return cls(arrays, meta, path)

    @classmethod
    def _from_cache(cls, path: Path) -> NB101Table:
        if not path.exists():
            raise NB101FileNotFoundError(
                f"{path} does not exist; download NAS-Bench-101 with `{cls.download_command}`"
            )
        try:
            arrays, meta = read_cache(path)
            return cls(arrays, meta, path)
        except CACHE_ERRORS as e:
            raise NB101FormatError(
                f"{path} is not a usable NB-101 cache ({e}); delete it and load the tfrecord again, "
                f"or {DOWNLOAD_FIX}"
            ) from None

    # ------------------------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, h: object) -> bool:
        try:
            return self._row(hash_key(h)) >= 0  # type: ignore[arg-type]
        except InvalidHashError:
            return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} architectures, source={self.source})"

    def _row(self, key: bytes) -> int:
        hi = int.from_bytes(key[:8], "big")
        lo = int.from_bytes(key[8:], "big")
        if self._hi_unique:
            index = self._index
            if index is None:  # built on the first single lookup: a dict probe beats a NumPy call
                index = self._index = dict(zip(self._hi.tolist(), range(len(self._hi)), strict=True))
            i = index.get(hi, -1)
            return i if i >= 0 and self._lo.item(i) == lo else -1
        i = int(self._hi.searchsorted(np.uint64(hi)))
        while i < len(self._hi) and self._hi.item(i) == hi:
            if self._lo.item(i) == lo:
                return i
            i += 1
        return -1

    def _stored_row(self, masks: list[int], labels: list[int]) -> int:
        """Row of the stored spec identical to this pruned one (same vertex order), else -1."""
        keys = self._spec_keys
        key = spec_key(masks, labels)
        j = keys.searchsorted(key)
        return self._spec_rows.item(j) if j < len(keys) and keys.item(j) == key else -1

    @property
    def spec_index_size(self) -> int:
        """Keys in the stored-spec index (0 for a table built from arrays without one)."""
        return len(self._spec_keys)

    def indexed_row(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> int:
        """The row the stored-spec index gives a raw spec, or -1: whether query() takes the no-hash
        path (benchmarks, tests)."""
        masks, labels, _ = prune_masks(matrix, ops)
        check_budget(masks)
        return self._stored_row(masks, labels)

    def _hex(self, i: int) -> str:
        return self._hash_bytes[16 * i : 16 * i + 16].hex()

    def _column(self, budget: int | None) -> int:
        """The budget axis position of `budget` (None: the standard one); UnknownBudgetError if absent."""
        if budget is None:
            return 0
        self.check_budget(budget)
        return self._budget_column[budget]

    def _result(self, i: int, arch_hash: str, column: int = 0, halfway: bool = False) -> ArchResult:
        r = self._n_repeats.item(i, column)
        if r == 0:  # only in a partial file: the official ones train every architecture at every budget
            raise SpecNotInTableError(
                f"NB-101 hash {arch_hash} has no run at {self.budgets[column]} epochs in {self.source}; "
                f"load the official {self.official_file}, e.g. after `{self.download_command}`"
            )
        params = self._params.item(i)
        valid, test, time = (self._valid, self._test, self._time) if not halfway else self._halfway_arrays()
        return ArchResult(
            arch_hash=arch_hash,
            valid_acc=tuple(valid[i, column, :r].tolist()),
            test_acc=tuple(test[i, column, :r].tolist()),
            train_time=tuple(time[i, column, :r].tolist()),
            params=None if params == NO_PARAMS else params,
        )

    def _halfway_arrays(self) -> tuple[np.ndarray, ...]:
        if self._halfway is None:
            raise NB101Error(
                f"the {self.name!r} table keeps the final evaluation only; for halfway metrics load "
                "nasbench_full.tfrecord as the 'nb101-full' table "
                "(`python -m bench.data download nb101-full`)"
            )
        return self._halfway

    def _missing(self, arch_hash: str) -> SpecNotInTableError:
        return SpecNotInTableError(
            f"NB-101 hash {arch_hash} is a valid spec but not in the table {self.source} "
            f"({len(self)} architectures; the official {self.official_file} has all 423,624): "
            f"load the official file, e.g. after `{self.download_command}`"
        )

    def query_hash(
        self, arch_hash: str | bytes, budget: int | None = None, *, halfway: bool = False
    ) -> ArchResult:
        """All repeats of the architecture with this module hash at `budget` epochs (None: 108).

        `halfway`: the metrics of each run's halfway evaluation instead of its final one (tables that
        keep them only, i.e. nb101-full).
        """
        column = self._column(budget)
        key = hash_key(arch_hash)
        i = self._row(key)
        h = key.hex()
        if i < 0:
            raise self._missing(h)
        return self._result(i, h, column, halfway)

    def query(
        self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str], budget: int | None = None
    ) -> ArchResult:
        """All repeats of a raw cell spec at `budget` epochs (None: 108), final evaluation.

        The spec is pruned here and hashed only when the stored-spec index lacks it. Raises
        UnknownBudgetError for a budget the table lacks, InvalidSpecError outside NAS-Bench-101 and
        SpecNotInTableError for a valid spec this table lacks.
        """
        column = self._column(budget)
        return self._result(*self._spec_row(matrix, ops), column)

    def query_halfway(
        self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str], budget: int | None = None
    ) -> ArchResult:
        """Like query, but each run's halfway evaluation (epoch budget/2): anytime accuracy, with the
        training time spent up to then. NB101Error on a table that keeps final metrics only."""
        column = self._column(budget)
        self._halfway_arrays()
        return self._result(*self._spec_row(matrix, ops), column, halfway=True)

    def _spec_row(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[int, str]:
        """(row, hash) of a raw spec; SpecNotInTableError when the table lacks it."""
        masks, labels, _ = prune_masks(matrix, ops)
        check_budget(masks)
        i = self._stored_row(masks, labels)
        if i >= 0:
            return i, self._hex(i)
        # Not indexed: absent from the table, or its row failed the converter's check (see _spec_index).
        h = hash_spec(matrix, ops)
        i = self._row(bytes.fromhex(h))
        if i < 0:
            raise self._missing(h)
        return i, h

    def rows(self, hashes: Sequence[str] | np.ndarray, *, missing: str = "raise") -> np.ndarray:
        """Table rows of many hashes at once (hex strings, or an 'S16' array); -1 for absent ones
        with missing='ignore'."""
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', got {missing!r}")
        keys = self._keys(hashes)
        if self._hi_unique:
            q = keys.view(">u8").reshape(-1, 2)
            qhi, qlo = q[:, 0].astype(np.uint64), q[:, 1].astype(np.uint64)
            idx = np.minimum(np.searchsorted(self._hi, qhi), len(self) - 1)
            found = (self._hi[idx] == qhi) & (self._lo[idx] == qlo)
        else:
            idx = np.minimum(np.searchsorted(self._hashes, keys), len(self) - 1)
            found = self._hashes.view(">u8").reshape(-1, 2)[idx] == keys.view(">u8").reshape(-1, 2)
            found = found.all(axis=1)
        if not found.all():
            if missing == "raise":
                i = int(np.flatnonzero(~found)[0])
                raise self._missing(keys[i : i + 1].tobytes().hex())
            idx = np.where(found, idx, -1)
        return idx.astype(np.int64)

    @staticmethod
    def _keys(hashes: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(hashes, np.ndarray) and hashes.dtype == np.dtype("S16"):
            return np.ascontiguousarray(hashes)
        hashes = list(hashes)
        if hashes and set(map(len, hashes)) != {32}:
            bad = next(h for h in hashes if len(h) != 32)
            raise InvalidHashError(
                f"{bad!r} is not a NAS-Bench-101 module hash; pass 32-hex-digit md5 strings"
            )
        try:
            raw = bytes.fromhex("".join(hashes))
        except (ValueError, TypeError):
            raise InvalidHashError("hashes must be 32-hex-digit md5 strings") from None
        return np.frombuffer(raw, dtype="S16")

    def query_hashes(self, hashes: Sequence[str] | np.ndarray, budget: int | None = None) -> NB101Batch:
        """All repeats of many hashes at once at `budget` epochs (SpecNotInTableError if any is absent)."""
        column = self._column(budget)
        rows = self.rows(hashes)
        return NB101Batch(
            rows=rows,
            valid_acc=self._valid[rows, column],
            test_acc=self._test[rows, column],
            train_time=self._time[rows, column],
            n_repeats=self._n_repeats[rows, column],
            params=self._params[rows],
        )

    def spec(self, arch_hash: str | bytes) -> tuple[np.ndarray, list[str]]:
        """The pruned spec stored for a hash (as in the file), e.g. to check a query by spec."""
        key = hash_key(arch_hash)
        i = self._row(key)
        if i < 0:
            raise self._missing(key.hex())
        v = self._num_vertices.item(i)
        bits = self._adjacency.item(i)
        matrix = np.array(
            [[bits >> (a * MAX_VERTICES + b) & 1 for b in range(v)] for a in range(v)], dtype=np.int8
        )
        return matrix.reshape(v, v), ops_from_labels(self._ops[i, :v].tolist())

    def hashes(self) -> list[str]:
        """Every module hash in the table, sorted."""
        text = self._hashes.tobytes().hex()
        return [text[i : i + 32] for i in range(0, len(text), 32)]

    def random_baseline(self, space: int) -> RandomBaseline | None:
        """Test regret (against `best_test_error`) of a uniformly random architecture of `space`; None
        when the table lacks some of its models (a partial file)."""
        from bench.search.spaces import SearchSpace  # lazy: spaces imports torch

        counts = SearchSpace(space).architecture_counts()
        hashes = sorted(counts)
        rows = self.rows(hashes, missing="ignore")
        if (rows < 0).any():
            return None
        errors = 1.0 - np.nanmean(self._test[rows, 0], axis=1)
        return random_baseline(errors.tolist(), self.best_test_error(space), [counts[h] for h in hashes])

    def best_test_error(self, space: int) -> float | None:
        """Lowest single-run test error in NAS-Bench-1Shot1 search space `space` (reference constant)."""
        from bench.search.spaces import SearchSpace  # lazy: spaces imports torch

        return SearchSpace(space).best_test_error

    def best_valid_error(self, space: int) -> float | None:
        """The space's best validation error (reference constant of NAS-Bench-1Shot1)."""
        from bench.search.spaces import SearchSpace  # lazy: spaces imports torch

        return SearchSpace(space).best_valid_error

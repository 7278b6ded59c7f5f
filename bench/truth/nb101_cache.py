"""The NAS-Bench-101 table's columnar cache: converting an official file once, and reading it fast.

Parsing the 1.27 million records of the official file takes a while, so the first load converts it into
a columnar cache beside it (`<stem>.nb101cache.npz`, uncompressed, ~60 MB) and every later load reads
only that. One row per architecture, sorted by the 16-byte module hash; a row's repeats are columns
0..n_repeats-1 in file order (deterministic, never sampled). Only the budgets asked for are kept:
108 epochs for `nasbench_only108.tfrecord`, whose metric arrays are (rows, repeats).

`nasbench_full.tfrecord` (4/12/36/108 epochs, 5 million records) adds a budget axis: metric arrays
are (rows, budgets, repeats), in the order of the `budgets` the caller asked for, plus the halfway
evaluation's metrics. Its cache (~0.4 GB) is a directory of `.npy` files that loading memory-maps, so
a load reads only the pages a query touches.

Hashing a spec (~40 MD5 calls) costs far more than the rest of a query, so the cache also holds a
sorted index of the stored specs themselves, each as one exact integer (`spec_key`), in every vertex
order that keeps it upper-triangular (~3 per spec, ~1.2 million keys): a query whose pruned spec is
isomorphic to a stored one is literally one of those and is answered by a binary search, without
hashing. That is exact because identical labelled graphs have identical hashes and the converter makes
sure the rows' hashes are their specs' (see _spec_index).
"""

from __future__ import annotations

import binascii
import itertools
import json
import logging
import os
import shutil
import struct
import zipfile
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import lshift
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench.search.graph import HASH_OPS, INPUT, MAX_VERTICES, OUTPUT, hash_masks
from bench.truth.nb101_wire import (
    DOWNLOAD_FIX,
    FINAL_EPOCHS,
    NB101FormatError,
    corrupt_record,
    iter_frames,
    run_values,
)

__all__ = [
    "CACHE_ARRAYS",
    "CACHE_ERRORS",
    "CACHE_SUFFIX",
    "CACHE_VERSION",
    "HALFWAY_ARRAYS",
    "SPEC_ARRAYS",
    "OutdatedCacheError",
    "cache_path_for",
    "check_spec_index",
    "convert_tfrecord",
    "is_fresh",
    "read_cache",
    "spec_key",
    "write_cache",
]

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".nb101cache.npz"
CACHE_VERSION = 2  # 2: adds the stored-spec index (spec_keys, spec_rows)
_PAD_LABEL = -3  # ops padding, as in the sample JSON's operations column
_LABEL_OF = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(HASH_OPS)}}
# What reading a damaged or foreign .npz can raise (zip CRC failures are BadZipFile).
CACHE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
CACHE_ARRAYS = (
    "hashes",
    "valid_acc",
    "test_acc",
    "train_time",
    "n_repeats",
    "params",
    "adjacency",
    "num_vertices",
    "ops",
)
# The halfway evaluation (evaluation_data[1]) of each run, kept when asked for; shaped like valid_acc.
HALFWAY_ARRAYS = ("half_valid_acc", "half_test_acc", "half_train_time")
_METRIC_ARRAYS = ("valid_acc", "test_acc", "train_time")
# The stored-spec index: sorted int64 keys of the stored specs in all their vertex orders, and the row
# of each (see _spec_index).
SPEC_ARRAYS = ("spec_keys", "spec_rows")
# spec key = adjacency bits (bit 7*i + j = edge i->j) << 13 | interior op labels, 2 bits each from bit 3
# | vertex count (3 bits): exact for <= 7 vertices and < 2**62.
_KEY_ADJ_SHIFT = 13
_KEY_ROW_SHIFTS = tuple(MAX_VERTICES * i for i in range(MAX_VERTICES))
_KEY_OP_SHIFTS = tuple(3 + 2 * k for k in range(MAX_VERTICES - 2))
# Stored specs hashed at conversion to check the file's hashes (~0.1 s), unless one of them is wrong.
_SPEC_CHECK_SAMPLE = 1000


_ADJ_SIDE = {v * v: v for v in range(2, MAX_VERTICES + 1)}


@dataclass
class _Columns:
    """Per-record values of the kept records, in file order (compact, not Python objects)."""

    hashes: bytearray = field(default_factory=bytearray)
    adjacency: array = field(default_factory=lambda: array("Q"))  # raw V*V bits, first char = MSB
    num_vertices: bytearray = field(default_factory=bytearray)
    ops_code: array = field(default_factory=lambda: array("H"))
    valid: array = field(default_factory=lambda: array("d"))
    test: array = field(default_factory=lambda: array("d"))
    time: array = field(default_factory=lambda: array("d"))
    params: array = field(default_factory=lambda: array("q"))
    record: array = field(default_factory=lambda: array("q"))  # index in the file, for error messages
    budget: bytearray = field(default_factory=bytearray)  # position of the record's epochs in `budgets`
    half_valid: array = field(default_factory=lambda: array("d"))  # only filled when halfway is kept
    half_test: array = field(default_factory=lambda: array("d"))
    half_time: array = field(default_factory=lambda: array("d"))
    ops_labels: list[tuple[int, ...]] = field(default_factory=list)
    ops_codes: dict[str, int] = field(default_factory=dict)


def _ops_code(cols: _Columns, operations: str) -> int:
    ops = operations.split(",")
    if (
        not 2 <= len(ops) <= MAX_VERTICES
        or ops[0] != INPUT
        or ops[-1] != OUTPUT
        or any(op not in HASH_OPS for op in ops[1:-1])
    ):
        raise ValueError(f"bad operations {operations!r}")
    code = len(cols.ops_labels)
    labels = [_LABEL_OF[op] for op in ops]
    cols.ops_labels.append(tuple(labels + [_PAD_LABEL] * (MAX_VERTICES - len(labels))))
    cols.ops_codes[operations] = code
    return code


def _read_tfrecord(path: Path, budgets: Sequence[int], halfway: bool) -> tuple[_Columns, int]:
    """The records of an official file trained for one of `budgets` epochs, and the total record count."""
    cols = _Columns()
    budget_of = {b: k for k, b in enumerate(budgets)}
    loads, a2b, fromhex = json.loads, binascii.a2b_base64, bytes.fromhex
    ops_codes = cols.ops_codes
    n_records = 0
    size = path.stat().st_size
    done = 0
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"converting {path.name}", disable=None) as bar:
        for index, offset, data in iter_frames(path):
            n_records += 1
            if not n_records & 0xFFFF:
                bar.update(offset - done)
                done = offset
            try:
                module_hash, epochs, adjacency, operations, metrics = loads(data)
                k = budget_of.get(epochs)
                if k is None:
                    if not isinstance(epochs, int):
                        raise ValueError(f"epochs {epochs!r} is not an int")
                    continue
                key = fromhex(module_hash)
                if len(key) != 16:
                    raise ValueError(f"module hash {module_hash!r} is not 32 hex digits")
                side = _ADJ_SIDE.get(len(adjacency))
                if side is None or adjacency.strip("01"):
                    raise ValueError(f"adjacency {adjacency!r} is not a V*V 0/1 string with 2 <= V <= 7")
                code = ops_codes.get(operations)
                if code is None:
                    code = _ops_code(cols, operations)
                if cols.ops_labels[code][side - 1] != -2:  # -2 (output) sits at index len(ops) - 1
                    raise ValueError(f"{operations!r} does not name {side} vertices")
                (va, te, tt), half, pa = run_values(a2b(metrics), halfway=halfway)
            except (ValueError, TypeError, AttributeError, struct.error, binascii.Error) as e:
                raise corrupt_record(path, index, offset, f"has a malformed payload ({e})") from None
            cols.hashes += key
            cols.adjacency.append(int(adjacency, 2))
            cols.num_vertices.append(side)
            cols.ops_code.append(code)
            cols.valid.append(va)
            cols.test.append(te)
            cols.time.append(tt)
            cols.params.append(pa)
            cols.record.append(index)
            cols.budget.append(k)
            if half is not None:
                cols.half_valid.append(half[0])
                cols.half_test.append(half[1])
                cols.half_time.append(half[2])
        bar.update(size - done)
    return cols, n_records


def _to_7x7_bits(raw: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """Raw row-major V*V bit strings (first char = MSB) to bitmasks with bit i*7+j = edge i->j."""
    out = np.zeros(len(raw), dtype=np.uint64)
    one = np.uint64(1)
    for v in np.unique(sides).tolist():
        sel = np.flatnonzero(sides == v)
        bits, packed = raw[sel], np.zeros(len(sel), dtype=np.uint64)
        for k in range(v * v):  # one bit at a time: no (rows x 49) temporaries
            i, j = divmod(k, v)
            packed |= ((bits >> np.uint64(v * v - 1 - k)) & one) << np.uint64(i * MAX_VERTICES + j)
        out[sel] = packed
    return out


def _build_arrays(cols: _Columns, path: Path, n_budgets: int) -> dict[str, np.ndarray]:
    """Group the per-record columns by hash and budget (repeats in file order) into the cache's arrays.

    Metric arrays are (rows, budgets, repeats), or (rows, repeats) when one budget is kept.
    """
    m = len(cols.valid)
    pairs = np.frombuffer(cols.hashes, dtype=">u8").reshape(m, 2)
    hi, lo = pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)
    budget = np.frombuffer(bytes(cols.budget), dtype=np.uint8)
    order = np.lexsort((budget, lo, hi))  # stable: equal (hash, budget) keep file order
    hi, lo, budget = hi[order], lo[order], budget[order]
    first = np.ones(m, dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    run_first = first.copy()  # first record of each (hash, budget)
    run_first[1:] |= budget[1:] != budget[:-1]
    run_starts = np.flatnonzero(run_first)
    rank = np.arange(m) - run_starts[np.cumsum(run_first) - 1]
    n, r = len(starts), int(rank.max()) + 1
    counts = np.zeros((n, n_budgets), dtype=np.int8)
    np.add.at(counts, (group, budget), 1)

    spec_cols = {
        "adjacency": np.frombuffer(cols.adjacency, dtype=np.uint64)[order],
        "num_vertices": np.frombuffer(bytes(cols.num_vertices), dtype=np.uint8)[order],
        "ops": np.frombuffer(cols.ops_code, dtype=np.uint16)[order],
    }
    for name, col in spec_cols.items():
        bad = np.flatnonzero(col != col[starts][group])
        if len(bad):
            i = int(bad[0])
            index = int(np.frombuffer(cols.record, dtype=np.int64)[order[i]])
            h = pairs[order[i]].tobytes().hex()
            raise NB101FormatError(
                f"{path}: record {index} gives hash {h} a different {name} than its first record; "
                f"the file is corrupt, {DOWNLOAD_FIX}"
            )

    def per_repeat(values: array) -> np.ndarray:
        out = np.full((n, n_budgets, r), np.nan)
        out[group, budget, rank] = np.frombuffer(values, dtype=np.float64)[order]
        return out[:, 0, :] if n_budgets == 1 else out

    key = np.empty((n, 2), dtype=">u8")
    key[:, 0], key[:, 1] = hi[starts], lo[starts]
    labels = np.array(cols.ops_labels, dtype=np.int8).reshape(-1, MAX_VERTICES)
    sides = spec_cols["num_vertices"][starts]
    arrays = {
        "hashes": key.view("S16").reshape(n),
        "valid_acc": per_repeat(cols.valid),
        "test_acc": per_repeat(cols.test),
        "train_time": per_repeat(cols.time),
        "n_repeats": counts[:, 0] if n_budgets == 1 else counts,
        "params": np.frombuffer(cols.params, dtype=np.int64)[order][starts],  # first repeat's
        "adjacency": _to_7x7_bits(spec_cols["adjacency"][starts], sides),
        "num_vertices": sides.astype(np.int8),
        "ops": labels[spec_cols["ops"][starts]],
    }
    if cols.half_valid:
        for name, values in zip(
            HALFWAY_ARRAYS, (cols.half_valid, cols.half_test, cols.half_time), strict=True
        ):
            arrays[name] = per_repeat(values)
    return arrays


def spec_key(masks: Sequence[int], labels: Sequence[int]) -> int:
    """The stored-spec index's key of a pruned spec (<= 7 vertices): row bitmasks and integer labels."""
    adjacency = sum(map(lshift, masks, _KEY_ROW_SHIFTS))
    return adjacency << _KEY_ADJ_SHIFT | sum(map(lshift, labels[1:-1], _KEY_OP_SHIFTS)) | len(masks)


def _vertex_orders(n: int) -> Iterator[tuple[int, ...]]:
    """Every renumbering of an n-vertex spec that keeps the input first and the output last."""
    for interior in itertools.permutations(range(1, n - 1)):
        yield (0, *interior, n - 1)


def _order_variants(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(spec key, row) of every upper-triangular vertex order of every stored spec.

    A valid query prunes to an upper-triangular spec, so if it is isomorphic to a stored spec it is
    literally one of these (they average ~3 per NB-101 spec). Vectorized per renumbering: at most
    5! = 120 of them, each a few dozen NumPy operations on the specs it keeps upper-triangular.
    """
    adjacency = arrays["adjacency"].astype(np.int64)
    sides = arrays["num_vertices"]
    labels = arrays["ops"].astype(np.int64)
    keys: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for n in np.unique(sides).tolist():
        rows_n = np.flatnonzero(sides == n)
        adj_n, labels_n = adjacency[rows_n], labels[rows_n]
        for order in _vertex_orders(n):
            # Old edges that would land on or below the diagonal: such a spec has no such order.
            lower = sum(1 << MAX_VERTICES * order[a] + order[b] for a in range(n) for b in range(a + 1))
            sel = np.flatnonzero((adj_n & lower) == 0)
            if not len(sel):
                continue
            old = adj_n[sel]
            new = np.zeros(len(sel), dtype=np.int64)
            for a in range(n - 1):
                for b in range(a + 1, n):
                    new |= (old >> MAX_VERTICES * order[a] + order[b] & 1) << MAX_VERTICES * a + b
            key = new << _KEY_ADJ_SHIFT | n
            for p in range(1, n - 1):
                key |= labels_n[sel, order[p]] << _KEY_OP_SHIFTS[p - 1]
            keys.append(key)
            rows.append(rows_n[sel])
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(keys), np.concatenate(rows)


def _stored_spec_hash(arrays: dict[str, np.ndarray], i: int) -> str:
    """The NB-101 hash of row i's stored spec, computed (not the stored hash)."""
    n, bits = arrays["num_vertices"].item(i), arrays["adjacency"].item(i)
    masks = [bits >> s & 0x7F for s in _KEY_ROW_SHIFTS[:n]]
    return hash_masks(masks, arrays["ops"][i, :n].tolist())


def _hash_matches(arrays: dict[str, np.ndarray], rows: np.ndarray, computed: np.ndarray) -> np.ndarray:
    """Whether each row's stored hash equals the computed one ('S16' bytes, row-aligned)."""
    stored = arrays["hashes"][rows].view(">u8").reshape(-1, 2)
    return (stored == computed.view(">u8").reshape(-1, 2)).all(axis=1)


def _computed_hashes(arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """_stored_spec_hash of many rows, as 'S16' bytes (a progress bar when it takes a while)."""
    bar = tqdm(rows.tolist(), desc="hashing stored specs", disable=None if len(rows) > 10_000 else True)
    raw = b"".join(bytes.fromhex(_stored_spec_hash(arrays, i)) for i in bar)
    return np.frombuffer(raw, dtype="S16")


def _spec_index(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The stored-spec index: sorted keys of every vertex order of every stored spec, and their rows.

    A query found here is answered without hashing; that is exact because identical labelled graphs
    have identical hashes, PROVIDED each row's hash is that of its spec. The official format promises
    that; a file written with explicit hashes (synthetic data) need not keep it, so it is checked here,
    once. Rows sharing a key (impossible when the promise holds) have isomorphic specs: one hash decides
    which of them, if any, keeps the key. Of the other rows, an evenly spaced sample is hashed, and if
    any sampled row is wrong, every row is (slow, logged). Rows left out are still found by hashing.
    """
    keys, rows = _order_variants(arrays)
    order = np.lexsort((rows, keys))
    keys, rows = keys[order], rows[order]
    distinct = np.ones(len(keys), dtype=bool)  # drop repeats of a (key, row) pair (automorphisms)
    distinct[1:] = (keys[1:] != keys[:-1]) | (rows[1:] != rows[:-1])
    keys, rows = keys[distinct], rows[distinct]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, len(keys)))

    ok = np.ones(len(arrays["hashes"]), dtype=bool)
    checked = np.zeros(len(ok), dtype=bool)
    shared = sizes > 1
    if shared.any():
        leaders, which = np.unique(rows[starts[shared]], return_inverse=True)
        members = rows[np.repeat(shared, sizes)]
        truth = np.repeat(_computed_hashes(arrays, leaders)[which], sizes[shared])
        ok[members[~_hash_matches(arrays, members, truth)]] = False
        checked[members] = True
        log.info(
            "%d specs are stored by more than one row; each keeps only the row whose hash is its own",
            len(leaders),
        )
    indexed = np.zeros(len(ok), dtype=bool)  # rows with no upper-triangular order need no check
    indexed[rows] = True
    single = np.flatnonzero(indexed & ~checked)
    spaced = np.linspace(0, len(single) - 1, min(len(single), _SPEC_CHECK_SAMPLE))
    picks = single[np.unique(spaced.astype(np.int64))]
    sample_ok = _hash_matches(arrays, picks, _computed_hashes(arrays, picks))
    if not sample_ok.all():
        log.warning(
            "%d of %d sampled rows store a spec that does not hash to their module hash (not an official "
            "file?); hashing all %d rows once, so that queries by spec stay exact",
            int((~sample_ok).sum()),
            len(picks),
            len(single),
        )
        ok[single] = _hash_matches(arrays, single, _computed_hashes(arrays, single))
    keep = ok[rows]
    return {"spec_keys": keys[keep], "spec_rows": rows[keep].astype(np.int32)}


def convert_tfrecord(
    path: str | os.PathLike, budgets: Sequence[int] = (FINAL_EPOCHS,), *, halfway: bool = False
) -> tuple[dict[str, np.ndarray], dict]:
    """Parse an official file into the table's arrays and metadata (no cache is written).

    Keeps the records of `budgets` (epochs; the first is the standard one) and, with `halfway`, the
    halfway evaluation of each. Every budget must have records: a file without them is not the one the
    caller wants (e.g. nasbench_only108.tfrecord read as the full table).
    """
    path = Path(path)
    budgets = tuple(budgets)
    cols, n_records = _read_tfrecord(path, budgets, halfway)
    if n_records == 0:
        raise NB101FormatError(f"{path} holds no records (empty file); {DOWNLOAD_FIX}")
    held = np.bincount(np.frombuffer(bytes(cols.budget), dtype=np.uint8), minlength=len(budgets))
    lacking = [b for b, count in zip(budgets, held.tolist(), strict=True) if count == 0]
    if lacking:
        raise NB101FormatError(
            f"{path} has {n_records} records but none at {', '.join(map(str, lacking))} epochs; "
            f"{DOWNLOAD_FIX}"
        )
    arrays = _build_arrays(cols, path, len(budgets))
    arrays.update(_spec_index(arrays))
    st = path.stat()
    meta = {
        "version": CACHE_VERSION,
        "source": path.name,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "records": n_records,
        "records_kept": len(cols.valid),
        "budgets": list(budgets),
        "halfway": halfway,
    }
    if budgets == (FINAL_EPOCHS,):
        meta["records_108"] = len(cols.valid)
        meta["epochs"] = FINAL_EPOCHS
    return arrays, meta


# ----------------------------------------------------------------------------------------------- cache
def cache_path_for(tfrecord: str | os.PathLike, suffix: str = CACHE_SUFFIX) -> Path:
    """Where the converted cache of an official file lives: beside it, `<stem><suffix>`
    (`.nb101cache.npz`: one file; any other suffix: a directory of memory-mapped columns)."""
    p = Path(tfrecord)
    return p.with_name(p.name.removesuffix(".tfrecord") + suffix)


def _tmp_name(path: Path, what: str) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{what}.tmp")


def write_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write to a temporary name, then rename: readers never see a partial cache.

    A path ending in `.npz` gets one uncompressed archive; any other a directory of `.npy` columns and
    `meta.json`, which read_cache memory-maps (a directory replaces an older one by two renames).
    """
    if path.name.endswith(".npz"):
        tmp = _tmp_name(path, "npz")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return
    tmp, old = _tmp_name(path, "new"), _tmp_name(path, "old")
    try:
        tmp.mkdir()
        for name, values in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(values), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta) + "\n")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)


class OutdatedCacheError(ValueError):
    """A cache written by an older bench.truth.nb101 (another CACHE_VERSION)."""


def _check_meta(meta: object) -> dict:
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a JSON object")
    if meta.get("version") != CACHE_VERSION:  # checked first: older caches lack newer arrays
        raise OutdatedCacheError(f"cache version {meta.get('version')}, expected {CACHE_VERSION}")
    return meta


def _expected_arrays(meta: dict) -> tuple[str, ...]:
    return (*CACHE_ARRAYS, *SPEC_ARRAYS, *(HALFWAY_ARRAYS if meta.get("halfway") else ()))


def read_cache(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of a cache; ValueError (or OSError) when it is not a usable one.

    A directory cache's arrays are read-only memory maps: loading costs what the caller touches.
    """
    if path.is_dir():
        meta = _check_meta(json.loads((path / "meta.json").read_text()))
        names = _expected_arrays(meta)
        missing = [k for k in names if not (path / f"{k}.npy").is_file()]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        arrays = {k: np.load(path / f"{k}.npy", mmap_mode="r", allow_pickle=False) for k in names}
    else:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise ValueError("missing arrays ['meta']")
            meta = _check_meta(json.loads(str(z["meta"])))
            names = _expected_arrays(meta)
            missing = [k for k in names if k not in z.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            arrays = {k: z[k] for k in names}
    n = len(arrays["hashes"])
    if n == 0:
        raise ValueError("no architectures")
    n_budgets = len(meta.get("budgets", (FINAL_EPOCHS,)))
    metrics = [arrays[k] for k in (*_METRIC_ARRAYS, *(HALFWAY_ARRAYS if meta.get("halfway") else ()))]
    metric_ndim, head = (2, (n,)) if n_budgets == 1 else (3, (n, n_budgets))
    if (
        arrays["hashes"].dtype != np.dtype("S16")
        or any(len(arrays[k]) != n for k in CACHE_ARRAYS)
        or any(a.ndim != metric_ndim or a.shape != metrics[0].shape for a in metrics)
        or metrics[0].shape[: len(head)] != head
        or arrays["n_repeats"].shape != head
    ):
        raise ValueError("inconsistent array shapes")
    return arrays, meta


def is_fresh(meta: dict, source: Path) -> bool:
    st = source.stat()
    return meta.get("source_size") == st.st_size and meta.get("source_mtime_ns") == st.st_mtime_ns


def check_spec_index(keys: np.ndarray, rows: np.ndarray, n: int) -> None:
    """ValueError unless the stored-spec index is well formed (a wrong one would answer wrong rows)."""
    if keys.dtype != np.int64 or keys.ndim != 1 or rows.shape != keys.shape or rows.dtype.kind not in "iu":
        raise ValueError("malformed stored-spec index")
    if len(keys) and ((keys[1:] <= keys[:-1]).any() or rows.min() < 0 or rows.max() >= n):
        raise ValueError("stored-spec index is unsorted or points outside the table")

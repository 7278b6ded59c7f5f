"""TensorFlow-free NAS-Bench-101: read the official tfrecord, cache it compactly, answer queries.

The official files (specs/nb101_format.md) are TFRecord-framed JSON rows with a base64 protobuf inside.
Parsing 1.27 million of them takes a while, so the first load converts the file once into a columnar
cache beside it (`<stem>.nb101cache.npz`, uncompressed, ~60 MB) and every later load reads only that.

The table has one row per architecture, sorted by the 16-byte module hash so a lookup is a binary
search. A row's repeats are columns 0..n_repeats-1 in file order: deterministic, never sampled.
Only 108-epoch records are kept (the `full` file's 4/12/36-epoch rows are skipped).

Hashing a spec (~40 MD5 calls) costs far more than the rest of a query, so the cache also holds a
sorted index of the stored specs themselves, each as one exact integer, in every vertex order that
keeps it upper-triangular (~3 per spec, ~1.2 million keys): a query whose pruned spec is isomorphic to
a stored one is literally one of those and is answered by a binary search, without hashing. That is
exact because identical labelled graphs have identical hashes and the converter makes sure the rows'
hashes are their specs' (see _spec_index). Only specs the index lacks are hashed, as before: those not
in the table (to raise SpecNotInTableError) and rows whose stored spec failed that check.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import math
import os
import struct
import zipfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import lshift
from pathlib import Path

import google_crc32c
import numpy as np
from tqdm import tqdm

from bench.errors import HarnessError
from bench.search.graph import (
    HASH_OPS,
    INPUT,
    OUTPUT,
    InvalidSpecError,
    _check_budget,
    _hash_masks,
    _prune_masks,
    hash_spec,
    ops_from_labels,
    prune,
)
from bench.truth.base import ArchResult

__all__ = [
    "EvaluationData",
    "InvalidHashError",
    "ModelMetrics",
    "NB101Batch",
    "NB101Error",
    "NB101FileNotFoundError",
    "NB101FormatError",
    "NB101Record",
    "NB101Table",
    "SpecNotInTableError",
    "InvalidSpecError",
    "cache_path_for",
    "decode_model_metrics",
    "encode_model_metrics",
    "encode_payload",
    "frame_record",
    "hash_spec",
    "iter_tfrecord",
    "masked_crc32c",
    "metrics_from_final",
    "records_for_spec",
    "write_tfrecord",
]

log = logging.getLogger(__name__)

FINAL_EPOCHS = 108
MAX_VERTICES = 7
CACHE_SUFFIX = ".nb101cache.npz"
CACHE_VERSION = 2  # 2: adds the stored-spec index (spec_keys, spec_rows)
DOWNLOAD_FIX = "re-download it with `python -m bench.data download nb101`"
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_CHUNK = 1 << 23
_NO_PARAMS = -1  # trainable_parameters absent from the record
_PAD_LABEL = -3  # ops padding, as in the sample JSON's operations column
_LABEL_OF = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(HASH_OPS)}}
# What reading a damaged or foreign .npz can raise (zip CRC failures are BadZipFile).
_CACHE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
_CACHE_ARRAYS = (
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
# The stored-spec index: sorted int64 keys of the stored specs in all their vertex orders, and the row
# of each (see _spec_index).
_SPEC_ARRAYS = ("spec_keys", "spec_rows")
# spec key = adjacency bits (bit 7*i + j = edge i->j) << 13 | interior op labels, 2 bits each from bit 3
# | vertex count (3 bits): exact for <= 7 vertices and < 2**62.
_KEY_ADJ_SHIFT = 13
_KEY_ROW_SHIFTS = tuple(MAX_VERTICES * i for i in range(MAX_VERTICES))
_KEY_OP_SHIFTS = tuple(3 + 2 * k for k in range(MAX_VERTICES - 2))
# Stored specs hashed at conversion to check the file's hashes (~0.1 s), unless one of them is wrong.
_SPEC_CHECK_SAMPLE = 1000


# ----------------------------------------------------------------------------------------------- errors
class NB101Error(HarnessError):
    """Base of the NAS-Bench-101 table's user-facing errors."""


class NB101FormatError(NB101Error, ValueError):
    """A tfrecord or cache that is corrupt, truncated or not NAS-Bench-101 data."""


class NB101FileNotFoundError(NB101Error, FileNotFoundError):
    """The NAS-Bench-101 file is not where the caller said."""


class InvalidHashError(NB101Error, ValueError):
    """A module hash that is not 32 hex digits (or 16 bytes)."""


class SpecNotInTableError(NB101Error, KeyError):
    """A valid NAS-Bench-101 spec (or hash) that this table has no row for."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


# ------------------------------------------------------------------------------------- protobuf (proto2)
@dataclass(frozen=True)
class EvaluationData:
    """nasbench.EvaluationData; None = field absent."""

    current_epoch: float | None = None
    training_time: float | None = None
    train_accuracy: float | None = None
    validation_accuracy: float | None = None
    test_accuracy: float | None = None
    checkpoint_path: str | None = None


@dataclass(frozen=True)
class ModelMetrics:
    """nasbench.ModelMetrics: evaluation_data[0] = step 0, [1] = halfway, [2] = final."""

    evaluation_data: tuple[EvaluationData, ...] = ()
    trainable_parameters: int | None = None
    total_time: float | None = None


_EVAL_DOUBLES = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
# Canonical serialization of fields 1..5 of EvaluationData: tag byte + little-endian double, in order.
_EVAL_CANON = struct.Struct("<BdBdBdBdBd")
_EVAL_CANON_TAGS = (0x09, 0x11, 0x19, 0x21, 0x29)


class _WireError(ValueError):
    pass


def _varint(value: int) -> bytes:
    if value < 0:  # int32/int64 negatives are 10-byte two's complement varints
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a serialized message; fixed-width values stay raw bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > n:
                raise _WireError(f"truncated fixed{width * 8} field {number}")
            value, pos = buf[pos : pos + width], pos + width
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > n:
                raise _WireError(f"truncated length-delimited field {number}")
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise _WireError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def _double(number: int, wire: int, value: int | bytes) -> float:
    if wire != 1:
        raise _WireError(f"field {number} should be a double, has wire type {wire}")
    return struct.unpack("<d", value)[0]


def _decode_eval(buf: bytes) -> EvaluationData:
    values: dict[str, object] = {}
    for number, wire, value in _fields(buf):
        if 1 <= number <= 5:
            values[_EVAL_DOUBLES[number - 1]] = _double(number, wire, value)
        elif number == 6:
            if wire != 2:
                raise _WireError(f"checkpoint_path has wire type {wire}")
            values["checkpoint_path"] = bytes(value).decode("utf-8")
    return EvaluationData(**values)


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Parse a serialized nasbench.ModelMetrics (unknown fields are skipped, as proto2 does)."""
    evals: list[EvaluationData] = []
    params = total = None
    for number, wire, value in _fields(buf):
        if number == 1:
            if wire != 2:
                raise _WireError(f"evaluation_data has wire type {wire}")
            evals.append(_decode_eval(value))
        elif number == 2:
            if wire != 0:
                raise _WireError(f"trainable_parameters has wire type {wire}")
            params = value & _U32
            params = params - (1 << 32) if params >= 1 << 31 else params  # int32
        elif number == 3:
            total = _double(number, wire, value)
    return ModelMetrics(tuple(evals), params, total)


def encode_model_metrics(metrics: ModelMetrics) -> bytes:
    """Serialize like protobuf does (fields in number order, absent fields omitted)."""
    parts = []
    for ev in metrics.evaluation_data:
        body = []
        for number, name in enumerate(_EVAL_DOUBLES, start=1):
            v = getattr(ev, name)
            if v is not None:
                body.append(struct.pack("<Bd", number << 3 | 1, v))
        if ev.checkpoint_path is not None:
            raw = ev.checkpoint_path.encode("utf-8")
            body.append(b"\x32" + _varint(len(raw)) + raw)
        data = b"".join(body)
        parts.append(b"\x0a" + _varint(len(data)) + data)
    if metrics.trainable_parameters is not None:
        parts.append(b"\x10" + _varint(int(metrics.trainable_parameters)))
    if metrics.total_time is not None:
        parts.append(struct.pack("<Bd", 0x19, metrics.total_time))
    return b"".join(parts)


def _final_values(buf: bytes) -> tuple[float, float, float, int]:
    """(validation_accuracy, test_accuracy, training_time, trainable_parameters) at evaluation_data[2].

    The converter's hot path: canonical records (what the official files hold) are read with a few
    index operations and one struct call; anything else goes through the generic decoder. Absent
    accuracies/times read as NaN, absent parameters as -1.
    """
    pos, n, count, final, params = 0, len(buf), 0, None, _NO_PARAMS
    try:
        while pos < n:
            tag = buf[pos]
            if tag == 0x0A and buf[pos + 1] < 0x80:
                start = pos + 2
                pos = start + buf[pos + 1]
                if count == 2:
                    final = buf[start:pos]
                count += 1
            elif tag == 0x19:
                pos += 9
            elif tag == 0x10:
                params, pos = _read_varint(buf, pos + 1)
                params &= _U32
                if params >= 1 << 31:  # int32
                    params -= 1 << 32
            else:
                raise _WireError("not canonical")
        if pos != n:
            raise _WireError("not canonical")
    except (_WireError, IndexError):
        return _final_values_generic(buf)
    if final is None:
        raise _WireError(f"{count} evaluation_data entries; expected 3 (start, halfway, final)")
    # The five doubles, optionally followed by a short checkpoint_path: the official files' layout.
    n = len(final)
    if n == 45 or (n > 46 and final[45] == 0x32 and final[46] < 0x80 and n == 47 + final[46]):
        t1, _, t2, tt, t3, _, t4, va, t5, te = _EVAL_CANON.unpack_from(final)
        if (t1, t2, t3, t4, t5) == _EVAL_CANON_TAGS:
            return va, te, tt, params
    ev = _decode_eval(final)
    return _nan(ev.validation_accuracy), _nan(ev.test_accuracy), _nan(ev.training_time), params


def _final_values_generic(buf: bytes) -> tuple[float, float, float, int]:
    m = decode_model_metrics(buf)
    if len(m.evaluation_data) < 3:
        raise _WireError(f"{len(m.evaluation_data)} evaluation_data entries; expected 3")
    ev = m.evaluation_data[2]
    params = _NO_PARAMS if m.trainable_parameters is None else m.trainable_parameters
    return _nan(ev.validation_accuracy), _nan(ev.test_accuracy), _nan(ev.training_time), params


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


# ------------------------------------------------------------------------------------ TFRecord framing
def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (Castagnoli)."""
    return _mask(google_crc32c.value(bytes(data)))


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    header = struct.pack("<Q", len(data))
    return b"".join(
        (header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data)))
    )


def _corrupt(path: Path, index: int, offset: int, problem: str) -> NB101FormatError:
    return NB101FormatError(
        f"{path}: record {index} (byte offset {offset}) {problem}; the file is corrupt or truncated, "
        f"{DOWNLOAD_FIX}"
    )


def _iter_frames(path: Path, chunk_size: int = _CHUNK) -> Iterator[tuple[int, int, bytes]]:
    """(record index, byte offset, payload) of every record, both CRCs checked, read in big chunks."""
    crc = google_crc32c.value
    # Valid headers seen so far -> payload length: the real files have only a few hundred distinct
    # lengths, so most headers skip their CRC call (it is the same 12 bytes the CRC approved).
    known: dict[bytes, int] = {}
    with open(path, "rb") as f:
        buf, pos, base, index, eof = b"", 0, 0, 0, False
        while True:
            end = pos + 12
            if end > len(buf):
                if not eof:
                    more = f.read(chunk_size)
                    eof = not more
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                    continue
                if pos == len(buf):
                    return
                raise _corrupt(path, index, base + pos, "is cut off inside its 12-byte header")
            header = buf[pos:end]
            length = known.get(header)
            if length is None:
                length, stored = struct.unpack("<QI", header)
                if _mask(crc(header[:8])) != stored:
                    raise _corrupt(path, index, base + pos, "has a bad length-header CRC")
                if len(known) < 4096:
                    known[header] = length
            stop = end + length + 4
            if stop > len(buf):
                if not eof:
                    more = f.read(max(chunk_size, stop - len(buf)))
                    eof = not more
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                    continue
                raise _corrupt(path, index, base + pos, f"is cut off (needs {length} payload bytes)")
            data = buf[end : stop - 4]
            if _mask(crc(data)) != int.from_bytes(buf[stop - 4 : stop], "little"):
                raise _corrupt(path, index, base + pos, "has a bad payload CRC")
            yield index, base + pos, data
            pos = stop
            index += 1


def iter_tfrecord(path: str | os.PathLike) -> Iterator[bytes]:
    """The CRC-checked payloads of a TFRecord file, in file order."""
    for _, _, data in _iter_frames(Path(path)):
        yield data


# ---------------------------------------------------------------------------------------------- writer
@dataclass(frozen=True, eq=False)
class NB101Record:
    """One row of the official file: a spec trained for `epochs`, one repeat.

    With `module_hash` None the writer prunes and hashes the spec, as the official files were made;
    a given hash is written as is with the matrix unpruned (for synthetic files).
    """

    matrix: np.ndarray | Sequence[Sequence[int]]
    ops: tuple[str, ...]
    metrics: ModelMetrics
    epochs: int = FINAL_EPOCHS
    module_hash: str | None = None


def metrics_from_final(
    validation_accuracy: float,
    test_accuracy: float,
    training_time: float,
    trainable_parameters: int | None,
    *,
    train_accuracy: float | None = None,
    epochs: int = FINAL_EPOCHS,
) -> ModelMetrics:
    """ModelMetrics with the given final evaluation; the start/halfway entries carry only epoch and time."""
    return ModelMetrics(
        evaluation_data=(
            EvaluationData(current_epoch=0.0, training_time=0.0),
            EvaluationData(current_epoch=epochs / 2, training_time=training_time / 2),
            EvaluationData(
                current_epoch=float(epochs),
                training_time=training_time,
                train_accuracy=train_accuracy,
                validation_accuracy=validation_accuracy,
                test_accuracy=test_accuracy,
            ),
        ),
        trainable_parameters=trainable_parameters,
        total_time=training_time,
    )


def records_for_spec(
    matrix: np.ndarray | Sequence[Sequence[int]],
    ops: Sequence[str],
    repeats: Sequence[ModelMetrics],
    epochs: int = FINAL_EPOCHS,
) -> list[NB101Record]:
    """One record per training repeat of a spec."""
    return [NB101Record(np.asarray(matrix), tuple(ops), m, epochs) for m in repeats]


def encode_payload(record: NB101Record) -> bytes:
    """The JSON payload `[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`."""
    if record.module_hash is None:
        module_hash = hash_spec(record.matrix, record.ops)
        matrix, ops = prune(record.matrix, record.ops)
    else:
        module_hash, matrix, ops = record.module_hash, np.asarray(record.matrix), list(record.ops)
        if not isinstance(module_hash, str):
            raise InvalidHashError(f"module_hash must be a 32-hex-digit string, got {module_hash!r}")
        _hash_key(module_hash)  # validates
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or len(ops) != matrix.shape[0]:
            raise InvalidSpecError(f"matrix of shape {matrix.shape} with {len(ops)} ops")
    adjacency = "".join("1" if x else "0" for x in matrix.ravel().tolist())
    metrics = base64.b64encode(encode_model_metrics(record.metrics)).decode("ascii")
    return json.dumps([module_hash, int(record.epochs), adjacency, ",".join(ops), metrics]).encode("utf-8")


def write_tfrecord(path: str | os.PathLike, records: Iterable[NB101Record]) -> int:
    """Write records in the official format (atomically); returns how many were written."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(tmp, "wb") as f:
            for record in records:
                f.write(frame_record(encode_payload(record)))
                count += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


# ------------------------------------------------------------------------------------------- converter
_ADJ_SIDE = {v * v: v for v in range(2, MAX_VERTICES + 1)}


@dataclass
class _Columns:
    """Per-record values of the 108-epoch rows, in file order (compact, not Python objects)."""

    hashes: bytearray = field(default_factory=bytearray)
    adjacency: array = field(default_factory=lambda: array("Q"))  # raw V*V bits, first char = MSB
    num_vertices: bytearray = field(default_factory=bytearray)
    ops_code: array = field(default_factory=lambda: array("H"))
    valid: array = field(default_factory=lambda: array("d"))
    test: array = field(default_factory=lambda: array("d"))
    time: array = field(default_factory=lambda: array("d"))
    params: array = field(default_factory=lambda: array("q"))
    record: array = field(default_factory=lambda: array("q"))  # index in the file, for error messages
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


def _read_tfrecord(path: Path) -> tuple[_Columns, int]:
    """All 108-epoch rows of an official file, and the total record count."""
    cols = _Columns()
    loads, a2b, fromhex = json.loads, binascii.a2b_base64, bytes.fromhex
    ops_codes = cols.ops_codes
    n_records = 0
    size = path.stat().st_size
    done = 0
    with tqdm(total=size, unit="B", unit_scale=True, desc=f"converting {path.name}", disable=None) as bar:
        for index, offset, data in _iter_frames(path):
            n_records += 1
            if not n_records & 0xFFFF:
                bar.update(offset - done)
                done = offset
            try:
                module_hash, epochs, adjacency, operations, metrics = loads(data)
                if epochs != FINAL_EPOCHS:
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
                va, te, tt, pa = _final_values(a2b(metrics))
            except (ValueError, TypeError, AttributeError, struct.error, binascii.Error) as e:
                raise _corrupt(path, index, offset, f"has a malformed payload ({e})") from None
            cols.hashes += key
            cols.adjacency.append(int(adjacency, 2))
            cols.num_vertices.append(side)
            cols.ops_code.append(code)
            cols.valid.append(va)
            cols.test.append(te)
            cols.time.append(tt)
            cols.params.append(pa)
            cols.record.append(index)
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


def _build_arrays(cols: _Columns, path: Path) -> dict[str, np.ndarray]:
    """Group the per-record columns by hash (repeats in file order) into the cache's arrays."""
    m = len(cols.valid)
    pairs = np.frombuffer(cols.hashes, dtype=">u8").reshape(m, 2)
    hi, lo = pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)
    order = np.lexsort((lo, hi))  # stable: equal hashes keep file order
    hi, lo = hi[order], lo[order]
    first = np.ones(m, dtype=bool)
    first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    rank = np.arange(m) - starts[group]
    counts = np.diff(np.append(starts, m))
    n, r = len(starts), int(counts.max())

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
        out = np.full((n, r), np.nan)
        out[group, rank] = np.frombuffer(values, dtype=np.float64)[order]
        return out

    key = np.empty((n, 2), dtype=">u8")
    key[:, 0], key[:, 1] = hi[starts], lo[starts]
    labels = np.array(cols.ops_labels, dtype=np.int8).reshape(-1, MAX_VERTICES)
    sides = spec_cols["num_vertices"][starts]
    return {
        "hashes": key.view("S16").reshape(n),
        "valid_acc": per_repeat(cols.valid),
        "test_acc": per_repeat(cols.test),
        "train_time": per_repeat(cols.time),
        "n_repeats": counts.astype(np.int8),
        "params": np.frombuffer(cols.params, dtype=np.int64)[order][starts],  # first repeat's
        "adjacency": _to_7x7_bits(spec_cols["adjacency"][starts], sides),
        "num_vertices": sides.astype(np.int8),
        "ops": labels[spec_cols["ops"][starts]],
    }


def _spec_key(masks: Sequence[int], labels: Sequence[int]) -> int:
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
    return _hash_masks(masks, arrays["ops"][i, :n].tolist())


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


def convert_tfrecord(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Parse an official file into the table's arrays and metadata (no cache is written)."""
    path = Path(path)
    cols, n_records = _read_tfrecord(path)
    if n_records == 0:
        raise NB101FormatError(f"{path} holds no records (empty file); {DOWNLOAD_FIX}")
    if not cols.valid:
        raise NB101FormatError(
            f"{path} has {n_records} records but none at {FINAL_EPOCHS} epochs; {DOWNLOAD_FIX}"
        )
    arrays = _build_arrays(cols, path)
    arrays.update(_spec_index(arrays))
    st = path.stat()
    meta = {
        "version": CACHE_VERSION,
        "source": path.name,
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "records": n_records,
        "records_108": len(cols.valid),
        "epochs": FINAL_EPOCHS,
    }
    return arrays, meta


# ----------------------------------------------------------------------------------------------- cache
def cache_path_for(tfrecord: str | os.PathLike) -> Path:
    """Where the converted cache of an official file lives: beside it, `<stem>.nb101cache.npz`."""
    p = Path(tfrecord)
    return p.with_name(p.name.removesuffix(".tfrecord") + CACHE_SUFFIX)


def _write_cache(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write to a temporary name, then rename: readers never see a partial cache."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _OutdatedCacheError(ValueError):
    """A cache written by an older bench.truth.nb101 (another CACHE_VERSION)."""


def _read_cache(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of a cache; ValueError (or OSError) when it is not a usable one."""
    with np.load(path, allow_pickle=False) as z:
        if "meta" not in z.files:
            raise ValueError("missing arrays ['meta']")
        meta = json.loads(str(z["meta"]))
        if meta.get("version") != CACHE_VERSION:  # checked first: older caches lack newer arrays
            raise _OutdatedCacheError(f"cache version {meta.get('version')}, expected {CACHE_VERSION}")
        missing = [k for k in (*_CACHE_ARRAYS, *_SPEC_ARRAYS) if k not in z.files]
        if missing:
            raise ValueError(f"missing arrays {missing}")
        arrays = {k: z[k] for k in (*_CACHE_ARRAYS, *_SPEC_ARRAYS)}
    n = len(arrays["hashes"])
    if n == 0:
        raise ValueError("no architectures")
    if arrays["hashes"].dtype != np.dtype("S16") or any(len(arrays[k]) != n for k in _CACHE_ARRAYS):
        raise ValueError("inconsistent array shapes")
    return arrays, meta


def _is_fresh(meta: dict, source: Path) -> bool:
    st = source.stat()
    return meta.get("source_size") == st.st_size and meta.get("source_mtime_ns") == st.st_mtime_ns


# ----------------------------------------------------------------------------------------------- table
def _hash_key(h: str | bytes) -> bytes:
    if isinstance(h, bytes) and len(h) == 16:
        return h
    try:
        key = bytes.fromhex(h) if isinstance(h, str) else b""
    except ValueError:
        key = b""
    if len(key) != 16:
        raise InvalidHashError(f"{h!r} is not a NAS-Bench-101 module hash; pass the 32-hex-digit md5 string")
    return key


def _check_spec_index(keys: np.ndarray, rows: np.ndarray, n: int) -> None:
    """ValueError unless the stored-spec index is well formed (a wrong one would answer wrong rows)."""
    if keys.dtype != np.int64 or keys.ndim != 1 or rows.shape != keys.shape or rows.dtype.kind not in "iu":
        raise ValueError("malformed stored-spec index")
    if len(keys) and ((keys[1:] <= keys[:-1]).any() or rows.min() < 0 or rows.max() >= n):
        raise ValueError("stored-spec index is unsorted or points outside the table")


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


class NB101Table:
    """The NAS-Bench-101 table at 108 epochs; implements bench.truth.base.GroundTruth."""

    name = "nb101"

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
        self._valid = arrays["valid_acc"]
        self._test = arrays["test_acc"]
        self._time = arrays["train_time"]
        self._n_repeats = arrays["n_repeats"]
        self._params = arrays["params"]
        self._adjacency = arrays["adjacency"]
        self._num_vertices = arrays["num_vertices"]
        self._ops = arrays["ops"]
        # Without an index (arrays made by hand) every query by spec is hashed.
        self._spec_keys = arrays.get("spec_keys", np.zeros(0, dtype=np.int64))
        self._spec_rows = arrays.get("spec_rows", np.zeros(0, dtype=np.int32))
        _check_spec_index(self._spec_keys, self._spec_rows, len(self._hashes))
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
        if path.name.endswith(".npz"):
            return cls._from_cache(path)
        cache = Path(cache_path) if cache_path is not None else cache_path_for(path)
        if not path.exists():
            if cache.exists() and not rebuild:
                log.info("%s is missing; using its converted cache %s", path, cache)
                return cls._from_cache(cache)
            raise NB101FileNotFoundError(
                f"{path} does not exist; download NAS-Bench-101 with `python -m bench.data download nb101` "
                "or pass the path of nasbench_only108.tfrecord"
            )
        if cache.exists() and not rebuild:
            try:
                arrays, meta = _read_cache(cache)
                if _is_fresh(meta, path):
                    return cls(arrays, meta, cache)
                log.info("cache %s is stale (%s changed); converting again", cache, path.name)
            except _OutdatedCacheError as e:
                log.warning("cache %s is outdated (%s); converting %s again, once", cache, e, path.name)
            except _CACHE_ERRORS as e:
                log.warning("ignoring unreadable cache %s (%s); converting %s again", cache, e, path.name)
        log.info("converting %s to the fast cache %s (once)", path, cache)
        arrays, meta = convert_tfrecord(path)
        try:
            _write_cache(cache, arrays, meta)
        except OSError as e:
            log.warning("could not write the cache %s (%s); the next load will convert again", cache, e)
        return cls(arrays, meta, path)

    @classmethod
    def _from_cache(cls, path: Path) -> NB101Table:
        if not path.exists():
            raise NB101FileNotFoundError(
                f"{path} does not exist; download NAS-Bench-101 with `python -m bench.data download nb101`"
            )
        try:
            arrays, meta = _read_cache(path)
            return cls(arrays, meta, path)
        except _CACHE_ERRORS as e:
            raise NB101FormatError(
                f"{path} is not a usable NB-101 cache ({e}); delete it and load the tfrecord again, "
                f"or {DOWNLOAD_FIX}"
            ) from None

    # ------------------------------------------------------------------------------------- lookups
    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, h: object) -> bool:
        try:
            return self._row(_hash_key(h)) >= 0  # type: ignore[arg-type]
        except InvalidHashError:
            return False

    def __repr__(self) -> str:
        return f"NB101Table({len(self)} architectures, source={self.source})"

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
        key = _spec_key(masks, labels)
        j = keys.searchsorted(key)
        return self._spec_rows.item(j) if j < len(keys) and keys.item(j) == key else -1

    def _stored_row_of(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> int:
        """_stored_row of a raw spec: whether query() takes the no-hash path (benchmarks, tests)."""
        masks, labels, _ = _prune_masks(matrix, ops)
        _check_budget(masks)
        return self._stored_row(masks, labels)

    def _hex(self, i: int) -> str:
        return self._hash_bytes[16 * i : 16 * i + 16].hex()

    def _result(self, i: int, arch_hash: str) -> ArchResult:
        r = self._n_repeats.item(i)
        params = self._params.item(i)
        return ArchResult(
            arch_hash=arch_hash,
            valid_acc=tuple(self._valid[i, :r].tolist()),
            test_acc=tuple(self._test[i, :r].tolist()),
            train_time=tuple(self._time[i, :r].tolist()),
            params=None if params == _NO_PARAMS else params,
        )

    def _missing(self, arch_hash: str) -> SpecNotInTableError:
        return SpecNotInTableError(
            f"NB-101 hash {arch_hash} is a valid spec but not in the table {self.source} "
            f"({len(self)} architectures; the official nasbench_only108.tfrecord has all 423,624): "
            "load the official file, e.g. after `python -m bench.data download nb101`"
        )

    def query_hash(self, arch_hash: str | bytes) -> ArchResult:
        """All repeats of the architecture with this module hash."""
        key = _hash_key(arch_hash)
        i = self._row(key)
        h = key.hex()
        if i < 0:
            raise self._missing(h)
        return self._result(i, h)

    def query(self, matrix: np.ndarray | Sequence[Sequence[int]], ops: Sequence[str]) -> ArchResult:
        """All repeats of a raw cell spec (pruned here; hashed only when the stored-spec index lacks it).

        Raises InvalidSpecError outside NAS-Bench-101 and SpecNotInTableError for a valid spec this
        table lacks.
        """
        masks, labels, _ = _prune_masks(matrix, ops)
        _check_budget(masks)
        i = self._stored_row(masks, labels)
        if i >= 0:
            return self._result(i, self._hex(i))
        # Not indexed: absent from the table, or its row failed the converter's check (see _spec_index).
        h = hash_spec(matrix, ops)
        i = self._row(bytes.fromhex(h))
        if i < 0:
            raise self._missing(h)
        return self._result(i, h)

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

    def query_hashes(self, hashes: Sequence[str] | np.ndarray) -> NB101Batch:
        """All repeats of many hashes at once (SpecNotInTableError if any is absent)."""
        rows = self.rows(hashes)
        return NB101Batch(
            rows=rows,
            valid_acc=self._valid[rows],
            test_acc=self._test[rows],
            train_time=self._time[rows],
            n_repeats=self._n_repeats[rows],
            params=self._params[rows],
        )

    def spec(self, arch_hash: str | bytes) -> tuple[np.ndarray, list[str]]:
        """The pruned spec stored for a hash (as in the file), e.g. to check a query by spec."""
        key = _hash_key(arch_hash)
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

    def best_test_error(self, space: int) -> float | None:
        """Lowest single-run test error in NAS-Bench-1Shot1 search space `space` (reference constant)."""
        from bench.search.spaces import SearchSpace  # lazy: spaces imports torch

        return SearchSpace(space).best_test_error

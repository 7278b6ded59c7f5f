"""NAS-Bench-101's wire format, read without TensorFlow or protobuf.

The official files (specs/nb101_format.md) are TFRecord-framed JSON rows with a base64 protobuf inside:
TFRecord framing with masked CRC-32C checksums on the length header and on the payload, and a
hand-written proto2 decoder for `nasbench.ModelMetrics`. Everything here READS; the matching writers
(for tests and synthetic benchmarks) are in `bench.truth.fixtures`.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from bench.errors import HarnessError

__all__ = [
    "DOWNLOAD_FIX",
    "EVAL_DOUBLES",
    "FINAL_EPOCHS",
    "NO_PARAMS",
    "EvaluationData",
    "ModelMetrics",
    "NB101Error",
    "NB101FormatError",
    "corrupt_record",
    "decode_model_metrics",
    "final_values",
    "iter_frames",
    "iter_tfrecord",
    "masked_crc32c",
    "run_values",
]

FINAL_EPOCHS = 108
DOWNLOAD_FIX = (
    "re-download it with `python -m bench.data download nb101` "
    "(`python -m bench.data download nb101-full` for nasbench_full.tfrecord)"
)
NO_PARAMS = -1  # trainable_parameters absent from the record
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_CHUNK = 1 << 23


# ----------------------------------------------------------------------------------------------- errors
class NB101Error(HarnessError):
    """Base of the NAS-Bench-101 table's user-facing errors."""


class NB101FormatError(NB101Error, ValueError):
    """A tfrecord or cache that is corrupt, truncated or not NAS-Bench-101 data."""


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


EVAL_DOUBLES = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
# Canonical serialization of fields 1..5 of EvaluationData: tag byte + little-endian double, in order.
_EVAL_CANON = struct.Struct("<BdBdBdBdBd")
_EVAL_CANON_TAGS = (0x09, 0x11, 0x19, 0x21, 0x29)


class _WireError(ValueError):
    pass


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
            values[EVAL_DOUBLES[number - 1]] = _double(number, wire, value)
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


def final_values(buf: bytes) -> tuple[float, float, float, int]:
    """(validation_accuracy, test_accuracy, training_time, trainable_parameters) at evaluation_data[2].

    The converter's hot path: canonical records (what the official files hold) are read with a few
    index operations and one struct call; anything else goes through the generic decoder. Absent
    accuracies/times read as NaN, absent parameters as -1.
    """
    final, _, params = run_values(buf, halfway=False)
    return (*final, params)


def run_values(
    buf: bytes, *, halfway: bool = True
) -> tuple[tuple[float, float, float], tuple[float, float, float] | None, int]:
    """((valid, test, time) at evaluation_data[2], the same at [1] or None unless `halfway`, params).

    What the converter keeps of one training run; see final_values for the fast path and NaN/-1.
    """
    pos, n, count, final, half, params = 0, len(buf), 0, None, None, NO_PARAMS
    try:
        while pos < n:
            tag = buf[pos]
            if tag == 0x0A and buf[pos + 1] < 0x80:
                start = pos + 2
                pos = start + buf[pos + 1]
                if count == 2:
                    final = buf[start:pos]
                elif count == 1:
                    half = buf[start:pos]
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
        return _run_values_generic(buf, halfway)
    if final is None:
        raise _WireError(f"{count} evaluation_data entries; expected 3 (start, halfway, final)")
    return _eval_values(final), _eval_values(half) if halfway else None, params


def _eval_values(ev: bytes) -> tuple[float, float, float]:
    """(validation_accuracy, test_accuracy, training_time) of one serialized EvaluationData."""
    # The five doubles, optionally followed by a short checkpoint_path: the official files' layout.
    n = len(ev)
    if n == 45 or (n > 46 and ev[45] == 0x32 and ev[46] < 0x80 and n == 47 + ev[46]):
        t1, _, t2, tt, t3, _, t4, va, t5, te = _EVAL_CANON.unpack_from(ev)
        if (t1, t2, t3, t4, t5) == _EVAL_CANON_TAGS:
            return va, te, tt
    return _triple(_decode_eval(ev))


def _triple(ev: EvaluationData) -> tuple[float, float, float]:
    return _nan(ev.validation_accuracy), _nan(ev.test_accuracy), _nan(ev.training_time)


def _run_values_generic(
    buf: bytes, halfway: bool
) -> tuple[tuple[float, float, float], tuple[float, float, float] | None, int]:
    m = decode_model_metrics(buf)
    if len(m.evaluation_data) < 3:
        raise _WireError(f"{len(m.evaluation_data)} evaluation_data entries; expected 3")
    params = NO_PARAMS if m.trainable_parameters is None else m.trainable_parameters
    half = _triple(m.evaluation_data[1]) if halfway else None
    return _triple(m.evaluation_data[2]), half, params


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


# ------------------------------------------------------------------------------------ TFRecord framing
def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C (Castagnoli)."""
    return _mask(google_crc32c.value(bytes(data)))


def corrupt_record(path: Path, index: int, offset: int, problem: str) -> NB101FormatError:
    return NB101FormatError(
        f"{path}: record {index} (byte offset {offset}) {problem}; the file is corrupt or truncated, "
        f"{DOWNLOAD_FIX}"
    )


def iter_frames(path: Path, chunk_size: int = _CHUNK) -> Iterator[tuple[int, int, bytes]]:
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
                raise corrupt_record(path, index, base + pos, "is cut off inside its 12-byte header")
            header = buf[pos:end]
            length = known.get(header)
            if length is None:
                length, stored = struct.unpack("<QI", header)
                if _mask(crc(header[:8])) != stored:
                    raise corrupt_record(path, index, base + pos, "has a bad length-header CRC")
                if len(known) < 4096:
                    known[header] = length
            stop = end + length + 4
            if stop > len(buf):
                if not eof:
                    more = f.read(max(chunk_size, stop - len(buf)))
                    eof = not more
                    buf, base, pos = buf[pos:] + more, base + pos, 0
                    continue
                raise corrupt_record(path, index, base + pos, f"is cut off (needs {length} payload bytes)")
            data = buf[end : stop - 4]
            if _mask(crc(data)) != int.from_bytes(buf[stop - 4 : stop], "little"):
                raise corrupt_record(path, index, base + pos, "has a bad payload CRC")
            yield index, base + pos, data
            pos = stop
            index += 1


def iter_tfrecord(path: str | os.PathLike) -> Iterator[bytes]:
    """The CRC-checked payloads of a TFRecord file, in file order."""
    for _, _, data in iter_frames(Path(path)):
        yield data

"""Writes files in the official NAS-Bench-101 format, for tests and synthetic benchmarks.

Not part of the reader's API (`bench.truth.nb101` and its wire/cache modules only read): the protobuf
encoder, TFRecord framing and record writers here exist so that tests and `python -m bench.perf nb101`
can make small or full-size files that the reader must accept, byte for byte as the official ones are laid
out.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.search.graph import InvalidSpecError, hash_spec, prune
from bench.truth.nb101 import InvalidHashError, hash_key
from bench.truth.nb101_wire import EVAL_DOUBLES, FINAL_EPOCHS, EvaluationData, ModelMetrics, masked_crc32c

__all__ = [
    "NB101Record",
    "encode_model_metrics",
    "encode_payload",
    "frame_record",
    "metrics_from_final",
    "records_for_spec",
    "write_tfrecord",
]


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (negative int32/int64 as their 10-byte two's complement)."""
    if value < 0:  # int32/int64 negatives are 10-byte two's complement varints
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_model_metrics(metrics: ModelMetrics) -> bytes:
    """Serialize like protobuf does (fields in number order, absent fields omitted)."""
    parts = []
    for ev in metrics.evaluation_data:
        body = []
        for number, name in enumerate(EVAL_DOUBLES, start=1):
            v = getattr(ev, name)
            if v is not None:
                body.append(struct.pack("<Bd", number << 3 | 1, v))
        if ev.checkpoint_path is not None:
            raw = ev.checkpoint_path.encode("utf-8")
            body.append(b"\x32" + varint(len(raw)) + raw)
        data = b"".join(body)
        parts.append(b"\x0a" + varint(len(data)) + data)
    if metrics.trainable_parameters is not None:
        parts.append(b"\x10" + varint(int(metrics.trainable_parameters)))
    if metrics.total_time is not None:
        parts.append(struct.pack("<Bd", 0x19, metrics.total_time))
    return b"".join(parts)


def frame_record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    header = struct.pack("<Q", len(data))
    return b"".join(
        (header, struct.pack("<I", masked_crc32c(header)), data, struct.pack("<I", masked_crc32c(data)))
    )


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
    halfway: tuple[float, float] | None = None,
) -> ModelMetrics:
    """ModelMetrics with the given final evaluation; the start/halfway entries carry only epoch and time,
    plus the halfway (validation, test) accuracies when `halfway` is given."""
    half_valid, half_test = halfway if halfway is not None else (None, None)
    return ModelMetrics(
        evaluation_data=(
            EvaluationData(current_epoch=0.0, training_time=0.0),
            EvaluationData(
                current_epoch=epochs / 2,
                training_time=training_time / 2,
                validation_accuracy=half_valid,
                test_accuracy=half_test,
            ),
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
        hash_key(module_hash)  # validates
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

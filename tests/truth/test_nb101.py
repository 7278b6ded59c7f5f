"""The TensorFlow-free NAS-Bench-101 reader, writer, cache and table (all on small files made here)."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.search.graph import InvalidSpecError, clear_hash_cache, hash_pruned, hash_spec, ops_from_labels
from bench.truth import fixtures, nb101, nb101_cache, nb101_wire
from bench.truth.base import GroundTruth
from bench.truth.fixtures import NB101Record
from bench.truth.nb101 import (
    InvalidHashError,
    NB101FileNotFoundError,
    NB101FormatError,
    NB101Table,
    SpecNotInTableError,
)
from bench.truth.nb101_wire import EvaluationData, ModelMetrics

# The one real record of specs/nb101_format.md (a single repeat of it).
REAL_ADJ = "0100110001000000010010000010000001000000010000000"
REAL_OPS = "input,conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv1x1-bn-relu,output".split(
    ","
)
REAL_HASH = "00005c142e6f48ac74fdcf73e3439874"
REAL_MATRIX = np.array([int(c) for c in REAL_ADJ]).reshape(7, 7)
FIX = "python -m bench.data download nb101"
SAMPLE = Path(__file__).parents[1] / "assets" / "nb101_sample_1k.json"

# Small valid specs (input -> ... -> output); NOT from NAS-Bench-101, values below are made up.
CHAIN3 = (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv3x3-bn-relu", "output"])
CHAIN3B = (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "maxpool3x3", "output"])
SKIP2 = (np.array([[0, 1], [0, 0]]), ["input", "output"])


def full_metrics(
    va: float, te: float, tt: float, params: int | None = 1000, tr: float = 0.99
) -> ModelMetrics:
    """All five doubles in every evaluation, like the official files (the reader's fast path)."""
    return ModelMetrics(
        (
            EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1),
            EvaluationData(54.0, tt / 2, tr / 2, va / 2, te / 2),
            EvaluationData(108.0, tt, tr, va, te),
        ),
        params,
        tt,
    )


def records(spec: tuple, values: list[tuple[float, float, float]], epochs: int = 108) -> list[NB101Record]:
    return fixtures.records_for_spec(*spec, [full_metrics(*v) for v in values], epochs=epochs)


@pytest.fixture
def three_specs() -> list[NB101Record]:
    """Three archs, 3 repeats each, records interleaved so repeats are not adjacent in the file."""
    a = records(CHAIN3, [(0.81, 0.80, 100.0), (0.82, 0.79, 101.0), (0.83, 0.78, 102.0)])
    b = records(CHAIN3B, [(0.71, 0.70, 200.0), (0.72, 0.69, 201.0), (0.73, 0.68, 202.0)])
    c = records(SKIP2, [(0.51, 0.50, 10.0), (0.52, 0.49, 11.0), (0.53, 0.48, 12.0)])
    return [r for triple in zip(a, b, c, strict=True) for r in triple]


@pytest.fixture
def small_file(tmp_path, three_specs):
    path = tmp_path / "small.tfrecord"
    assert fixtures.write_tfrecord(path, three_specs) == 9
    return path


def frames(path) -> list[tuple[int, int]]:
    """(offset, payload length) of each record."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        out.append((pos, length))
        pos += 12 + length + 4
    return out


def listing(path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# ----------------------------------------------------------------------------------------- real record
def test_real_record_hash_and_values(tmp_path):
    path = tmp_path / "real.tfrecord"
    metrics = full_metrics(0.9241786599159241, 0.9211738705635071, 1769.1279296875, params=8555530)
    fixtures.write_tfrecord(path, fixtures.records_for_spec(REAL_MATRIX, REAL_OPS, [metrics]))
    payload = json.loads(next(nb101_wire.iter_tfrecord(path)))
    assert payload[:4] == [REAL_HASH, 108, REAL_ADJ, ",".join(REAL_OPS)]

    table = NB101Table.load(path)
    r = table.query(REAL_MATRIX, REAL_OPS)
    assert r.arch_hash == REAL_HASH
    assert r.valid_acc == (0.9241786599159241,)
    assert r.test_acc == (0.9211738705635071,)
    assert r.train_time == (1769.1279296875,)
    assert r.params == 8555530
    assert table.query_hash(REAL_HASH) == r
    matrix, ops = table.spec(REAL_HASH)
    assert matrix.tolist() == REAL_MATRIX.tolist() and ops == REAL_OPS
    assert nb101.hash_spec(matrix, ops) == REAL_HASH


def test_generic_metrics_layout_reads_the_same(tmp_path):
    """metrics_from_final leaves fields out, so the reader's generic protobuf path is used."""
    path = tmp_path / "g.tfrecord"
    m = fixtures.metrics_from_final(0.9241786599159241, 0.9211738705635071, 1769.1279296875, 8555530)
    fixtures.write_tfrecord(path, fixtures.records_for_spec(REAL_MATRIX, REAL_OPS, [m]))
    r = NB101Table.load(path).query_hash(REAL_HASH)
    assert (r.valid_acc, r.test_acc, r.train_time, r.params) == (
        (0.9241786599159241,),
        (0.9211738705635071,),
        (1769.1279296875,),
        8555530,
    )


# --------------------------------------------------------------------------------- round trip / repeats
def test_round_trip_three_repeats_in_file_order(small_file):
    table = NB101Table.load(small_file)
    assert len(table) == 3 and table.name == "nb101"
    assert isinstance(table, GroundTruth)
    r = table.query(*CHAIN3)
    assert r.valid_acc == (0.81, 0.82, 0.83)
    assert r.test_acc == (0.80, 0.79, 0.78)
    assert r.train_time == (100.0, 101.0, 102.0)
    assert r.params == 1000
    assert r.test_acc_mean == pytest.approx(0.79)
    assert table.query(*SKIP2).valid_acc == (0.51, 0.52, 0.53)
    for matrix, ops in (CHAIN3, CHAIN3B, SKIP2):  # the stored (pruned) spec comes back exactly
        stored = table.spec(nb101.hash_spec(matrix, ops))
        assert stored[0].tolist() == matrix.tolist() and stored[1] == ops
    # Deterministic: a second load (from the cache) answers identically.
    assert NB101Table.load(small_file).query(*CHAIN3) == r


def test_query_prunes_raw_specs(small_file):
    table = NB101Table.load(small_file)
    # CHAIN3 plus a dangling vertex that NB-101 pruning removes.
    raw = np.zeros((4, 4), dtype=int)
    raw[0, 1] = raw[1, 3] = raw[0, 2] = 1
    ops = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "output"]
    assert table.query(raw, ops).arch_hash == table.query(*CHAIN3).arch_hash


def test_batched_queries(small_file):
    table = NB101Table.load(small_file)
    hashes = table.hashes()
    assert hashes == sorted(hashes) and len(hashes) == 3
    batch = table.query_hashes([hashes[2], hashes[0], hashes[2]])
    assert batch.rows.tolist() == [2, 0, 2]
    assert batch.valid_acc.shape == (3, 3)
    for j, h in enumerate([hashes[2], hashes[0]]):
        assert tuple(batch.valid_acc[j]) == table.query_hash(h).valid_acc
    missing = "f" * 32
    assert table.rows([hashes[1], missing], missing="ignore").tolist() == [1, -1]
    with pytest.raises(SpecNotInTableError, match=missing):
        table.query_hashes([missing])
    with pytest.raises(InvalidHashError):
        table.rows(["abc"])
    with pytest.raises(InvalidHashError):
        table.rows(["z" * 32])
    assert hashes[0] in table and hashes[0].upper() in table
    assert missing not in table and "nothex" not in table and 42 not in table


def test_spec_not_in_table(small_file):
    table = NB101Table.load(small_file)
    with pytest.raises(SpecNotInTableError) as info:
        table.query(REAL_MATRIX, REAL_OPS)
    assert isinstance(info.value, KeyError)
    msg = str(info.value)
    assert REAL_HASH in msg and FIX in msg and "\n" not in msg and not msg.startswith("'")
    with pytest.raises(SpecNotInTableError):
        table.query_hash(REAL_HASH)


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        (np.zeros((3, 3), dtype=int), ["input", "conv3x3-bn-relu", "output"], "not reachable"),
        (np.triu(np.ones((7, 7), dtype=int), 1), ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"], "edges"),
        (np.eye(8, k=1, dtype=int), ["input"] + ["maxpool3x3"] * 6 + ["output"], "vertices"),
        (np.array([[0, 1], [0, 0]]), ["input", "bogus"], "start with 'input'"),
        (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv5x5", "output"], "unknown op"),
        (np.array([[0, 1], [1, 0]]), ["input", "output"], "upper triangular"),
    ],
)
def test_invalid_specs(small_file, matrix, ops, match):
    with pytest.raises(InvalidSpecError, match=match):
        NB101Table.load(small_file).query(matrix, ops)


def test_invalid_hash_argument(small_file):
    with pytest.raises(InvalidHashError, match="32-hex-digit"):
        NB101Table.load(small_file).query_hash("not-a-hash")


# ---------------------------------------------------------------------------------- corrupt / truncated
def test_empty_file(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    with pytest.raises(NB101FormatError, match="empty") as info:
        NB101Table.load(path)
    assert FIX in str(info.value)


@pytest.mark.parametrize("cut", [1, 4, 10, 200])
def test_truncated_file(small_file, cut):
    offsets = frames(small_file)
    data = small_file.read_bytes()
    small_file.write_bytes(data[:-cut])
    last = len(offsets) - 1
    with pytest.raises(NB101FormatError, match=f"record {last} ") as info:
        NB101Table.load(small_file)
    assert "cut off" in str(info.value) and FIX in str(info.value)


def test_truncated_inside_header(small_file):
    offsets = frames(small_file)
    small_file.write_bytes(small_file.read_bytes()[: offsets[4][0] + 5])
    with pytest.raises(NB101FormatError, match="record 4 .*header"):
        NB101Table.load(small_file)


def test_flipped_payload_byte(small_file):
    offset, length = frames(small_file)[5]
    data = bytearray(small_file.read_bytes())
    data[offset + 12 + length // 2] ^= 0x01
    small_file.write_bytes(bytes(data))
    with pytest.raises(NB101FormatError, match=rf"record 5 \(byte offset {offset}\).*payload CRC") as info:
        NB101Table.load(small_file)
    assert FIX in str(info.value)


@pytest.mark.parametrize(("where", "what"), [("length", "length-header CRC"), ("crc", "payload CRC")])
def test_wrong_crc(small_file, where, what):
    offset, length = frames(small_file)[2]
    data = bytearray(small_file.read_bytes())
    pos = offset + 8 if where == "length" else offset + 12 + length  # the stored CRC fields
    data[pos] ^= 0xFF
    small_file.write_bytes(bytes(data))
    with pytest.raises(NB101FormatError, match=f"record 2 .*{what}"):
        NB101Table.load(small_file)


def test_flipped_length_byte(small_file):
    offset, _ = frames(small_file)[0]
    data = bytearray(small_file.read_bytes())
    data[offset + 1] ^= 0x10
    small_file.write_bytes(bytes(data))
    with pytest.raises(NB101FormatError, match="record 0 .*length-header CRC"):
        NB101Table.load(small_file)


def test_malformed_payload_with_valid_crc(tmp_path):
    path = tmp_path / "bad.tfrecord"
    good = fixtures.encode_payload(records(CHAIN3, [(0.8, 0.8, 1.0)])[0])
    path.write_bytes(fixtures.frame_record(good) + fixtures.frame_record(b'["abc", 108]'))
    with pytest.raises(NB101FormatError, match="record 1 .*malformed payload"):
        NB101Table.load(path)


def test_repeats_disagreeing_on_spec(tmp_path):
    path = tmp_path / "x.tfrecord"
    h = nb101.hash_spec(*CHAIN3)
    recs = [
        NB101Record(CHAIN3[0], tuple(CHAIN3[1]), full_metrics(0.8, 0.8, 1.0), module_hash=h),
        NB101Record(CHAIN3B[0], tuple(CHAIN3B[1]), full_metrics(0.8, 0.8, 1.0), module_hash=h),
    ]
    fixtures.write_tfrecord(path, recs)
    with pytest.raises(NB101FormatError, match="record 1 gives hash"):
        NB101Table.load(path)


# ---------------------------------------------------------------------------------------- full format
def test_full_format_keeps_only_108_epochs(tmp_path):
    path = tmp_path / "nasbench_full.tfrecord"
    recs = []
    for epochs in (4, 12, 36, 108):
        v = epochs / 1000
        recs += records(CHAIN3, [(v, v, float(epochs))] * 3, epochs=epochs)
        recs += records(SKIP2, [(v + 0.5, v, 1.0)] * 3, epochs=epochs)
    recs += records(CHAIN3B, [(0.3, 0.3, 3.0)] * 3, epochs=36)  # only below 108: not in the table
    fixtures.write_tfrecord(path, recs)
    table = NB101Table.load(path)
    assert len(table) == 2
    assert table.query(*CHAIN3).valid_acc == (0.108,) * 3
    assert table.query(*CHAIN3).train_time == (108.0,) * 3
    assert table.meta["records"] == len(recs) and table.meta["records_108"] == 6
    with pytest.raises(SpecNotInTableError):
        table.query(*CHAIN3B)


def test_no_108_epoch_rows(tmp_path):
    path = tmp_path / "x.tfrecord"
    fixtures.write_tfrecord(path, records(CHAIN3, [(0.1, 0.1, 1.0)], epochs=4))
    with pytest.raises(NB101FormatError, match="none at 108 epochs"):
        NB101Table.load(path)


# ---------------------------------------------------------------------------------------------- cache
def test_cache_reused_without_parsing(small_file, monkeypatch):
    first = NB101Table.load(small_file)
    cache = nb101.cache_path_for(small_file)
    assert cache.name == "small.nb101cache.npz" and cache.exists()
    assert listing(small_file) == ["small.nb101cache.npz", "small.tfrecord"]

    def boom(*a, **k):
        raise AssertionError("the tfrecord was parsed again")

    monkeypatch.setattr(nb101_cache, "iter_frames", boom)
    second = NB101Table.load(small_file)
    assert second.source == cache
    assert second.query(*CHAIN3) == first.query(*CHAIN3)
    # The cache can be loaded directly, and stands in for a deleted tfrecord.
    assert len(NB101Table.load(cache)) == 3
    small_file.unlink()
    assert len(NB101Table.load(small_file)) == 3


def test_stale_cache_is_rebuilt(small_file, tmp_path):
    NB101Table.load(small_file)
    fixtures.write_tfrecord(small_file, records(SKIP2, [(0.5, 0.5, 1.0)]))
    st = small_file.stat()
    os.utime(small_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    table = NB101Table.load(small_file)
    assert len(table) == 1 and table.source == small_file
    assert len(NB101Table.load(nb101.cache_path_for(small_file))) == 1


def test_unreadable_cache_beside_tfrecord_is_rebuilt(small_file, caplog):
    NB101Table.load(small_file)
    cache = nb101.cache_path_for(small_file)
    cache.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="bench.truth.nb101"):
        assert len(NB101Table.load(small_file)) == 3
    assert "unreadable cache" in caplog.text
    assert len(NB101Table.load(cache)) == 3


def test_truncated_cache(small_file):
    NB101Table.load(small_file)
    cache = nb101.cache_path_for(small_file)
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    with pytest.raises(NB101FormatError, match="not a usable NB-101 cache"):
        NB101Table.load(cache)
    assert len(NB101Table.load(small_file)) == 3  # beside the tfrecord: rebuilt
    assert len(NB101Table.load(cache)) == 3


def test_corrupt_cache_given_directly(tmp_path):
    cache = tmp_path / "x.nb101cache.npz"
    cache.write_bytes(b"PK garbage")
    with pytest.raises(NB101FormatError, match="not a usable NB-101 cache") as info:
        NB101Table.load(cache)
    assert FIX in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(NB101FileNotFoundError, match=FIX):
        NB101Table.load(tmp_path / "nasbench_only108.tfrecord")
    with pytest.raises(FileNotFoundError):
        NB101Table.load(tmp_path / "x.nb101cache.npz")


def test_no_partial_cache_after_failed_parse(small_file):
    offset, length = frames(small_file)[7]
    data = bytearray(small_file.read_bytes())
    data[offset + 20] ^= 0x04
    small_file.write_bytes(bytes(data))
    with pytest.raises(NB101FormatError, match="record 7"):
        NB101Table.load(small_file)
    assert listing(small_file) == ["small.tfrecord"]


def test_no_partial_cache_after_failed_write(small_file, monkeypatch, caplog):
    real_savez = np.savez

    def half_then_fail(f, **arrays):
        real_savez(f, **arrays)
        f.truncate(100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nb101_cache.np, "savez", half_then_fail)
    with caplog.at_level(logging.WARNING, logger="bench.truth.nb101"):
        table = NB101Table.load(small_file)  # the table still works, only uncached
    assert len(table) == 3 and "could not write the cache" in caplog.text
    assert listing(small_file) == ["small.tfrecord"]


# -------------------------------------------------------------------------------------------- protobuf
def test_model_metrics_round_trip():
    m = ModelMetrics(
        (
            EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1, "gs://bucket/ckpt-0"),
            EvaluationData(current_epoch=54.0, test_accuracy=0.5),
            EvaluationData(108.0, 1769.1279296875, 1.0, 0.9241786599159241, 0.9211738705635071),
        ),
        trainable_parameters=-5,  # int32 negatives are 10-byte varints
        total_time=1800.5,
    )
    buf = fixtures.encode_model_metrics(m)
    assert nb101_wire.decode_model_metrics(buf) == m
    assert nb101_wire.final_values(buf) == (0.9241786599159241, 0.9211738705635071, 1769.1279296875, -5)
    # An unknown field (number 15, varint) is skipped as proto2 does.
    assert nb101_wire.decode_model_metrics(buf + b"\x78\x01") == m
    assert nb101_wire.final_values(buf + b"\x78\x01")[0] == 0.9241786599159241


def test_final_values_missing_fields_and_checkpoint():
    with_ckpt = ModelMetrics((EvaluationData(),) * 2 + (EvaluationData(108.0, 5.0, 1.0, 0.7, 0.6, "ck"),), 7)
    assert nb101_wire.final_values(fixtures.encode_model_metrics(with_ckpt)) == (0.7, 0.6, 5.0, 7)
    sparse = ModelMetrics((EvaluationData(),) * 3)
    va, te, tt, p = nb101_wire.final_values(fixtures.encode_model_metrics(sparse))
    assert math.isnan(va) and math.isnan(te) and math.isnan(tt) and p == -1
    with pytest.raises(ValueError, match="evaluation_data"):
        nb101_wire.final_values(fixtures.encode_model_metrics(ModelMetrics((EvaluationData(),))))
    with pytest.raises(ValueError):
        nb101_wire.final_values(fixtures.encode_model_metrics(with_ckpt)[:-3])


def test_missing_params_read_as_none(tmp_path):
    path = tmp_path / "x.tfrecord"
    fixtures.write_tfrecord(path, records(CHAIN3, [(0.8, 0.7, 1.0, None)]))
    assert NB101Table.load(path).query(*CHAIN3).params is None


def test_masked_crc_known_value():
    # CRC-32C("123456789") = 0xE3069283 (the standard check value), masked as TFRecord does.
    c = 0xE3069283
    assert nb101_wire.masked_crc32c(b"123456789") == ((((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_best_test_error_comes_from_the_space():
    pytest.importorskip("torch")
    from bench.search.spaces import SearchSpace

    table = NB101Table({k: v for k, v in _tiny_arrays().items()})
    assert table.best_test_error(1) == SearchSpace(1).best_test_error


def _tiny_arrays(hashes: tuple[str, ...] = (REAL_HASH,)) -> dict[str, np.ndarray]:
    n = len(hashes)
    return {
        "hashes": np.frombuffer(bytes.fromhex("".join(hashes)), dtype="S16"),
        "valid_acc": np.arange(n, dtype=float)[:, None] / 10,
        "test_acc": np.full((n, 1), 0.9),
        "train_time": np.ones((n, 1)),
        "n_repeats": np.ones(n, dtype=np.int8),
        "params": np.ones(n, dtype=np.int64),
        "adjacency": np.zeros(n, dtype=np.uint64),
        "num_vertices": np.full(n, 7, dtype=np.int8),
        "ops": np.zeros((n, 7), dtype=np.int8),
    }


def test_hashes_sharing_their_first_eight_bytes():
    """Never seen in NB-101, but lookups must stay exact if two hashes share a prefix."""
    a, b, c = "0" * 15 + "1" + "a" * 16, "0" * 15 + "1" + "b" * 16, "0" * 15 + "2" + "0" * 16
    table = NB101Table(_tiny_arrays((a, b, c)))
    assert [table.query_hash(h).valid_acc for h in (a, b, c)] == [(0.0,), (0.1,), (0.2,)]
    assert table.rows([c, b, a]).tolist() == [2, 1, 0]
    missing = "0" * 15 + "1" + "c" * 16
    assert missing not in table and a in table
    assert table.rows([missing], missing="ignore").tolist() == [-1]


def test_unsorted_arrays_rejected():
    with pytest.raises(ValueError, match="sorted"):
        NB101Table(_tiny_arrays(("1" * 32, "0" * 32)))


# ------------------------------------------------------------------------------------ stored-spec index
@pytest.fixture(scope="module")
def sample_specs() -> list[tuple[np.ndarray, list[str], str]]:
    """The 1,000 real NB-101 specs of the sample: (pruned matrix, ops, module hash)."""
    data = json.loads(SAMPLE.read_text())
    out = []
    for adjacency, labels, key in zip(data["adjacency"], data["operations"], data["key"], strict=True):
        ops = ops_from_labels(labels)
        out.append((np.array(adjacency, dtype=np.int8)[: len(ops), : len(ops)], ops, key))
    return out


@pytest.fixture(scope="module")
def sample_table(tmp_path_factory, sample_specs) -> NB101Table:
    """The sample's specs with their real 108-epoch validation accuracy (one repeat each; the sample
    has no test accuracy, so that field is absent and reads as NaN), written by our own writer."""
    data = json.loads(SAMPLE.read_text())
    path = tmp_path_factory.mktemp("sample") / "sample.tfrecord"
    recs = []
    for (matrix, ops, _), va, tt, params in zip(
        sample_specs,
        data["108_final_validation_accuracy"],
        data["final_training_time"],
        data["trainable_parameters"],
        strict=True,
    ):
        metrics = fixtures.metrics_from_final(va, None, tt, int(params))
        recs += fixtures.records_for_spec(matrix, ops, [metrics])
    fixtures.write_tfrecord(path, recs)
    return NB101Table.load(path)


def vertex_orders(matrix: np.ndarray, ops: list[str]) -> list[tuple[np.ndarray, list[str]]]:
    """The spec renumbered in every order that keeps it upper-triangular (the stored order included)."""
    n = len(ops)
    edges = [(u, v) for u in range(n) for v in range(n) if matrix[u, v]]
    out = []
    for interior in itertools.permutations(range(1, n - 1)):
        order = (0, *interior, n - 1)
        pos = {v: p for p, v in enumerate(order)}
        if all(pos[u] < pos[v] for u, v in edges):
            out.append((matrix[np.ix_(order, order)], [ops[v] for v in order]))
    return out


def without_index(table: NB101Table) -> NB101Table:
    """The same table answering every spec query by hashing (as before the index)."""
    arrays, meta = nb101_cache.read_cache(nb101.cache_path_for(table.source))
    for name in nb101_cache.SPEC_ARRAYS:
        del arrays[name]
    return NB101Table(arrays, meta)


def test_index_answers_every_vertex_order_exactly(sample_table, sample_specs):
    """Every upper-triangular order of 1,000 real specs (3,105 queries) is answered from the index,
    with exactly the row the hash path gives."""
    hashed = without_index(sample_table)
    clear_hash_cache()
    n = 0
    for matrix, ops, key in sample_specs:
        for m, o in vertex_orders(matrix, ops):
            assert sample_table.indexed_row(m, o) >= 0
            r = sample_table.query(m, o)
            assert r.arch_hash == key == hash_spec(m, o)
            h = hashed.query(m, o)
            assert (r.arch_hash, r.valid_acc, r.train_time, r.params) == (
                h.arch_hash,
                h.valid_acc,
                h.train_time,
                h.params,
            )
            n += 1
    assert n == 3105 and sample_table.spec_index_size == 2877  # distinct labelled forms (automorphisms)


def test_index_holds_the_stored_specs(sample_table, sample_specs):
    for matrix, ops, key in sample_specs[:200]:
        stored = sample_table.spec(key)
        assert stored[0].tolist() == matrix.tolist() and stored[1] == ops
        assert sample_table.hashes()[sample_table.indexed_row(*stored)] == key


def test_index_with_dead_ends_and_list_input(sample_table, sample_specs):
    """Raw 7x7 specs whose extra vertex pruning removes, given as nested lists."""
    for matrix, ops, key in sample_specs[:100]:
        n = len(ops)
        if n == 7:
            continue
        raw = np.zeros((n + 1, n + 1), dtype=int)
        raw[:n, :n] = matrix
        raw[:, [n - 1, n]] = raw[:, [n, n - 1]]  # the output moves to the end...
        raw[[n - 1, n]] = raw[[n, n - 1]]
        raw[0, n - 1] = 1  # ...and vertex n-1 is a dead end from the input
        raw_ops = [*ops[:-1], "maxpool3x3", "output"]
        assert sample_table.query(raw.tolist(), raw_ops).arch_hash == key


def test_spec_not_in_index_nor_table(sample_table):
    assert sample_table.indexed_row(*CHAIN3) == -1
    with pytest.raises(SpecNotInTableError, match=nb101.hash_spec(*CHAIN3)) as info:
        sample_table.query(*CHAIN3)
    assert FIX in str(info.value)


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        (np.zeros((3, 3), dtype=int), ["input", "conv3x3-bn-relu", "output"], "not reachable"),
        (np.eye(8, k=1, dtype=int), ["input"] + ["maxpool3x3"] * 6 + ["output"], "vertices"),
        (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv5x5", "output"], "unknown op"),
        (np.array([[0, 1], [1, 0]]), ["input", "output"], "upper triangular"),
    ],
)
def test_invalid_specs_with_index(sample_table, matrix, ops, match):
    with pytest.raises(InvalidSpecError, match=match):
        sample_table.query(matrix, ops)


def test_over_budget_spec_raises_even_when_stored(tmp_path):
    """A synthetic row storing an over-budget spec under its own hash is indexed, but a query for that
    spec must still raise InvalidSpecError, as hash_spec does."""
    full = np.triu(np.ones((7, 7), dtype=int), 1)
    ops = ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"]
    h = hash_pruned(full, ops)
    path = tmp_path / "x.tfrecord"
    fixtures.write_tfrecord(path, [NB101Record(full, tuple(ops), full_metrics(0.5, 0.5, 1.0), module_hash=h)])
    table = NB101Table.load(path)
    assert table.spec_index_size == 1 and table.query_hash(h).valid_acc == (0.5,)
    with pytest.raises(InvalidSpecError, match="edges"):
        table.query(full, ops)


def test_rows_whose_hash_is_not_their_spec_are_not_indexed(tmp_path, caplog):
    """Synthetic files may store a spec under a hash that is not its own: such rows are found by hash
    only, so a query by spec answers what hashing answers."""
    fake_a, fake_b = "a" * 32, "b" * 32
    path = tmp_path / "x.tfrecord"
    recs = [
        *records(CHAIN3, [(0.8, 0.8, 1.0)]),  # a real row, its twin with a made-up hash, and another
        NB101Record(CHAIN3[0], tuple(CHAIN3[1]), full_metrics(0.1, 0.1, 1.0), module_hash=fake_a),
        NB101Record(CHAIN3B[0], tuple(CHAIN3B[1]), full_metrics(0.2, 0.2, 1.0), module_hash=fake_b),
    ]
    fixtures.write_tfrecord(path, recs)
    with caplog.at_level(logging.WARNING, logger="bench.truth.nb101_cache"):
        table = NB101Table.load(path)
    assert "does not hash to their module hash" in caplog.text
    row = table.rows([nb101.hash_spec(*CHAIN3)]).item()
    assert table.spec_index_size == 1 and table.indexed_row(*CHAIN3) == row
    assert table.query(*CHAIN3).valid_acc == (0.8,)
    with pytest.raises(SpecNotInTableError):
        table.query(*CHAIN3B)  # its row claims another hash
    assert table.query_hash(fake_b).valid_acc == (0.2,)


def test_old_version_cache_is_rebuilt(small_file, caplog):
    NB101Table.load(small_file)
    cache = nb101.cache_path_for(small_file)
    arrays, meta = nb101_cache.read_cache(cache)
    for name in nb101_cache.SPEC_ARRAYS:
        del arrays[name]
    st = cache.stat()
    nb101_cache.write_cache(cache, arrays, {**meta, "version": 1})  # what was written before the index
    with pytest.raises(NB101FormatError, match="cache version 1, expected 2"):
        NB101Table.load(cache)
    with caplog.at_level(logging.WARNING, logger="bench.truth.nb101"):
        table = NB101Table.load(small_file)
    assert "outdated (cache version 1, expected 2)" in caplog.text and table.source == small_file
    rebuilt = NB101Table.load(cache)
    assert rebuilt.meta["version"] == nb101_cache.CACHE_VERSION == 2
    assert cache.stat().st_mtime_ns >= st.st_mtime_ns
    assert rebuilt.spec_index_size == 3 and rebuilt.indexed_row(*CHAIN3) >= 0
    assert rebuilt.query(*CHAIN3).valid_acc == (0.81, 0.82, 0.83)


def test_malformed_index_rejected(small_file):
    NB101Table.load(small_file)
    cache = nb101.cache_path_for(small_file)
    arrays, meta = nb101_cache.read_cache(cache)
    arrays["spec_keys"] = arrays["spec_keys"][::-1].copy()
    nb101_cache.write_cache(cache, arrays, meta)
    with pytest.raises(NB101FormatError, match="stored-spec index"):
        NB101Table.load(cache)
    assert NB101Table.load(small_file).spec_index_size == 3  # beside the tfrecord: rebuilt


# ------------------------------------------------------------------------------------------- benchmark
def test_benchmark_smoke(tmp_path, capsys):
    from bench.perf.__main__ import main

    assert (
        main(["nb101", "--n-archs", "300", "--n-real", "60", "--load-tries", "1", "--dir", str(tmp_path)])
        == 0
    )
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "overall (wall clock):" in out
    for row in ("(a) spec lookups/s, stored", "(b) spec lookups/s, other", "(c) spec lookups/s, hash path"):
        assert row in out
    assert "index padded" in out
    assert (tmp_path / "SYNTHETIC_nasbench_only108.nb101cache.npz").exists()


def test_benchmark_dispatcher_unknown_name(capsys):
    from bench.perf.__main__ import main

    assert main(["no-such-benchmark"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'no-such-benchmark'" in err and "nb101" in err and err.count("\n") == 1

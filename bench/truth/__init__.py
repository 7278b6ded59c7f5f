"""Ground-truth tables behind one interface (`base.GroundTruth`): NAS-Bench-101 and the embedded digits
benchmark. They know the search spaces' cells, never the optimizers or the runs.

- `nb101` (the table) < `nb101_cache` (conversion, stored-spec index, cache files) < `nb101_wire`
  (TFRecord framing, CRC-32C, protobuf decoding): the TensorFlow-free NAS-Bench-101 reader.
- `digits` (the table) < `digits_store` (SQLite cache, claims, shipped tables) < `digits_protocol`
  (how one repeat is trained); the digits data itself is `bench.data.digits`.
- `tabulate`: filling a lazily tabulated space, judging a protocol.
- `fixtures`: writers of the official NB-101 format for tests and synthetic benchmarks (not reader API).

May import: bench.errors, bench.search, bench.data (the digits images).
"""

"""NAS-Bench-101's full table (`nasbench_full.tfrecord`): every budget (108, 4, 12, 36 epochs) x 3
repeats, with each run's final AND halfway evaluation.

Read by the same wire and cache code as the 108-epoch table (`bench.truth.nb101`); only what differs is
set here. The 5 million records are converted once into a directory of `.npy` columns beside the file
(`nasbench_full.nb101cache/`, ~0.4 GB), which loading memory-maps: a load reads the hash and spec-index
columns, and a query the few pages of its row.

    table = NB101FullTable.load("nasbench_full.tfrecord")
    table.query(matrix, ops)                   # 108 epochs, final evaluation (the standard budget)
    table.query(matrix, ops, budget=12)        # 12 epochs
    table.query_halfway(matrix, ops, budget=36)  # at epoch 18 of the 36-epoch runs
    table.query_hash(h, 4, halfway=True)
"""

from __future__ import annotations

from bench.truth.nb101 import NB101Table

__all__ = ["FULL_BUDGETS", "NB101FullTable"]

# 108 first: the standard budget a query without one gets, as in the 108-epoch table.
FULL_BUDGETS = (108, 4, 12, 36)


class NB101FullTable(NB101Table):
    """The full NAS-Bench-101 table: all four budgets, final and halfway metrics."""

    name = "nb101-full"
    budgets = FULL_BUDGETS
    keeps_halfway = True
    official_file = "nasbench_full.tfrecord"
    download_command = "python -m bench.data download nb101-full"
    cache_suffix = ".nb101cache"  # a directory: memory-mapped columns

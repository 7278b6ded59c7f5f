"""`python -m tests.runs.fixture_cli ARGS`: bench.run's CLI on the fixture table and toy data.

For tests that need a real separate process (SIGKILL, parallel workers) but not real benchmarks.
"""

from __future__ import annotations

import sys

import torch

from bench import run
from bench.runs import parts
from tests.helpers import FixtureTable, make_toy_data


def fixture_table(benchmark: str, paths: object) -> FixtureTable:
    return FixtureTable()


def toy_data(cfg: object, paths: object) -> object:
    return make_toy_data()


def main(argv: list[str]) -> int:
    """Also called in-process by tests: the real table and data loaders are put back afterwards, so a
    later test in the same process that runs on a real table gets it."""
    torch.set_num_threads(1)  # bit-identical to the in-process tests
    real = parts.open_table, parts.load_data
    parts.open_table, parts.load_data = fixture_table, toy_data
    try:
        return run.main(argv)
    finally:
        parts.open_table, parts.load_data = real


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

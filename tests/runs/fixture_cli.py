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
    torch.set_num_threads(1)  # bit-identical to the in-process tests
    parts.open_table = fixture_table
    parts.load_data = toy_data
    return run.main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

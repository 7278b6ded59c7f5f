"""Shared fixtures: a labelled fixture ground truth and tiny search data, so trainer tests stay fast."""

from __future__ import annotations

import pytest
import torch

from bench.data.splits import SearchData
from tests.helpers import FixtureTable, make_toy_data

# Tiny tensors: one intra-op thread avoids OpenMP spin-wait overhead that dominates on 2 busy cores.
torch.set_num_threads(1)


@pytest.fixture
def fixture_table() -> FixtureTable:
    return FixtureTable()


@pytest.fixture(scope="session")
def toy_data() -> SearchData:
    return make_toy_data()


@pytest.fixture
def fixture_cli(monkeypatch, toy_data):
    """The CLI with the fixture table and toy data instead of the digits benchmark (fast)."""
    from bench.runs import parts

    table = FixtureTable()
    monkeypatch.setattr(parts, "open_table", lambda benchmark, paths: table)
    monkeypatch.setattr(parts, "load_data", lambda cfg, paths: toy_data)
    return table

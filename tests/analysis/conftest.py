"""The analysis tests' fixtures (a synthetic results grid written once per session)."""

from tests.analysis.fixtures import grid, grid_results, stub_savefig

__all__ = ["grid", "grid_results", "stub_savefig"]

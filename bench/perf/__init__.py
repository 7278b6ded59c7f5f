"""Benchmarks of the harness's hot paths: `python -m bench.perf NAME [args]` runs bench/perf/NAME.py."""

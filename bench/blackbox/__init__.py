"""Black-box NAS baselines on a tabular benchmark (NAS-Bench-1Shot1's other optimizers): random search,
regularized evolution, TPE, Hyperband and BOHB over the table's epoch budgets, and a BOHB-style method
over training repeats for tables of one budget, each querying a ground-truth table over a search space's
architectures on a simulated clock.

- `encoding`: a space's architectures as categorical parameters, sampling and RE's mutation;
- `oracle`: the table as the NB-101 API answers it (one repeat per query, at a budget), the clock, the
  incumbent;
- `methods`: the methods, registered by name in `METHODS`;
- `records`: run directories and the columns of queries.csv;
- `runs`: one run's settings, execution and resume; `cli`: `python -m bench.blackbox`.

May import: bench.errors, bench.settings, bench.results (run paths, atomic writes, status.json),
bench.search, bench.truth and bench.benchmarks; cli.py, its face, also bench.cli_helpers and
bench.runs.parts (to open the table as a search does).
"""

"""Running searches: configuration, building a run's parts, the trainer, executors, restore.

May import: bench.errors, bench.settings, bench.results (what a run writes), bench.search, bench.data,
optimizers, bench.truth and bench.benchmarks; never bench.blackbox, analysis or a command-line face.
"""

"""Data: downloads with checksums, the CIFAR-10 and digits loaders, and the search-data splits.

Nothing here knows about search spaces, ground-truth tables or runs. `python -m bench.data` is the
download command (cli.py).

May import: bench.errors. Its command-line face cli.py is a layer of its own above bench.truth (it
converts the NAS-Bench-101 file).
"""

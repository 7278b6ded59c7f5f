"""The harness. Subpackages by layer, each importing only those listed before it:

- `search/`: spaces, NB-101 graph hashing, supernet, Hessian (no I/O);
- `data/`: downloads, CIFAR-10 and digits loaders, search-data splits;
- `truth/`: ground-truth tables (NAS-Bench-101, embedded digits) behind one interface;
- `runs/`: configuration, building a run, the trainer, executors, results, restore.

The modules at this level are the command-line faces: `run`, `tabulate`, `spaces`, `perf`, and
`python -m bench.data`.
"""

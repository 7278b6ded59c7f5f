"""The harness. Subpackages by layer, each importing only those listed before it:

- `search/`: spaces, NB-101 graph hashing, supernet, Hessian (no I/O);
- `data/`: downloads, CIFAR-10 and digits loaders, search-data splits;
- `truth/`: ground-truth tables (NAS-Bench-101, embedded digits) behind one interface;
- `results/`: the results directory (run paths, the epochs.csv schema and reader, atomic writes,
  status.json), below everything that writes or reads runs; imports nothing above `errors`/`settings`;
- `runs/`: configuration, building a run, the trainer, executors, restore, hyperparameter
  optimization (`hpo`);
- `blackbox/`: black-box NAS baselines on a ground-truth table (above `truth`, beside `runs`: it uses only
  `results`' file conventions); `python -m bench.blackbox`.

The modules at this level are the command-line faces: `run`, `hpo`, `tabulate`, `spaces`, `perf`, and
`python -m bench.data` / `python -m bench.blackbox`.
"""

"""How much of the paper protocol's epoch-to-epoch eigenvalue scatter on digits is the Hessian's batch.

    python docs/figures-and-tables/hessian_batch_noise.py RUN_DIR [RUN_DIR ...] [--draws 20]

For each finished run (its checkpoint restored with bench.runs.restore.load_run), the dominant eigenvalue
is measured exactly as the trainer measures it (bench.runs.trainer.measure_hessian, the run's own
settings, BN statistics restored afterwards) on `--draws` random batches of the validation half of each
size: the 14-image remainder the paper protocol's `hessian_batch=last` hands it on digits (494 images,
batch 96), and full 96-image batches. Same weights, same alphas: only the batch differs. Prints the mean,
std and coefficient of variation per size.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from bench.runs.restore import load_run
from bench.runs.trainer import measure_hessian


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--sizes", default="14,96")
    args = p.parse_args()
    torch.set_num_threads(1)
    for run_dir in args.runs:
        run = load_run(run_dir, device="cpu")
        cfg = dataclasses.replace(run.cfg, hessian_restore_bn=True)  # leave the restored model as it was
        x, y = run.data.x_valid, run.data.y_valid
        rng = np.random.default_rng(0)
        line = [f"{run.cfg.optimizer} space {run.cfg.space} seed {run.cfg.seed} (epoch {run.epoch})"]
        for size in (int(s) for s in args.sizes.split(",")):
            eig = []
            for _ in range(args.draws):
                idx = torch.as_tensor(rng.choice(len(y), size=size, replace=False))
                eig.append(abs(measure_hessian(cfg, run.plugin, (x[idx], y[idx])).eigenvalue))
            e = np.array(eig)
            sd = e.std(ddof=1)
            line.append(f"batch {size}: |lambda_max| mean {e.mean():.3f} std {sd:.3f} CV {sd / e.mean():.2f}")
        print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()

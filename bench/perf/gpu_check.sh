#!/usr/bin/env bash
# The GPU check behind the README's GPU numbers, sized to fit a 10-minute slot on one GPU:
#   1. the CUDA tests (skipped on CPU machines),
#   2. the quick preset (DARTS, space 1, seed 0) twice at once on the GPU: both epochs.csv must agree
#      apart from the timing columns (deterministic cuDNN), and the wall time of one run,
#   3. the Hessian, supernet and optimizer benchmarks on the GPU,
#   4. the paper protocol's cost (bench.perf protocol, space 1 timed; its JSON in LOG_DIR).
# Usage: bash bench/perf/gpu_check.sh [LOG_DIR]   (run from the repository root; needs a CUDA torch)
set -u
logs=${1:-${OUT:-gpu_check}}
runs=$(mktemp -d)
mkdir -p "$logs"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() { echo; echo "=== $* ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

step "CUDA tests"
timeout 150 $py -m pytest -q -p no:cacheprovider tests/search/test_hessian.py tests/search/test_supernet.py \
    tests/runs/test_trainer.py -k "cuda or device" --tb=line 2>&1 | tail -8

step "quick preset twice at once on cuda"
for r in a b; do
    (/usr/bin/time -f "run $r: %e s wall, %M KB peak RSS" timeout 240 $py -m bench.run --optimizer darts \
        --space 1 --seeds 0 --preset quick --device cuda --no-progress --out "$runs/$r" \
        >"$logs/run_$r.log" 2>&1; tail -1 "$logs/run_$r.log") &
done
wait
$py - "$runs" "$logs" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
runs, logs = Path(sys.argv[1]), Path(sys.argv[2])
a, b = (pd.read_csv(next((runs / r).rglob("epochs.csv"))) for r in "ab")
timing = [c for c in a.columns if c.endswith("seconds") or c.startswith("wallclock")]
same = a.drop(columns=timing).equals(b.drop(columns=timing))
print(f"{len(a)} epochs; identical apart from {timing}: {same}")
print(a[["epoch", "oneshot_valid_acc", "hessian_eig_max", "epoch_seconds"]].to_string(index=False))
a.to_csv(logs / "quick_cuda_epochs.csv", index=False)
EOF

step "bench.perf hessian (batch 96, spaces 1-3)"
timeout 200 $py -m bench.perf hessian --device cuda 2>&1 | tee "$logs/perf_hessian.txt" | tail -20

step "bench.perf optimizers"
timeout 90 $py -m bench.perf optimizers --device cuda 2>&1 | tee "$logs/perf_optimizers.txt" | tail -14
step "bench.perf supernet"
timeout 90 $py -m bench.perf supernet --device cuda 2>&1 | tee "$logs/perf_supernet.txt" | tail -12

# Space 1 only, 2 timed steps: 8 full-size supernets, each with a Hessian, fit the slot; spaces 2-3
# reuse space 1's costs (the output says so). All three spaces belong to an idle machine's run.
step "bench.perf protocol (space 1, 2 steps)"
timeout 180 $py -m bench.perf protocol --device cuda --spaces 1 --steps 2 --json "$logs/perf_protocol.json" \
    2>&1 | tee "$logs/perf_protocol.txt" | tail -30

step "done"

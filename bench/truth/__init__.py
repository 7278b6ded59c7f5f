"""Ground-truth tables behind one interface (`base.GroundTruth`): NAS-Bench-101 and the embedded digits
benchmark. They know the search spaces' cells, never the optimizers or the runs."""

"""Figures and tables built only from results files (epochs.csv, config.json, alphas.npz, status.json).

Commands, each `python -m analysis.<name> RESULTS -o OUT`: figure3, table4, regret, figure4, report;
and `python -m analysis.landscape RUN_DIR ... -o OUT` (needs checkpoints and the search data).
"""

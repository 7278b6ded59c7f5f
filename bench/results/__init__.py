"""The results directory as one layer: what a run writes and how anything reads it back.

- `layout`: every name inside a run directory, the deterministic run paths
  (`<benchmark>/space<k>/<optimizer>/<tag>/seed<s>`) and their one parser, finding the runs of a tree;
- `schema`: the columns of epochs.csv (per-repeat ones follow the benchmark's `repeats`), what each
  holds, the correlation tables' columns, and the one builder of a row;
- `files`: atomic writes (write, then rename), JSON records, small tables, the alphas;
- `epochs`: the one reader and writer of epochs.csv (dtypes and column order included);
- `load`: many runs into one DataFrame;
- `status`: status.json, and where a run stands as its files record it;
- `bundle`: sharing runs as one verified archive (pack, verify, unpack; its face is
  `python -m bench.results`, bench/share.py).

Runs, status, black-box and analysis use the names re-exported here (`from bench import results`).

May import: bench.errors and bench.settings; nothing else of the harness (a benchmark's repeat count
comes in as an argument), so every layer above may read and write results.
"""

from bench.results.epochs import poll_rows, read_epochs, read_frame, rows_to_frame, write_epochs
from bench.results.files import (
    atomic_write_bytes,
    atomic_write_text,
    git_revision,
    harness_version,
    read_alphas,
    read_json,
    write_alphas,
    write_json,
    write_table,
)
from bench.results.layout import (
    ALPHAS_NPZ,
    CHECKPOINT,
    CONFIG_JSON,
    CORRELATION_ARCHS_CSV,
    CORRELATION_CSV,
    EPOCHS_CSV,
    REPLACED_DIR,
    RUN_LOG,
    SELECTION_CSV,
    SELECTION_DECISIONS_CSV,
    STATUS_JSON,
    RunPath,
    check_writable,
    find_runs,
    make_tag,
    move_aside,
    parse_run_path,
    run_dir,
    run_dirs,
)
from bench.results.load import load_results
from bench.results.schema import (
    COLUMN_DOCS,
    COLUMNS,
    CORRELATION_ARCH_COLUMNS,
    CORRELATION_COLUMNS,
    DEFAULT_REPEATS,
    RESULTS_VERSION,
    TEXT_COLUMNS,
    TIMING_COLUMNS,
    budget_columns,
    budgets_in,
    columns,
    repeat_columns,
)
from bench.results.status import existing_config, read_status, write_status

__all__ = [
    "ALPHAS_NPZ",
    "CHECKPOINT",
    "COLUMN_DOCS",
    "budget_columns",
    "budgets_in",
    "COLUMNS",
    "CONFIG_JSON",
    "CORRELATION_ARCHS_CSV",
    "CORRELATION_ARCH_COLUMNS",
    "CORRELATION_COLUMNS",
    "CORRELATION_CSV",
    "DEFAULT_REPEATS",
    "EPOCHS_CSV",
    "REPLACED_DIR",
    "RESULTS_VERSION",
    "RUN_LOG",
    "SELECTION_CSV",
    "SELECTION_DECISIONS_CSV",
    "STATUS_JSON",
    "TEXT_COLUMNS",
    "TIMING_COLUMNS",
    "RunPath",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "existing_config",
    "columns",
    "repeat_columns",
    "find_runs",
    "git_revision",
    "harness_version",
    "load_results",
    "make_tag",
    "move_aside",
    "parse_run_path",
    "poll_rows",
    "read_alphas",
    "read_epochs",
    "read_frame",
    "read_json",
    "read_status",
    "rows_to_frame",
    "run_dir",
    "run_dirs",
    "write_alphas",
    "write_epochs",
    "write_json",
    "write_status",
    "write_table",
]

"""MkDocs hook: tables on the results page rendered from the code, so the docs cannot drift from it.

A page marks a generated table with an HTML comment `<!-- generated: NAME -->`; NAME is a key of
`TABLES`. The test suite renders the same tables (tests/test_docs.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path

MARKER = re.compile(r"<!-- generated: ([\w-]+) -->")
FIELD_LINE = re.compile(r"^    (\w+): [^=#]+?(?: = [^#]+?)?(?:\s+#\s*(.*))?$")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def epochs_columns() -> str:
    from bench.results import COLUMN_DOCS, COLUMNS, budget_columns

    # The per-budget columns only exist with --set truth_budgets; budget 4 stands for each budget asked.
    names = (*COLUMNS, *budget_columns((4,)))
    rows = [f"| `{name}` | {_cell(COLUMN_DOCS.get(name, ''))} |" for name in names]
    return "\n".join(["| column | meaning |", "| --- | --- |", *rows])


# Fields the dataclass leaves uncommented because their names say it to a reader of the code.
FIELD_NOTES: dict[str, str] = {
    "optimizer": "optimizer plug-in (`--optimizer`)",
    "space": "search space 1, 2 or 3 (`--space`)",
    "seed": "the run's seed (`--seeds`)",
    "preset": "paper, corrected or quick (`--preset`)",
    "batch_size": "search batch size (both halves)",
    "init_channels": "channels of the supernet's first stack",
    "w_lr": "weights: SGD learning rate at the start of the cosine schedule",
    "w_lr_min": "weights: learning rate at the end of the cosine schedule",
    "w_momentum": "weights: SGD momentum",
    "w_weight_decay": "weights: SGD weight decay",
    "grad_clip": "weights: gradient-norm clip",
    "a_lr": "alphas: Adam learning rate",
    "a_beta1": "alphas: Adam beta1",
    "a_beta2": "alphas: Adam beta2",
    "a_weight_decay": "alphas: Adam weight decay",
    "cutout_length": "side of the cutout square in pixels",
    "cutout_prob": "probability that an image gets a cutout",
    "hessian": "measure the Hessian's dominant eigenvalue",
    "hessian_every": "measure every K epochs (and the last)",
    "bn_recal_batches": "training batches that re-estimate BN statistics (oneshot_bn=recalibrate)",
    "device": "auto, cpu, cuda or cuda:N (`--device`)",
}


def runconfig_comments() -> dict[str, str]:
    """Each RunConfig field's comment: the trailing one, else the comment lines right above it."""
    from bench.runs.config import RunConfig

    comments: dict[str, str] = {}
    above: list[str] = []
    for line in inspect.getsource(RunConfig).splitlines():
        stripped = line.strip()
        if stripped.startswith("# ----"):  # the methods start
            break
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = FIELD_LINE.match(line)
        if match:
            # A one-line comment of a few words above a field heads a group ("# data"): not its doc.
            heading = len(above) == 1 and len(above[0].split()) <= 4
            doc = match.group(2) or ("" if heading else " ".join(above))
            comments[match.group(1)] = doc or FIELD_NOTES.get(match.group(1), "")
        above = []
    return comments


def runconfig_fields() -> str:
    from bench.runs.config import RunConfig

    comments = runconfig_comments()
    rows = []
    for f in dataclasses.fields(RunConfig):
        if f.default is not dataclasses.MISSING:
            default = f"`{f.default!r}`"
        else:  # a default_factory: an empty container
            default = f"`{f.default_factory()!r}`"  # type: ignore[misc]
        rows.append(f"| `{f.name}` | {default} | {_cell(comments.get(f.name, ''))} |")
    return "\n".join(["| setting | paper default | meaning |", "| --- | --- | --- |", *rows])


PERF_DATA = Path(__file__).parent / "performance" / "data"


def latest_mainjob() -> tuple[Path, dict]:
    """The newest `python -m bench.perf mainjob --json` record kept under docs/performance/data."""
    # Records from before the benchmark wrote its `measured` block cannot name their machine: skipped.
    records = [(p, json.loads(p.read_text())) for p in PERF_DATA.glob("*/mainjob.json")]
    records = sorted((r for r in records if "measured" in r[1]), key=lambda r: r[1]["measured"]["date"])
    if not records:
        raise FileNotFoundError(f"no mainjob.json with a 'measured' record under {PERF_DATA}")
    return records[-1]


def perf_mainjob() -> str:
    """The main job's cost and completeness, straight from the benchmark's JSON record."""
    path, rec = latest_mainjob()
    m = rec["measured"]
    regrets = [r["final_regret"] for r in rec["runs"]]
    rows = [
        ("measured", f"{m['date']}, {m['cpu_model']}, {m['cores']} cores, ATen {m['aten_capability']}, "
                     f"torch {m['torch']}"),
        ("command", f"`python -m bench.perf mainjob --json {path.relative_to(PERF_DATA.parents[2])}`"),
        ("wall time", f"{rec['wall_s']:.0f} s ({rec['wall_s'] / 60:.1f} min; target "
                      f"{rec['target_s'] / 60:.0f} min: {'PASS' if rec['targets']['wall'] else 'FAIL'})"),
        ("CPU time", f"{rec['cpu_s']:.0f} s"),
        ("peak memory", f"{rec['peak_rss_mb'] / 1000:.2f} GB (largest process)"),
        ("search time per run", ", ".join(f"{r['search_seconds']:.0f} s" for r in rec["runs"])),
        ("final test regret per seed", ", ".join(f"{x:.4f}" for x in regrets)
         + f" (mean {sum(regrets) / len(regrets):.4f})"),
        ("complete", f"{'PASS' if rec['targets']['complete'] else 'FAIL'}: every run's epochs, Hessian, "
                     "one-shot evaluation and regret"),
    ]  # fmt: skip
    return "\n".join(["| | |", "| --- | --- |", *(f"| {k} | {_cell(v)} |" for k, v in rows)])


TABLES: dict[str, Callable[[], str]] = {
    "epochs-columns": epochs_columns,
    "runconfig-fields": runconfig_fields,
    "perf-mainjob": perf_mainjob,
}


def render(markdown: str) -> str:
    """`markdown` with every generated-table marker replaced by its table."""

    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise KeyError(f"unknown generated table {name!r}; known: {sorted(TABLES)}")
        return TABLES[name]()

    return MARKER.sub(table, markdown)


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    return render(markdown)

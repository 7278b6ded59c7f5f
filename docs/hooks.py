"""MkDocs hook: tables on the results page rendered from the code, so the docs cannot drift from it.

A page marks a generated table with an HTML comment `<!-- generated: NAME -->`; NAME is a key of
`TABLES`. The test suite renders the same tables (tests/test_docs.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable

MARKER = re.compile(r"<!-- generated: ([\w-]+) -->")
FIELD_LINE = re.compile(r"^    (\w+): [^=#]+?(?: = [^#]+?)?(?:\s+#\s*(.*))?$")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def epochs_columns() -> str:
    from bench.results import COLUMN_DOCS, COLUMNS

    rows = [f"| `{name}` | {_cell(COLUMN_DOCS.get(name, ''))} |" for name in COLUMNS]
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


TABLES: dict[str, Callable[[], str]] = {
    "epochs-columns": epochs_columns,
    "runconfig-fields": runconfig_fields,
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

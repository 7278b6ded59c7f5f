"""The documentation's tables follow the code: the results page cannot drift from the results schema."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from bench import results
from bench.runs import executors, trainer
from bench.runs.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS_PAGE = ROOT / "docs" / "results.md"


@pytest.fixture(scope="module")
def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_after(heading: str, text: str) -> list[str]:
    """First-column names (in backticks) of the first table under `heading`."""
    body = text[text.index(heading) + len(heading) :]
    lines = body[body.index("\n|") + 1 :].splitlines()
    names = []
    for line in lines[2:]:  # past the header and its rule
        if not line.startswith("|"):
            break
        names.append(re.match(r"\| `([^`]+)`", line).group(1))
    assert names, f"no table under {heading!r}"
    return names


def test_every_generated_table_is_on_a_page_and_renders(hooks) -> None:
    pages = [p.read_text() for p in (ROOT / "docs").rglob("*.md")]
    assert set().union(*(hooks.MARKER.findall(text) for text in pages)) == set(hooks.TABLES)
    for text in pages:
        assert "<!-- generated" not in hooks.render(text)


def test_readme_main_job_cost_is_the_kept_measurement(hooks) -> None:
    """The README's cost line quotes the newest `bench.perf mainjob` record, with its date and machine."""
    _, rec = hooks.latest_mainjob()
    readme = (ROOT / "README.md").read_text()
    m = rec["measured"]
    assert f"{rec['wall_s']:.0f} s" in readme and m["date"] in readme
    assert f"{m['cores']}-core" in readme and m["cpu_model"].split()[0] in readme


def test_epochs_table_is_every_column_with_its_doc(hooks) -> None:
    table = hooks.epochs_columns()
    for name in results.COLUMNS:
        assert f"| `{name}` | {results.COLUMN_DOCS[name].strip()}" in table.replace("\\|", "|")


def test_every_runconfig_field_is_documented(hooks) -> None:
    table = hooks.runconfig_fields()
    for field in RunConfig.__dataclass_fields__:
        row = re.search(rf"^\| `{field}` \| .*? \| (.*) \|$", table, flags=re.M)
        assert row and row.group(1).strip(), f"RunConfig.{field} has no meaning in the docs"


def test_correlation_tables_list_exactly_the_columns() -> None:
    text = RESULTS_PAGE.read_text()
    assert table_after("## correlation.csv", text) == list(results.CORRELATION_COLUMNS)
    assert table_after("`correlation_archs.csv` holds one row", text) == list(
        results.CORRELATION_ARCH_COLUMNS
    )


def _record_keys(function) -> set[str]:
    """String keys of the dict literals in `function`'s source."""
    tree = ast.parse(inspect.getsource(function).strip())
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys |= {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return keys


def test_config_json_table_covers_every_top_level_key() -> None:
    documented = set(table_after("## config.json", RESULTS_PAGE.read_text()))
    written = (_record_keys(trainer.config_record) | _record_keys(executors._execute)) - {
        "python",
        "torch",
        "numpy",
        "harness",
    }  # the `versions` record's own keys
    assert written <= documented, f"undocumented config.json keys: {sorted(written - documented)}"

"""Imports run down the layers: every module's imports (lazy ones inside functions included) are checked
against the order docs/architecture.md declares."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "analysis", "optimizers")

# Lowest first; a unit may import units of a lower layer and itself, never a sibling or one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench", "bench.errors"),
    ("bench.settings",),
    ("bench.results",),
    ("bench.search",),
    ("bench.data", "optimizers"),
    ("bench.truth",),
    ("bench.benchmarks",),
    ("bench.runs",),
    ("bench.blackbox", "bench.cli_helpers"),
    # command-line faces: argument parsing, printing, exit codes
    (
        "bench.run",
        "bench.hpo",
        "bench.tabulate",
        "bench.spaces",
        "bench.status",
        "bench.data.cli",
        "bench.blackbox.cli",
        "bench.perf",
        "bench.share",
    ),  # fmt: skip
    ("analysis",),
)
# What analysis may read besides the results layer below it: the machine comparison, the black-box
# records, the names that caption them and the run config's defaults (for settings a run predates).
ANALYSIS_READS = ("bench.errors", "bench.benchmarks", "bench.runs.machine", "bench.runs.config",
                  "bench.blackbox.records", "optimizers")  # fmt: skip
# Imports that still cross a layer, each with the reason it is left; the list only shrinks.
KNOWN = {
    # the landscape analysis rebuilds a finished run's supernet to evaluate it on its search data
    ("analysis.landscape", "bench.data.splits"),
    ("analysis.landscape", "bench.runs.oneshot"),
    ("analysis.landscape", "bench.runs.device"),
    ("analysis.landscape", "bench.runs.restore"),
}
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str | None:
    """The longest declared unit that `module` belongs to (None: a third-party module)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in RANK:
            return name
    return None


def modules() -> list[tuple[str, Path]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return out


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):  # walk: lazy imports inside functions too
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from bench.runs import status` imports bench.runs.status (a name, when not a module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations() -> list[str]:
    bad = []
    for module, path in modules():
        unit = unit_of(module)
        assert unit is not None, f"{module} belongs to no layer: add its package to LAYERS"
        if module.endswith(".__main__"):
            continue  # `python -m package`: it only calls the package's face
        for target in sorted(imports(path)):
            other = unit_of(target)
            known = {(module, target), (module, target.rsplit(".", 1)[0])} & KNOWN
            if other is None or other == unit or known:
                continue
            if (
                unit == "analysis"
                and RANK[other] > RANK["bench.results"]
                and not target.startswith(ANALYSIS_READS)
            ):
                bad.append(f"{module} imports {target}: analysis reads results files only")
            elif RANK[other] >= RANK[unit] and unit != "analysis":
                bad.append(f"{module} ({unit}) imports {target} ({other}), which is not below it")
    return bad


def test_imports_run_down_the_layers() -> None:
    assert violations() == []


def test_known_exceptions_still_exist() -> None:
    """A known crossing that was removed must leave the list (so it cannot come back unnoticed)."""
    present = {(m, t.rsplit(".", 1)[0]) for m, path in modules() for t in imports(path)}
    present |= {(m, t) for m, path in modules() for t in imports(path)}
    assert KNOWN <= present


@pytest.mark.parametrize("package", ["results", "search", "truth", "data", "benchmarks", "runs", "blackbox"])
def test_every_package_says_what_it_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((ROOT / "bench" / package / "__init__.py").read_text())) or ""
    assert "May import" in doc, f"bench/{package}/__init__.py does not say what it may import"

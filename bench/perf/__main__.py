"""Run one benchmark: `python -m bench.perf NAME [args]` calls `bench.perf.NAME.main(args)`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Sequence

import bench.perf


def available() -> list[str]:
    """Names of the benchmark modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(bench.perf.__path__) if not m.name.startswith("_"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench.perf NAME [args]; available: {', '.join(names)}")
        return 0
    if not argv or argv[0] not in names:
        what = f"unknown benchmark {argv[0]!r}" if argv else "no benchmark named"
        print(f"python -m bench.perf: {what}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.perf.{argv[0]}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())

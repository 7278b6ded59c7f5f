"""`python -m bench.status`: where every run of a results tree stands.

    python -m bench.status results/
    python -m bench.status results/ --space 1 --optimizer darts,gdas

One row per run: state (complete, running, interrupted, failed), epochs done/total, the last eigenvalue
and regret, wall time, when it last wrote, and why it failed; then a one-line count per state. Reads
files only, so it is safe to run while searches are writing into the tree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import UsageError
from bench.runs import status


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    return names or None


def _spaces(text: str | None) -> list[int] | None:
    names = _names(text)
    if names is None:
        return None
    if not all(n.isdigit() for n in names):
        raise UsageError(f"--space {text!r}: expected space numbers like 1 or 1,2,3")
    return [int(n) for n in names]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.status", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "root", nargs="?", default="results", help="a results tree (bench.run's --out; default results/)"
    )
    p.add_argument("--benchmark", help="only this benchmark (nb101, digits; comma-separated for several)")
    p.add_argument("--space", help="only these search spaces, e.g. 1 or 1,3")
    p.add_argument("--optimizer", help="only these optimizers, e.g. darts,gdas")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.root)
    try:
        if not root.exists():
            raise UsageError(
                f"{root}: no such directory; pass the --out directory of bench.run (default results/)"
            )
        if not root.is_dir():
            raise UsageError(f"{root}: not a directory; pass the --out directory of bench.run")
        runs = status.scan(
            root,
            benchmarks=_names(args.benchmark),
            spaces=_spaces(args.space),
            optimizers=_names(args.optimizer),
        )
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if runs:
        print(status.table(runs))
    else:
        print(
            f"no runs under {root}"
            + (" matching the filters" if args.benchmark or args.space or args.optimizer else "")
        )
    print(status.summary(runs))
    for line in status.machine_lines(runs):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m bench.spaces`: count the architectures of the three search spaces (bench/search/spaces.py)."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

from bench.search.spaces import summary_table


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.spaces", description="Count the architectures of the three search spaces."
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for hashing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(summary_table(n_jobs=max(1, args.jobs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

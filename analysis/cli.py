"""What every analysis command shares: RESULTS and -o OUT, the run filters, and exit code 2 on errors."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from analysis import names
from analysis.load import AnalysisError, Filters, Results, load

log = logging.getLogger("analysis")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of ints like 1 or 1,2,3") from None
    if not values:
        raise argparse.ArgumentTypeError("empty list; write e.g. 1 or 1,2,3")
    return values


def positive_int(text: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _str_list(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise argparse.ArgumentTypeError("empty list; write e.g. darts,msdarts")
    return values


def parser(
    prog: str, doc: str | None, results_arg: bool = True, filters: bool = True
) -> argparse.ArgumentParser:
    """A parser with RESULTS, -o OUT, the filters and -v; commands add their own options."""
    p = argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=(doc or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if results_arg:
        p.add_argument("results", type=Path, help="results root written by bench.run (its --out)")
    p.add_argument("-o", "--out", type=Path, required=True, help="directory for the outputs (created)")
    if filters:
        p.add_argument("--benchmark", default=None, help="only runs of this benchmark (nb101, digits, ...)")
        p.add_argument("--space", type=_int_list, default=(), help="only these search spaces, e.g. 1 or 1,3")
        p.add_argument(
            "--optimizers",
            "--optimizer",
            dest="optimizer",
            type=_str_list,
            default=(),
            help="only these registered optimizers, in any spelling, e.g. darts,msdarts,drnas",
        )
        p.add_argument(
            "--tag", type=_str_list, default=(), help="only these setting tags (run directory names)"
        )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def filters_from(args: argparse.Namespace) -> Filters:
    unknown = names.unknown_optimizers(args.optimizer)
    if unknown:
        known = ", ".join(name for name, _ in names.registered().values())
        raise AnalysisError(f"--optimizers {','.join(unknown)}: no such optimizer; registered: {known}")
    return Filters(
        benchmark=args.benchmark,
        spaces=tuple(args.space),
        optimizers=tuple(args.optimizer),
        tags=tuple(args.tag),
    )


def load_from(args: argparse.Namespace) -> Results:
    return load(args.results, filters_from(args))


def prepare_out(out: Path) -> Path:
    """Create OUT; a path that cannot be a directory is a user error with a fix, not a traceback."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnalysisError(
            f"-o {out}: cannot create it ({exc.strerror}); choose another directory"
        ) from None
    return out


def run_command(
    body: Callable[[argparse.Namespace, Results | None], Sequence[Path]],
    build_parser: Callable[[], argparse.ArgumentParser],
    argv: Sequence[str] | None,
    needs_results: bool = True,
) -> int:
    """Parse, load the selected runs, run `body`, print the files it wrote.

    AnalysisError anywhere -> one line on stderr and exit code 2. OUT is created only once the
    results have loaded, so a typo in RESULTS leaves nothing behind.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    try:
        res = load_from(args) if needs_results else None
        prepare_out(args.out)
        written = body(args, res)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0

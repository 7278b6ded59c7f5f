"""`python -m bench.data`: download, verify and install NAS-Bench-101 and CIFAR-10, or show their state.

python -m bench.data download nb101|nb101-full|cifar10|all [--dest DIR] [--url URL] [--from-file PATH]
                                                           [--no-verify] [--no-convert] [--retries N]
python -m bench.data status [--dest DIR] [--verify]

`all` is what a run needs (nb101, cifar10); nb101-full (~1.95 GB, every budget) is asked for by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from platformdirs import user_cache_dir

from bench.data.download import DataError, RetryPolicy
from bench.data.install import (
    APP_NAME,
    DATA_ENV,
    OFFICIAL,
    fetch_cifar10,
    fetch_nb101,
    resolve_data_dir,
    status_lines,
)

log = logging.getLogger(__name__)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.data", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    dest_help = f"data directory (default: ${DATA_ENV}, else {user_cache_dir(APP_NAME)})"
    dl = sub.add_parser("download", help="download, verify and install a dataset")
    dl.add_argument("dataset", choices=[*OFFICIAL, "all"])
    dl.add_argument("--dest", type=Path, help=dest_help)
    dl.add_argument("--url", help="download from this URL (a mirror) instead of the official one")
    dl.add_argument("--from-file", type=Path, help="install a file you downloaded yourself (still verified)")
    dl.add_argument(
        "--no-verify",
        action="store_true",
        help="UNSAFE: skip the checksum; a truncated or tampered file would be installed as is",
    )
    dl.add_argument(
        "--no-convert", action="store_true", help="nb101, nb101-full: do not build the fast cache now"
    )
    dl.add_argument("--retries", type=int, default=RetryPolicy.retries, help="retries after a failed attempt")
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")

    st = sub.add_parser("status", help="show what is installed and how to fetch what is missing")
    st.add_argument("--dest", type=Path, help=dest_help)
    st.add_argument("--verify", action="store_true", help="re-hash the installed files (takes a few seconds)")
    return parser


def nb101_converter(key: str = "nb101") -> Callable[[Path], object] | None:
    """The loader of `key`'s table reader, which converts a tfrecord to its fast cache; None (with a
    warning) when the reader cannot be imported: the download itself does not need it."""
    module = "bench.truth.nb101_full" if key == "nb101-full" else "bench.truth.nb101"
    try:
        if key == "nb101-full":
            from bench.truth.nb101_full import NB101FullTable as table
        else:
            from bench.truth.nb101 import NB101Table as table
    except ImportError as e:
        log.warning("cannot import %s (%s); skipped conversion to the fast cache", module, e)
        return None
    return table.load


def _run_download(args: argparse.Namespace, data_dir: Path) -> None:
    keys = [k for k, d in OFFICIAL.items() if not d.optional] if args.dataset == "all" else [args.dataset]
    if len(keys) > 1 and (args.url or args.from_file):
        raise DataError(
            "--url and --from-file name one file; use them with `download nb101`, `download nb101-full` "
            "or `download cifar10`"
        )
    if args.retries < 0:
        raise DataError(f"--retries must be >= 0, got {args.retries}")
    policy = dataclasses.replace(RetryPolicy(), retries=args.retries)
    progress = False if args.no_progress else None
    verify = not args.no_verify
    for key in keys:
        if key in ("nb101", "nb101-full"):
            path = fetch_nb101(
                data_dir,
                dataset=OFFICIAL[key],
                url=args.url,
                from_file=args.from_file,
                verify=verify,
                convert=None if args.no_convert else nb101_converter(key),
                policy=policy,
                progress=progress,
            )
        else:
            path = fetch_cifar10(
                data_dir,
                url=args.url,
                from_file=args.from_file,
                verify=verify,
                policy=policy,
                progress=progress,
            )
        print(f"{key}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    data_dir = resolve_data_dir(args.dest)
    try:
        if args.command == "download":
            _run_download(args, data_dir)
        else:
            print("\n".join(status_lines(data_dir, verify=args.verify)))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # permissions, full disk, a --dest that is a file: fixable by the user
        print(f"error: {e}; check the path or pass --dest to a writable directory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume the download", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

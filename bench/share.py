"""`python -m bench.results pack|verify|unpack`: share runs as one verified archive.

    python -m bench.results pack results/ --benchmark digits --space 1 -o darts-digits.tar.gz
    python -m bench.results verify darts-digits.tar.gz
    python -m bench.results unpack darts-digits.tar.gz results/ --prefix alice

pack writes whole run directories with a MANIFEST.json (SHA-256 and size of every file, harness version
and git revision, each run's benchmark note and machine); verify recomputes all of it; unpack verifies
first and installs the runs only when every file matches, never over a run already there. What a bundle
guarantees is written in docs/sharing.md. The library is bench.results.bundle.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.cli_helpers import parse_int_list
from bench.errors import HarnessError, UsageError
from bench.results import bundle
from bench.runs import machine


def _names(text: str | None) -> list[str] | None:
    names = [t.strip() for t in (text or "").split(",") if t.strip()]
    return names or None


def _bound(text: str) -> int:
    """A byte count: plain, or with a K/M/G suffix (powers of 1024)."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    scale = units.get(text[-1:].upper(), 1)
    digits = text[:-1] if scale != 1 else text
    if not digits.isdigit() or int(digits) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size like 500M or 2G")
    return int(digits) * scale


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.results", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="write selected runs and their manifest to one .tar.gz")
    pk.add_argument("root", help="a results directory (bench.run's --out)")
    pk.add_argument("-o", "--output", required=True, help="the bundle to write (refused if it exists)")
    pk.add_argument("--benchmark", help="only these benchmarks, e.g. digits or digits,nb101")
    pk.add_argument("--space", help="only these search spaces, e.g. 1 or 1-3")
    pk.add_argument("--optimizer", help="only these optimizers, e.g. darts,gdas (black-box runs: blackbox)")
    pk.add_argument("--tag", help="only these setting tags, e.g. paper")
    pk.add_argument("--seeds", help="only these seeds, e.g. 0-4 or 0,3")
    for name, help_text in (
        ("verify", "check a bundle against its manifest"),
        ("unpack", "verify, then install the runs"),
    ):
        q = sub.add_parser(name, help=help_text)
        q.add_argument("bundle", help="a .tar.gz written by pack")
        if name == "unpack":
            q.add_argument("dest", help="the results directory to install the runs into")
            q.add_argument(
                "--prefix", help="put the runs under DEST/PREFIX/ (one folder name), beside DEST's own"
            )
        q.add_argument("--max-bytes", type=_bound, default=bundle.MAX_BYTES,
                       help="refuse bundles larger than this, packed or unpacked (default 2G)")  # fmt: skip
        q.add_argument("--max-entries", type=int, default=bundle.MAX_ENTRIES,
                       help=f"refuse bundles with more files (default {bundle.MAX_ENTRIES})")  # fmt: skip
    return p


def summary(found: bundle.Bundle) -> list[str]:
    """What a verified bundle holds, one line per fact and per run."""
    m = found.manifest
    harness = m.get("harness") or {}
    revision = (harness.get("git_revision") or "unknown")[:12]
    lines = [
        f"{found.path}: OK, {found.files} files, {found.bytes} bytes, {len(found.runs)} run(s); "
        "every SHA-256 and size matches the manifest",
        f"packed {m.get('created')} by harness {harness.get('version') or 'unknown'} (git {revision})",
    ]
    for run in found.runs:
        lines.append(f"  {run['path']}: {machine.describe(run.get('machine'))}")
    for note in sorted({str(r.get("benchmark_note")) for r in found.runs if r.get("benchmark_note")}):
        lines.append(f"benchmark note: {note}")
    return lines


def run(args: argparse.Namespace) -> list[str]:
    if args.command == "pack":
        seeds = parse_int_list(args.seeds, "seeds") if args.seeds else None
        spaces = parse_int_list(args.space, "space") if args.space else None
        selection = bundle.Selection(
            _names(args.benchmark), spaces, _names(args.optimizer), _names(args.tag), seeds
        )
        manifest = bundle.pack(Path(args.root), Path(args.output), selection)
        size = Path(args.output).stat().st_size
        return [
            f"wrote {args.output}: {len(manifest['runs'])} run(s), "
            f"{len(manifest['files'])} files, {size} bytes"
        ]
    if args.command == "verify":
        return summary(bundle.verify(Path(args.bundle), args.max_bytes, args.max_entries))
    installed = bundle.unpack(
        Path(args.bundle), Path(args.dest), args.prefix, args.max_bytes, args.max_entries
    )
    return [f"installed {len(installed)} run(s) under {Path(args.dest) / (args.prefix or '')}"] + [
        f"  {p}" for p in installed
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command != "pack" and args.max_entries < 1:
            raise UsageError(f"--max-entries {args.max_entries}: must be positive")
        lines = run(args)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

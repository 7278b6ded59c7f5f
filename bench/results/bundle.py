"""Sharing runs as one verified archive: pack whole run directories with a manifest, verify an archive
against its manifest, unpack it beside other runs without ever writing outside the destination.

A bundle is a gzip-compressed tar file. Its first member is `MANIFEST.json` (SHA-256 and size of every
other member, the harness version and git revision that packed it, each run's benchmark note and
machine record); the others are the runs' files at their paths relative to the results root
(`<benchmark>/space<k>/<optimizer>/<tag>/seed<s>/...`). Tar over zip because tar records the kind of
every entry (file, link, device), so anything but a plain file is refused by its kind, and because gzip
with a fixed header time makes packing twice give the same bytes.

The manifest guards against accidents and tampering in transit relative to the manifest; nothing is
signed, so it says nothing about who sent the bundle. Checkpoints inside are data: nothing here loads
them (the run-restoring code reads them with its own safe loader when asked).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from bench.errors import DataError, UsageError
from bench.results.files import atomic_write_bytes, git_revision, harness_version, read_json
from bench.results.layout import CONFIG_JSON, parse_run_path, run_dirs

MANIFEST = "MANIFEST.json"
FORMAT = "nasbench-1shot1-harness bundle"
BUNDLE_VERSION = 1
MAX_BYTES = 2 * 1024**3  # default bound on the archive and on its unpacked size
MAX_ENTRIES = 100_000  # default bound on the number of files
CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BAD_NAME = re.compile(r"[\x00-\x1f\\]")


class BundleError(DataError):
    """A bundle that is damaged, lies about its content, or would write where it must not."""


@dataclass(frozen=True)
class Selection:
    """Which runs of a results root go into a bundle (None: any)."""

    benchmarks: Sequence[str] | None = None
    spaces: Sequence[int] | None = None
    optimizers: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    seeds: Sequence[int] | None = None

    def admits(self, rel: Path) -> bool:
        ident = parse_run_path(rel)
        checks = (
            (self.benchmarks, ident.benchmark),
            (self.spaces, ident.space),
            (self.optimizers, ident.optimizer),
            (self.tags, ident.tag),
            (self.seeds, ident.seed),
        )
        return all(wanted is None or value in wanted for wanted, value in checks)


@dataclass
class Bundle:
    """A verified bundle: its manifest and what the summary prints."""

    path: Path
    manifest: dict[str, Any]
    files: int = 0
    bytes: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)


# ---- packing --------------------------------------------------------------------------------------
def created_date() -> str:
    """Today (UTC) as YYYY-MM-DD, or SOURCE_DATE_EPOCH's day where set: a day, not a time, so packing
    the same runs twice on one day gives the same bytes."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(epoch) if epoch and epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


def _run_files(run: Path) -> list[Path]:
    files = []
    for path in sorted(run.rglob("*")):
        if path.is_symlink():
            raise UsageError(f"{path}: a symbolic link inside a run; replace it by the file or remove it")
        if path.is_file():
            files.append(path)
        elif not path.is_dir():
            raise UsageError(f"{path}: not a plain file; remove it from the run before packing")
    return files


def _run_record(root: Path, run: Path) -> dict[str, Any]:
    config = read_json(run / CONFIG_JSON) or {}
    ident = parse_run_path(run.relative_to(root))
    return {
        "path": run.relative_to(root).as_posix(),
        "benchmark": ident.benchmark,
        "benchmark_note": config.get("benchmark_note"),
        "machine": config.get("machine"),
        "git_revision": config.get("git_revision"),
        "versions": config.get("versions"),
    }


def pack(
    root: Path, out: Path, selection: Selection = Selection(), created: str | None = None
) -> dict[str, Any]:
    """Write the selected runs of `root` to the bundle `out` (atomically; an existing `out` is refused)
    and return its manifest."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise UsageError(f"{root}: no such results directory; pass the --out directory of bench.run")
    if out.exists():
        raise UsageError(f"{out}: already exists; choose another -o or remove the old bundle")
    runs = [r for r in run_dirs(root) if selection.admits(r.relative_to(root))]
    if not runs:
        raise UsageError(
            f"{root}: no runs match the selection; check --benchmark/--space/--optimizer/--tag/--seeds"
        )
    entries: list[tuple[str, bytes]] = []
    for run in runs:
        if out.resolve().is_relative_to(run.resolve()):
            raise UsageError(f"{out}: inside the run {run} being packed; write the bundle elsewhere")
        for path in _run_files(run):
            entries.append((path.relative_to(root).as_posix(), path.read_bytes()))
    entries.sort()
    manifest = {
        "format": FORMAT,
        "bundle_version": BUNDLE_VERSION,
        "created": created or created_date(),
        "harness": {"version": harness_version(), "git_revision": git_revision()},
        "runs": [_run_record(root, r) for r in runs],
        "files": [{"path": p, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for p, d in entries],
    }
    payload = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    raw = io.BytesIO()
    # filename="" and mtime=0: the gzip header holds neither a file name nor a time
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in [(MANIFEST, payload), *entries]:
                tar.addfile(_member(name, len(data)), io.BytesIO(data))
    atomic_write_bytes(out, raw.getvalue())
    return manifest


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# ---- verifying ------------------------------------------------------------------------------------
def _safe_name(name: Any) -> bool:
    """A relative POSIX path of plain parts: no absolute path, no `..`, no empty or hidden tricks."""
    if not isinstance(name, str) or not name or _BAD_NAME.search(name) or name.startswith("/"):
        return False
    parts = name.split("/")
    return all(p not in ("", ".", "..") for p in parts) and PurePosixPath(name).as_posix() == name


def _check_manifest(path: Path, raw: bytes, max_bytes: int, max_entries: int) -> dict[str, Any]:
    def bad(problem: str) -> BundleError:
        return BundleError(
            f"{path}: {problem}; ask the sender for a new bundle (python -m bench.results pack)"
        )

    try:
        manifest = json.loads(raw)
    except ValueError:
        raise bad("MANIFEST.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise bad("MANIFEST.json is not a harness bundle manifest")
    if manifest.get("bundle_version") != BUNDLE_VERSION:
        raise BundleError(
            f"{path}: bundle version {manifest.get('bundle_version')!r}, this harness reads version "
            f"{BUNDLE_VERSION}; unpack it with the harness version that packed it"
        )
    files, runs = manifest.get("files"), manifest.get("runs")
    if not isinstance(files, list) or not isinstance(runs, list) or not runs:
        raise bad("MANIFEST.json lacks its file or run list")
    if len(files) > max_entries:
        raise BundleError(
            f"{path}: {len(files)} files, over the bound of {max_entries}; raise --max-entries if expected"
        )
    run_paths = []
    for run in runs:
        rel = run.get("path") if isinstance(run, dict) else None
        if not _safe_name(rel) or parse_run_path(Path(rel)).seed is None or MANIFEST in rel.split("/"):
            raise bad(f"run path {rel!r} is not a run directory's relative path")
        run_paths.append(rel)
    for a in run_paths:
        if any(b == a or b.startswith(a + "/") for b in run_paths if b is not a):
            raise bad(f"run {a!r} is listed twice or holds another run")
    seen: set[str] = set()
    total = 0
    for entry in files:
        name = entry.get("path") if isinstance(entry, dict) else None
        if not _safe_name(name) or name == MANIFEST:
            raise bad(f"file entry {name!r} is not a safe relative path")
        if name in seen:
            raise bad(f"file {name!r} is listed twice")
        seen.add(name)
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise bad(f"file {name!r} has no valid size")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise bad(f"file {name!r} has no valid SHA-256")
        if not any(name.startswith(r + "/") for r in run_paths):
            raise bad(f"file {name!r} belongs to no listed run")
        total += size
    for name in seen:  # a file where another needs a folder could not be written
        parts = name.split("/")
        if any("/".join(parts[:i]) in seen for i in range(1, len(parts))):
            raise bad(f"file {name!r} sits below another listed file")
    if total > max_bytes:
        raise BundleError(
            f"{path}: unpacks to {total} bytes, over the bound of {max_bytes}; raise --max-bytes if expected"
        )
    return manifest


def _members(path: Path, max_bytes: int) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The archive's members in order, read as a stream (no seeking back)."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the bundle ({exc.strerror}); check the path") from None
    if size > max_bytes:
        raise BundleError(
            f"{path}: {size} bytes, over the bound of {max_bytes}; raise --max-bytes if expected"
        )
    with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|gz") as tar:
        yield from ((info, tar) for info in tar)


def _kind(info: tarfile.TarInfo) -> str | None:
    """What makes a member other than a plain file (None: a plain file)."""
    if info.issym():
        return "a symbolic link"
    if info.islnk():
        return "a hard link"
    if info.isdev() or info.isfifo():
        return "a device or fifo"
    if not info.isfile():
        return "not a plain file"
    return None


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo, sink: BinaryIO | None) -> str:
    """The member's SHA-256, its bytes copied to `sink` as they stream past."""
    h = hashlib.sha256()
    src = tar.extractfile(info)
    assert src is not None  # a plain file, checked by _kind
    while chunk := src.read(CHUNK):
        h.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return h.hexdigest()


def _walk(path: Path, max_bytes: int, max_entries: int, into: Path | None = None) -> Bundle:
    """Check every member against the manifest (and, with `into`, write each under `into` as read)."""
    try:
        return _walk_members(path, max_bytes, max_entries, into)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BundleError(
            f"{path}: damaged or not a bundle ({exc or type(exc).__name__}); fetch the bundle again"
        ) from None


def _walk_members(path: Path, max_bytes: int, max_entries: int, into: Path | None) -> Bundle:
    manifest: dict[str, Any] | None = None
    expected: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    total = 0

    def bad(problem: str) -> BundleError:
        return BundleError(f"{path}: {problem}; do not use this bundle, ask the sender for a new one")

    for info, tar in _members(path, max_bytes):
        name = info.name
        if not _safe_name(name):
            raise bad(f"entry {name!r} is an absolute or escaping path")
        kind = _kind(info)
        if kind:
            raise bad(f"entry {name!r} is {kind}")
        if manifest is None:
            if name != MANIFEST:
                raise bad(f"first entry is {name!r}, not {MANIFEST}")
            if info.size > 16 * 1024 * 1024 + 64 * max_entries:
                raise bad("MANIFEST.json is implausibly large")
            buf = io.BytesIO()
            _read(tar, info, buf)
            manifest = _check_manifest(path, buf.getvalue(), max_bytes, max_entries)
            expected = {e["path"]: e for e in manifest["files"]}
            continue
        if name in seen or name == MANIFEST:
            raise bad(f"entry {name!r} appears twice")
        seen.add(name)
        entry = expected.get(name)
        if entry is None:
            raise bad(f"entry {name!r} is not in the manifest")
        if info.size != entry["size"]:
            raise bad(f"entry {name!r} holds {info.size} bytes, the manifest says {entry['size']}")
        total += info.size
        if total > max_bytes:
            raise bad(f"unpacks to more than {max_bytes} bytes")
        if into is None:
            digest = _read(tar, info, None)
        else:
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as sink:
                digest = _read(tar, info, sink)
        if digest != entry["sha256"]:
            raise bad(f"entry {name!r} does not match its SHA-256 in the manifest (changed or damaged)")
    if manifest is None:
        raise bad("empty archive, no MANIFEST.json")
    missing = sorted(set(expected) - seen)
    if missing:
        raise bad(f"{len(missing)} file(s) in the manifest are missing from the archive, e.g. {missing[0]!r}")
    return Bundle(path, manifest, files=len(seen), bytes=total, runs=list(manifest["runs"]))


def verify(path: Path, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES) -> Bundle:
    """Recompute every hash and size against the manifest; writes nothing. Raises BundleError."""
    return _walk(Path(path), max_bytes, max_entries)


def _check_prefix(prefix: str | None) -> None:
    if prefix is None:
        return
    if not _safe_name(prefix) or "/" in prefix or prefix.startswith("."):
        raise UsageError(
            f"--prefix {prefix!r}: must be one plain folder name (no '/', '..' or leading '.'), "
            "e.g. --prefix alice"
        )


def unpack(
    path: Path,
    dest: Path,
    prefix: str | None = None,
    max_bytes: int = MAX_BYTES,
    max_entries: int = MAX_ENTRIES,
) -> list[Path]:
    """Verify the bundle, then install its runs under `dest` (or `dest/prefix`), never overwriting a
    run. Nothing is written when anything is refused; returns the installed run directories."""
    path, dest = Path(path), Path(dest)
    _check_prefix(prefix)
    bundle = verify(path, max_bytes, max_entries)  # streaming, in memory: nothing written yet
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{dest}: not a directory; pass a results directory to unpack into")
    base = dest / prefix if prefix else dest
    targets = {}
    root = dest.resolve()
    for run in bundle.runs:
        target = base / run["path"]
        if target.exists() or target.is_symlink():
            raise UsageError(
                f"{target}: a run already exists there; "
                "unpack with --prefix NAME to keep both, or into another DEST"
            )
        # an existing folder on the way that is a link elsewhere would carry the run outside DEST
        if not target.resolve().is_relative_to(root):
            raise UsageError(f"{target}: resolves outside {dest} (a linked folder); unpack into another DEST")
        targets[run["path"]] = target
    created_dest = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=dest))  # hidden: never read as results
    except OSError as exc:
        raise UsageError(f"{dest}: not writable ({exc.strerror}); choose another DEST") from None
    try:
        _walk(path, max_bytes, max_entries, into=staging)  # the archive is read again: check it again
        installed = []
        for rel, target in targets.items():
            if target.exists():
                raise UsageError(f"{target}: a run appeared there while unpacking; unpack again")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            installed.append(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created_dest and not any(dest.iterdir()):
            dest.rmdir()
        if isinstance(exc, OSError):
            raise UsageError(
                f"{dest}: cannot write the runs ({exc.strerror}); free space or choose another DEST"
            ) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return installed

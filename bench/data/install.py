"""Where the harness keeps NAS-Bench-101 and CIFAR-10, how to fetch them, and what is installed.

The command-line face is `python -m bench.data` (bench/data/cli.py). The data directory is `--dest`,
else $NB1SHOT1_DATA, else the per-user cache directory. Every function
takes the directory it works on; nothing here is module-level mutable state.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from platformdirs import user_cache_dir

from bench.data import cifar10
from bench.data.download import (
    Checksum,
    DataError,
    RetryPolicy,
    download,
    file_digest,
    install_from_file,
    marker_ok,
    part_path,
    safe_extract_tar,
    write_marker,
)

log = logging.getLogger(__name__)

APP_NAME = "nasbench-1shot1-harness"
DATA_ENV = "NB1SHOT1_DATA"


@dataclass(frozen=True)
class Dataset:
    """One published file: where it lives, what it must hash to, what it is called on disk."""

    key: str
    filename: str
    url: str
    checksum: Checksum
    size: str  # shown to users; the byte-exact check is the checksum
    description: str
    optional: bool = False  # not part of `download all` (nothing needs it to run)


# The published files (see specs/nb101_format.md). Read-only so no caller can repoint a URL or checksum.
OFFICIAL: Mapping[str, Dataset] = MappingProxyType(
    {
        "nb101": Dataset(
            key="nb101",
            filename="nasbench_only108.tfrecord",
            url="https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord",
            checksum=Checksum("sha256", "4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1"),
            size="499 MB",
            description="NAS-Bench-101 table, 108-epoch results",
        ),
        # The byte size of this file is not recorded here: the SHA-256 (verified before anything is
        # installed) is the size check, and it refuses a truncated file as it refuses a corrupt one.
        "nb101-full": Dataset(
            key="nb101-full",
            filename="nasbench_full.tfrecord",
            url="https://storage.googleapis.com/nasbench/nasbench_full.tfrecord",
            checksum=Checksum("sha256", "3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c"),
            size="~1.95 GB",
            description="NAS-Bench-101 full table, 4/12/36/108 epochs with halfway metrics",
            optional=True,
        ),
        "cifar10": Dataset(
            key="cifar10",
            filename="cifar-10-python.tar.gz",
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            checksum=Checksum("md5", "c58f30108f718f92721af3b95e74349a"),
            size="163 MB",
            description="CIFAR-10, python batches",
        ),
    }
)


@dataclass(frozen=True)
class DataPaths:
    """What the run CLI can use; a field is None unless the data there is complete."""

    nb101: Path | None  # the tfrecord, or the converted cache when only that is left
    cifar10: Path | None  # the `cifar-10-batches-py` directory
    nb101_full: Path | None = None  # nasbench_full.tfrecord, or its converted cache


def resolve_data_dir(data_dir: Path | str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """`data_dir` if given, else $NB1SHOT1_DATA, else the per-user cache directory."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ if env is None else env
    if env.get(DATA_ENV):
        return Path(env[DATA_ENV]).expanduser()
    return Path(user_cache_dir(APP_NAME))


def nb101_path(data_dir: Path, key: str = "nb101") -> Path:
    """Where the tfrecord of `key` (nb101 or nb101-full) is installed."""
    return data_dir / OFFICIAL[key].filename


def cifar10_dir(data_dir: Path) -> Path:
    return data_dir / cifar10.DIRNAME


# Suffixes of files that sit beside the tfrecord but are not a usable cache.
_NOT_A_CACHE = (".part", ".bad", ".verified", ".tmp", ".lock")


def nb101_cache(data_dir: Path, key: str = "nb101") -> Path | None:
    """The converted fast cache beside the tfrecord of `key`, if the table reader has written one.

    The reader (bench.truth) owns the cache format and name; here anything named like the tfrecord's
    stem (`nasbench_only108.*`, `nasbench_full.*`) other than the tfrecord itself and in-flight/marker
    files counts.
    """
    tfrecord = nb101_path(data_dir, key)
    stem = tfrecord.name.removesuffix(".tfrecord")
    if not data_dir.is_dir():
        return None
    for p in sorted(data_dir.glob(stem + ".*")):
        if p != tfrecord and not p.name.startswith(tfrecord.name) and not p.name.endswith(_NOT_A_CACHE):
            return p
    return None


def locate(data_dir: Path | str | None = None) -> DataPaths:
    """The installed data under `data_dir` (default: see resolve_data_dir), complete items only."""
    d = resolve_data_dir(data_dir)

    def table(key: str) -> Path | None:
        tfrecord = nb101_path(d, key)
        return tfrecord if tfrecord.is_file() else nb101_cache(d, key)

    cdir = cifar10_dir(d)
    return DataPaths(
        nb101=table("nb101"),
        cifar10=cdir if cifar10.is_complete(cdir) else None,
        nb101_full=table("nb101-full"),
    )


def convert_nb101(tfrecord: Path, load: Callable[[Path], object]) -> None:
    """Build the table reader's fast cache now (`load` is e.g. bench.truth.nb101.NB101Table.load, passed
    in by the CLI: the data layer knows no tables), so the first run does not pay for it."""
    log.info("converting %s to the fast cache (once)", tfrecord)
    try:
        load(tfrecord)
    except (ValueError, OSError) as e:  # the reader's data errors (CRC, truncation) and I/O errors
        raise DataError(
            f"converting {tfrecord} to the fast cache failed ({e}); delete it and download again, "
            "or pass --no-convert to keep it as is"
        ) from e


def fetch_nb101(
    data_dir: Path,
    *,
    dataset: Dataset = OFFICIAL["nb101"],
    url: str | None = None,
    from_file: Path | None = None,
    verify: bool = True,
    convert: Callable[[Path], object] | None = None,
    policy: RetryPolicy | None = None,
    progress: bool | None = None,
) -> Path:
    """Install a NAS-Bench-101 tfrecord (`dataset`: nb101 or nb101-full) under `data_dir` (download or
    `from_file`), then convert it with `convert` (the table reader's loader; None: leave it for the
    first run)."""
    dest = data_dir / dataset.filename
    checksum = dataset.checksum if verify else None
    if from_file is not None:
        install_from_file(Path(from_file), dest, checksum, progress=progress)
    else:
        download(url or dataset.url, dest, checksum, policy=policy, progress=progress)
    if convert is not None:
        convert_nb101(dest, convert)
    return dest


def fetch_cifar10(
    data_dir: Path,
    *,
    dataset: Dataset = OFFICIAL["cifar10"],
    url: str | None = None,
    from_file: Path | None = None,
    verify: bool = True,
    policy: RetryPolicy | None = None,
    progress: bool | None = None,
) -> Path:
    """Install `cifar-10-batches-py/` under `data_dir`; the verified archive is kept beside it."""
    target = cifar10_dir(data_dir)
    if cifar10.is_complete(target) and from_file is None:
        log.info("%s is already complete", target)
        return target
    archive = data_dir / dataset.filename
    checksum = dataset.checksum if verify else None
    if from_file is not None:
        install_from_file(Path(from_file), archive, checksum, progress=progress)
    else:
        download(url or dataset.url, archive, checksum, policy=policy, progress=progress)
    # Extract beside the target and swap it in, so an interrupted extraction never looks complete.
    with tempfile.TemporaryDirectory(prefix=".cifar10-extract-", dir=data_dir) as tmp:
        safe_extract_tar(archive, Path(tmp))
        extracted = Path(tmp) / cifar10.DIRNAME
        missing = cifar10.missing_files(extracted) if extracted.is_dir() else list(cifar10.REQUIRED_FILES)
        if missing:
            raise cifar10.CIFAR10Error(
                f"{archive} lacks {cifar10.DIRNAME}/{', '.join(missing)}; it is not the CIFAR-10 python "
                f"archive, delete it and run `python -m bench.data download cifar10`"
            )
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    return target


def _download_command(key: str, data_dir: Path) -> str:
    return f"python -m bench.data download {key} --dest {data_dir}"


def status_lines(data_dir: Path, *, verify: bool = False) -> list[str]:
    """Human-readable state of every dataset under `data_dir`, with the command to fix what is missing.

    `verify` re-hashes present files instead of trusting the marker written at download time.
    """
    lines = [f"data directory: {data_dir}"]
    todo: list[str] = []

    for key in ("nb101", "nb101-full"):
        nb = OFFICIAL[key]
        tfrecord = data_dir / nb.filename
        cache = nb101_cache(data_dir, key)
        lines.append(f"{key} ({nb.description}, {nb.size}{', optional' if nb.optional else ''}):")
        if tfrecord.is_file():
            lines.append(f"  tfrecord: {tfrecord} ({tfrecord.stat().st_size:,} bytes)")
            lines.append(f"  checksum: {_verification(tfrecord, nb.checksum, verify)}")
        else:
            lines.append("  tfrecord: missing")
            if part_path(tfrecord).exists():
                lines.append(
                    f"  partial download: {part_path(tfrecord).stat().st_size:,} bytes (rerun to resume)"
                )
        lines.append(f"  fast cache: {cache if cache else 'missing (built on first use)'}")
        if not tfrecord.is_file() and cache is None:
            if nb.optional:
                lines.append(f"  to add it: {_download_command(key, data_dir)}")
            else:
                todo.append(_download_command(key, data_dir))

    cf = OFFICIAL["cifar10"]
    archive = data_dir / cf.filename
    cdir = cifar10_dir(data_dir)
    lines.append(f"cifar10 ({cf.description}, {cf.size}):")
    if archive.is_file():
        lines.append(f"  archive: {archive} ({_verification(archive, cf.checksum, verify)})")
    elif part_path(archive).exists():
        lines.append(
            f"  archive: partial download, {part_path(archive).stat().st_size:,} bytes (rerun to resume)"
        )
    else:
        lines.append("  archive: missing")
    missing = cifar10.missing_files(cdir) if cdir.is_dir() else list(cifar10.REQUIRED_FILES)
    if not missing:
        lines.append(f"  {cifar10.DIRNAME}: {cdir} (complete)")
    elif cdir.is_dir():
        lines.append(f"  {cifar10.DIRNAME}: {cdir} INCOMPLETE, missing {', '.join(missing)}")
    else:
        lines.append(f"  {cifar10.DIRNAME}: missing")
    if missing:
        todo.append(_download_command("cifar10", data_dir))

    if todo:
        lines.append("to fetch what is missing:")
        lines.extend(f"  {cmd}" for cmd in todo)
    else:
        lines.append("everything is installed")
    return lines


def _verification(path: Path, checksum: Checksum, rehash: bool) -> str:
    if rehash:
        ok = file_digest(path, checksum.algorithm) == checksum.digest
        if ok:
            write_marker(path, checksum)
        return f"{checksum.algorithm} {'OK' if ok else 'MISMATCH: delete the file and download again'}"
    if marker_ok(path, checksum):
        return f"{checksum.algorithm} verified"
    return "not verified (run `python -m bench.data status --verify` to check it)"

"""Fetch one large file safely: stream, resume, retry, verify, then move into place atomically.

Generic on purpose (no knowledge of NAS-Bench-101 or CIFAR-10): callers pass the URL, the destination
and the expected checksum, so tests can serve tiny files with their own checksums. The invariant that
matters to users: the final path only ever holds a file whose checksum was verified (or that they
explicitly asked not to verify); everything in flight lives in `<name>.part`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from bench.errors import DataError

log = logging.getLogger(__name__)

# Transient server answers worth another try; any other HTTP error (404, 403, ...) will not fix itself.
_RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_USER_AGENT = "nasbench-1shot1-harness (python urllib)"
_HASH_CHUNK = 1 << 20


class DownloadError(DataError):
    """The file could not be fetched (offline, HTTP error, disk error)."""


class ChecksumError(DataError):
    """A file's checksum differs from the published one."""


class UnsafeArchiveError(DataError):
    """An archive member would land outside the extraction directory or is not a plain file/dir."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up; tests shrink the backoff to keep the suite fast."""

    retries: int = 4  # extra attempts after the first one
    backoff_s: float = 1.0  # sleep before retry i is backoff_s * 2**i
    timeout_s: float = 30.0  # socket timeout per connect/read


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # a hashlib name: "sha256", "md5"
    digest: str  # lowercase hex

    def __post_init__(self) -> None:
        if self.algorithm not in hashlib.algorithms_guaranteed:
            raise ValueError(f"unknown hash algorithm {self.algorithm!r}")


class _Incomplete(Exception):
    """The connection ended before the announced length; retryable, the .part keeps what arrived."""


class _RangeNotSatisfiable(Exception):
    """HTTP 416 on a resume: the .part is probably already complete."""


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def bad_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".bad")


def marker_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".verified")


def file_digest(path: Path, algorithm: str, *, progress: bool | None = None) -> str:
    """Hex digest of a file, read in chunks (the NB-101 file is ~0.5 GB)."""
    h = hashlib.new(algorithm)
    size = path.stat().st_size
    with (
        open(path, "rb") as f,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            desc=f"{algorithm} {path.name}",
            disable=_tqdm_disable(progress),
            leave=False,
        ) as bar,
    ):
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def write_marker(dest: Path, checksum: Checksum) -> None:
    """Record that `dest` was verified, so `status` need not re-hash half a gigabyte."""
    payload = {"algorithm": checksum.algorithm, "digest": checksum.digest, "size": dest.stat().st_size}
    marker = marker_path(dest)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(payload) + "\n")
    os.replace(tmp, marker)


def marker_ok(dest: Path, checksum: Checksum) -> bool:
    """True when `dest` exists and its marker records this checksum and the file's current size."""
    try:
        payload = json.loads(marker_path(dest).read_text())
        size = dest.stat().st_size
    except (OSError, ValueError):
        return False
    return (
        isinstance(payload, dict)
        and payload.get("algorithm") == checksum.algorithm
        and str(payload.get("digest", "")).lower() == checksum.digest.lower()
        and payload.get("size") == size
    )


def _tqdm_disable(progress: bool | None) -> bool | None:
    # None lets tqdm decide (no bar when stderr is not a terminal, e.g. in CI logs).
    return None if progress is None else not progress


def _check(path: Path, checksum: Checksum | None, progress: bool | None) -> str | None:
    """None when the file matches (or there is nothing to check), else the actual digest."""
    if checksum is None:
        return None
    actual = file_digest(path, checksum.algorithm, progress=progress)
    return None if actual == checksum.digest.lower() else actual


def _parse_content_range(value: str | None) -> tuple[int, int | None]:
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not m:
        raise _Incomplete(f"unparseable Content-Range {value!r}")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def _fetch_once(url: str, part: Path, policy: RetryPolicy, chunk_size: int, progress: bool | None) -> None:
    """One HTTP request that extends (206) or rewrites (200) the .part file."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urlopen(Request(url, headers=headers), timeout=policy.timeout_s)
    except HTTPError as e:
        if e.code == 416 and offset:
            raise _RangeNotSatisfiable from e
        raise
    with resp:
        status = getattr(resp, "status", 200)
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            start, total = _parse_content_range(resp.headers.get("Content-Range"))
            if start != offset:
                # Appending bytes from elsewhere would corrupt the file silently; start over next try.
                part.unlink(missing_ok=True)
                raise _Incomplete(f"server resumed at byte {start}, expected {offset}")
            mode = "ab"
        else:
            if offset:
                log.info("%s ignored the Range request; downloading from the start", url)
            offset, total, mode = 0, length, "wb"
        received = 0
        try:
            f = open(part, mode)
        except OSError as e:
            raise DownloadError(
                f"cannot write {part}: {e.strerror}; pass --dest to a writable directory"
            ) from e
        with (
            f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=_tqdm_disable(progress),
            ) as bar,
        ):
            while chunk := resp.read(chunk_size):
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DownloadError(
                        f"cannot write {part}: {e.strerror}; free disk space or pass --dest elsewhere"
                    ) from e
                received += len(chunk)
                bar.update(len(chunk))
        if length is not None and received < length:
            raise _Incomplete(f"connection closed after {received} of {length} bytes")


def _offline_hint(dest: Path) -> str:
    return f"download the file elsewhere and pass --from-file PATH (or place it at {dest})"


def _fetch_with_retries(
    url: str, dest: Path, policy: RetryPolicy, chunk_size: int, progress: bool | None
) -> None:
    """Fill `<dest>.part` completely, resuming after each transient failure."""
    part = part_path(dest)
    last: BaseException | None = None
    for attempt in range(policy.retries + 1):
        if attempt:
            delay = policy.backoff_s * 2 ** (attempt - 1)
            log.warning(
                "download of %s failed (%s); retry %d/%d in %.1fs", url, last, attempt, policy.retries, delay
            )
            time.sleep(delay)
        try:
            _fetch_once(url, part, policy, chunk_size, progress)
            return
        except _RangeNotSatisfiable:
            return  # the caller verifies; a wrong .part is then discarded and fetched again
        except HTTPError as e:
            if e.code not in _RETRYABLE_HTTP:
                raise DownloadError(
                    f"{url} answered HTTP {e.code} {e.reason}; check the URL (--url) or {_offline_hint(dest)}"
                ) from e
            last = e
        except URLError as e:
            last = e.reason if isinstance(e.reason, BaseException) else e
        except (OSError, http.client.HTTPException, _Incomplete) as e:
            last = e
    resume = "; rerunning resumes the partial file" if part.exists() else ""
    raise DownloadError(
        f"cannot download {url} ({last}; {policy.retries + 1} attempt(s)); check your network, "
        f"or {_offline_hint(dest)}{resume}"
    )


def download(
    url: str,
    dest: Path,
    checksum: Checksum | None,
    *,
    policy: RetryPolicy | None = None,
    progress: bool | None = None,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download `url` to `dest`, verified against `checksum` (None: unverified, unsafe).

    Resumes a leftover `<dest>.part` with an HTTP Range request; retries transient failures with
    exponential backoff. On a checksum mismatch the data is moved to `<dest>.bad` and ChecksumError is
    raised; nothing unverified ever reaches `dest`. An existing verified `dest` is kept as is.
    """
    policy = policy or RetryPolicy()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if checksum is None or marker_ok(dest, checksum) or _check(dest, checksum, progress) is None:
            if checksum is not None:
                write_marker(dest, checksum)
            log.info("%s already present", dest)
            return dest
        log.warning(
            "%s exists but fails its checksum; moving it to %s and downloading again", dest, bad_path(dest)
        )
        os.replace(dest, bad_path(dest))
        marker_path(dest).unlink(missing_ok=True)

    part = part_path(dest)
    resumed = part.exists() and part.stat().st_size > 0
    for fresh_retry in (False, True):
        _fetch_with_retries(url, dest, policy, chunk_size, progress)
        actual = _check(part, checksum, progress)
        if actual is None:
            break
        if resumed and not fresh_retry:
            # A leftover .part may come from another file version; one clean download settles it.
            log.warning("resumed download of %s fails its checksum; discarding and starting over", dest.name)
            part.unlink()
            continue
        assert checksum is not None  # a mismatch needs something to mismatch
        os.replace(part, bad_path(dest))
        raise ChecksumError(
            f"{checksum.algorithm} of the download from {url} is {actual}, expected {checksum.digest} "
            f"(kept at {bad_path(dest)}); rerun to try again, or try another mirror with --url"
        )
    os.replace(part, dest)
    marker_path(dest).unlink(missing_ok=True)
    if checksum is not None:
        write_marker(dest, checksum)
    else:
        log.warning("%s was NOT verified (--no-verify); it may be corrupt or tampered with", dest)
    return dest


def install_from_file(
    src: Path, dest: Path, checksum: Checksum | None, *, progress: bool | None = None
) -> Path:
    """Verify a file the user fetched by hand and put it at `dest` (hard link when possible, else copy)."""
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise DownloadError(
            f"--from-file {src} does not exist or is not a file; pass the path of the downloaded file"
        )
    actual = _check(src, checksum, progress)
    if actual is not None:
        assert checksum is not None
        raise ChecksumError(
            f"{checksum.algorithm} of {src} is {actual}, expected {checksum.digest}; "
            "the file is incomplete or not the official one, download it again"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not (dest.exists() and os.path.samefile(src, dest)):
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)  # no 0.5 GB copy when both live on one file system
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    marker_path(dest).unlink(missing_ok=True)
    if checksum is not None:
        write_marker(dest, checksum)
    return dest


def safe_extract_tar(archive: Path, dest_dir: Path) -> None:
    """Extract a tar archive, refusing links, devices and any member that escapes `dest_dir`."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = dest_dir.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                target = (root / m.name).resolve()
                if (
                    m.name.startswith(("/", "\\"))
                    or ".." in Path(m.name).parts
                    or not target.is_relative_to(root)
                ):
                    raise UnsafeArchiveError(
                        f"{archive} member {m.name!r} points outside {dest_dir}; refusing to extract it, "
                        "delete the archive and download it again"
                    )
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(
                        f"{archive} member {m.name!r} is a link or special file; refusing to extract it, "
                        "delete the archive and download it again"
                    )
            # The data filter (Python >= 3.11.4) is a second line of defence and silences 3.12+ warnings.
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest_dir, members=members, **kwargs)
    except (tarfile.TarError, EOFError) as e:
        raise DataError(
            f"{archive} is not a readable tar archive ({e}); delete it and download it again"
        ) from e

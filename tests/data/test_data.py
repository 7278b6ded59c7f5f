"""Downloader and `python -m bench.data` against a local HTTP server serving tiny SYNTHETIC files."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import socket
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench.data import cifar10
from bench.data import install as data
from bench.data.cli import main, nb101_converter
from bench.data.download import (
    Checksum,
    ChecksumError,
    DownloadError,
    RetryPolicy,
    UnsafeArchiveError,
    bad_path,
    download,
    install_from_file,
    marker_ok,
    marker_path,
    part_path,
    safe_extract_tar,
)
from bench.data.install import (
    OFFICIAL,
    DataPaths,
    fetch_cifar10,
    fetch_nb101,
    locate,
    resolve_data_dir,
)
from tests.helpers import write_fake_cifar

FAST = RetryPolicy(retries=3, backoff_s=0.0, timeout_s=5.0)
REPO = Path(__file__).resolve().parents[2]


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: set[str] = field(default_factory=set)
    drops: dict[str, int] = field(default_factory=dict)  # path -> how many responses to cut in half
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        st: ServerState = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        with st.lock:
            st.requests.append((self.path, rng))
            drop = st.drops.get(self.path, 0) > 0
            if drop:
                st.drops[self.path] -= 1
        body = st.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng and self.path not in st.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        # A dropped connection: announce the full length, send half, hang up.
        self.wfile.write(payload[: len(payload) // 2] if drop else payload)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, httpd.state  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_url() -> str:
    """A URL on a port nothing listens on: connection refused, like being offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"


def _blob(n: int = 200_000, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(b: bytes) -> Checksum:
    return Checksum("sha256", hashlib.sha256(b).hexdigest())


def _serve(state: ServerState, path: str, body: bytes) -> None:
    state.files[path] = body


# --- the downloader ------------------------------------------------------------------------------------


def test_plain_download_verifies_and_marks(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "sub" / "f.bin"
    assert download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False) == dest
    assert dest.read_bytes() == body
    assert not part_path(dest).exists() and marker_ok(dest, _sha(body))
    assert st.requests == [("/f.bin", None)]
    # Already installed and marked: no second request.
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert len(st.requests) == 1


def test_resume_from_existing_part_uses_range(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(body[:70_000])
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body
    assert st.requests == [("/f.bin", "bytes=70000-")]


def test_dropped_connection_is_retried_and_resumed(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    st.drops["/f.bin"] = 2
    dest = tmp_path / "f.bin"
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body
    assert st.requests == [("/f.bin", None), ("/f.bin", "bytes=100000-"), ("/f.bin", "bytes=150000-")]


def test_gives_up_after_the_configured_retries_and_keeps_the_part(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    st.drops["/f.bin"] = 99
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="2 attempt.*rerunning resumes"):
        download(
            f"{base}/f.bin", dest, _sha(body), policy=dataclasses.replace(FAST, retries=1), progress=False
        )
    assert len(st.requests) == 2 and not dest.exists()
    assert part_path(dest).stat().st_size == 150_000  # kept for the next run to resume


def test_bad_checksum_leaves_nothing_in_place(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match=r"expected 0+.*kept at .*f\.bin\.bad"):
        download(f"{base}/f.bin", dest, Checksum("sha256", "0" * 64), policy=FAST, progress=False)
    assert not dest.exists() and not part_path(dest).exists() and not marker_path(dest).exists()
    assert bad_path(dest).read_bytes() == body


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    st.ignore_range.add("/f.bin")
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"x" * 5000)  # would corrupt the file if appended to
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body
    assert st.requests == [("/f.bin", "bytes=5000-")]


def test_stale_part_from_another_file_is_discarded_once(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(b"y" * 1000)  # the server honours Range, so the result mismatches
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body
    assert st.requests == [("/f.bin", "bytes=1000-"), ("/f.bin", None)]


def test_complete_part_answered_416_is_verified_and_installed(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "f.bin"
    part_path(dest).write_bytes(body)
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body and st.requests == [("/f.bin", f"bytes={len(body)}-")]


def test_corrupt_existing_file_is_moved_aside_and_fetched_again(server, tmp_path: Path):
    base, st = server
    body = _blob()
    _serve(st, "/f.bin", body)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"corrupt")
    download(f"{base}/f.bin", dest, _sha(body), policy=FAST, progress=False)
    assert dest.read_bytes() == body and bad_path(dest).read_bytes() == b"corrupt"


def test_http_404_fails_at_once(server, tmp_path: Path):
    base, st = server
    with pytest.raises(DownloadError, match="HTTP 404.*--url"):
        download(f"{base}/missing", tmp_path / "f.bin", None, policy=FAST, progress=False)
    assert len(st.requests) == 1


def test_offline_is_a_clean_error(closed_url: str, tmp_path: Path):
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError) as info:
        download(closed_url, dest, None, policy=dataclasses.replace(FAST, retries=1), progress=False)
    msg = str(info.value)
    assert "\n" not in msg and "refused" in msg.lower()
    assert "--from-file" in msg and str(dest) in msg
    assert not dest.exists()


def test_no_verify_installs_without_marker(server, tmp_path: Path):
    base, st = server
    _serve(st, "/f.bin", b"abc")
    dest = download(f"{base}/f.bin", tmp_path / "f.bin", None, policy=FAST, progress=False)
    assert dest.read_bytes() == b"abc" and not marker_path(dest).exists()


def test_install_from_file(tmp_path: Path):
    src = tmp_path / "manual.bin"
    src.write_bytes(b"hello")
    dest = tmp_path / "data" / "f.bin"
    install_from_file(src, dest, _sha(b"hello"))
    assert dest.read_bytes() == b"hello" and marker_ok(dest, _sha(b"hello")) and src.exists()
    with pytest.raises(ChecksumError, match="manual.bin"):
        install_from_file(src, tmp_path / "other.bin", _sha(b"bye"))
    assert not (tmp_path / "other.bin").exists()
    with pytest.raises(DownloadError, match="does not exist"):
        install_from_file(tmp_path / "nope", dest, None)


# --- tar extraction ---------------------------------------------------------------------------------------


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, payload: bytes = b"") -> Path:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return archive


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_tar_path_traversal_is_refused(tmp_path: Path, name: str):
    info = tarfile.TarInfo(name)
    info.size = 3
    archive = _tar_with(tmp_path, info, b"bad")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_tar_links_are_refused(tmp_path: Path):
    info = tarfile.TarInfo("cifar-10-batches-py/link")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract_tar(_tar_with(tmp_path, info), tmp_path / "out")


# --- datasets, CLI, status ----------------------------------------------------------------------------------


def _cifar_archive(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    write_fake_cifar(src / cifar10.DIRNAME, per_batch=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / cifar10.DIRNAME, arcname=cifar10.DIRNAME)
    return buf.getvalue()


def _md5(b: bytes) -> Checksum:
    return Checksum("md5", hashlib.md5(b).hexdigest())


def test_official_table_is_read_only():
    with pytest.raises(TypeError):
        OFFICIAL["nb101"] = OFFICIAL["cifar10"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        OFFICIAL["nb101"].url = "http://elsewhere"  # type: ignore[misc]
    assert (
        OFFICIAL["nb101"].checksum.digest.startswith("4c39c393")
        and OFFICIAL["cifar10"].checksum.algorithm == "md5"
    )


def test_fetch_cifar10_downloads_and_extracts(server, tmp_path: Path):
    base, st = server
    archive = _cifar_archive(tmp_path)
    _serve(st, "/c.tgz", archive)
    ds = dataclasses.replace(OFFICIAL["cifar10"], checksum=_md5(archive))
    d = tmp_path / "data"
    target = fetch_cifar10(d, dataset=ds, url=f"{base}/c.tgz", policy=FAST, progress=False)
    assert target == d / cifar10.DIRNAME and cifar10.is_complete(target)
    assert cifar10.load_cifar10(target, "train")[0].shape == (10, 3, 32, 32)
    assert (d / ds.filename).is_file() and not any(p.name.startswith(".cifar10-extract") for p in d.iterdir())
    assert locate(d) == DataPaths(nb101=None, cifar10=target)
    # Complete already: nothing is fetched again.
    fetch_cifar10(d, dataset=ds, url=f"{base}/c.tgz", policy=FAST, progress=False)
    assert len(st.requests) == 1


def test_fetch_cifar10_rejects_an_archive_without_the_batches(server, tmp_path: Path):
    base, st = server
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    _serve(st, "/c.tgz", buf.getvalue())
    ds = dataclasses.replace(OFFICIAL["cifar10"], checksum=_md5(buf.getvalue()))
    with pytest.raises(cifar10.CIFAR10Error, match="lacks"):
        fetch_cifar10(tmp_path, dataset=ds, url=f"{base}/c.tgz", policy=FAST, progress=False)
    assert not (tmp_path / cifar10.DIRNAME).exists()


def test_fetch_nb101_from_file_then_converts(tmp_path: Path, monkeypatch):
    calls = []
    src = tmp_path / "downloads" / "nasbench_only108.tfrecord"
    src.parent.mkdir()
    src.write_bytes(b"synthetic, not a real tfrecord")
    ds = dataclasses.replace(OFFICIAL["nb101"], checksum=_sha(src.read_bytes()))
    d = tmp_path / "data"
    path = fetch_nb101(d, dataset=ds, from_file=src, convert=calls.append, progress=False)  # stand-in reader
    assert path == d / "nasbench_only108.tfrecord" and path.read_bytes() == src.read_bytes()
    assert calls == [path] and locate(d).nb101 == path


def test_conversion_failure_is_a_data_error(tmp_path: Path, monkeypatch):
    def load(path):
        raise ValueError("CRC mismatch in record 7")

    src = tmp_path / "x.tfrecord"
    src.write_bytes(b"synthetic")
    ds = dataclasses.replace(OFFICIAL["nb101"], checksum=_sha(b"synthetic"))
    with pytest.raises(data.DataError, match="CRC mismatch.*--no-convert"):
        fetch_nb101(tmp_path / "data", dataset=ds, from_file=src, convert=load, progress=False)


def test_conversion_is_skipped_when_the_reader_is_missing(tmp_path: Path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "bench.truth.nb101", None)  # makes the import fail
    src = tmp_path / "x.tfrecord"
    src.write_bytes(b"synthetic")
    ds = dataclasses.replace(OFFICIAL["nb101"], checksum=_sha(b"synthetic"))
    convert = nb101_converter()
    path = fetch_nb101(tmp_path / "data", dataset=ds, from_file=src, convert=convert, progress=False)
    assert path.is_file() and "skipped conversion" in caplog.text


def test_locate_and_data_dir_resolution(tmp_path: Path, monkeypatch):
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(None, env={"NB1SHOT1_DATA": str(tmp_path)}) == tmp_path
    assert resolve_data_dir(None, env={}).name == data.APP_NAME
    monkeypatch.setenv("NB1SHOT1_DATA", str(tmp_path))
    assert locate() == DataPaths(None, None)
    (tmp_path / "nasbench_only108.tfrecord.part").write_bytes(b"half")
    write_fake_cifar(tmp_path / cifar10.DIRNAME)
    (tmp_path / cifar10.DIRNAME / "test_batch").unlink()
    assert locate() == DataPaths(None, None)  # partial download, incomplete dir
    (tmp_path / "nasbench_only108.npz").write_bytes(b"cache")
    assert locate().nb101 == tmp_path / "nasbench_only108.npz"  # only the cache is left
    (tmp_path / "nasbench_only108.tfrecord").write_bytes(b"x")
    assert locate().nb101 == tmp_path / "nasbench_only108.tfrecord"


def test_cli_from_file_with_official_checksum_mismatch_exits_2(tmp_path: Path, capsys):
    src = tmp_path / "wrong.tfrecord"
    src.write_bytes(b"not the official file")
    rc = main(["download", "nb101", "--dest", str(tmp_path / "d"), "--from-file", str(src), "--no-convert"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and len(err.splitlines()) == 1
    assert "sha256" in err and "wrong.tfrecord" in err
    assert not (tmp_path / "d" / "nasbench_only108.tfrecord").exists()


def test_cli_download_no_verify_and_status(server, tmp_path: Path, capsys):
    base, st = server
    archive = _cifar_archive(tmp_path)
    _serve(st, "/c.tgz", archive)
    d = tmp_path / "data"
    assert main(["status", "--dest", str(d)]) == 0
    out = capsys.readouterr().out
    assert "tfrecord: missing" in out and f"python -m bench.data download nb101 --dest {d}" in out
    assert f"python -m bench.data download cifar10 --dest {d}" in out

    rc = main(
        ["download", "cifar10", "--dest", str(d), "--url", f"{base}/c.tgz", "--no-verify", "--no-progress"]
    )
    assert rc == 0 and f"cifar10: {d / cifar10.DIRNAME}" in capsys.readouterr().out
    (d / "nasbench_only108.tfrecord").write_bytes(b"synthetic")
    assert main(["status", "--dest", str(d)]) == 0
    out = capsys.readouterr().out
    assert "cifar-10-batches-py:" in out and "(complete)" in out and "everything is installed" in out
    assert "not verified" in out and "fast cache: missing" in out
    assert main(["status", "--dest", str(d), "--verify"]) == 0
    assert "MISMATCH" in capsys.readouterr().out  # synthetic files are not the official ones


def test_cli_rejects_url_with_all(tmp_path: Path, capsys):
    assert main(["download", "all", "--dest", str(tmp_path), "--url", "http://x"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_offline_subprocess_one_line_exit_2(closed_url: str, tmp_path: Path):
    """The real entry point: no traceback, one line on stderr, exit code 2."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.data", "download", "nb101", "--dest", str(tmp_path)]
        + ["--url", closed_url, "--retries", "0", "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot download") and "--from-file" in lines[0]
    assert not (tmp_path / "nasbench_only108.tfrecord").exists()


# --- nb101-full: the full table's file ----------------------------------------------------------------


@pytest.fixture
def full_fixture(tmp_path: Path) -> bytes:
    """A small file in nasbench_full.tfrecord's format (TEST FIXTURE values)."""
    from tests.helpers import write_nb101_full_fixture

    chain = (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", "conv3x3-bn-relu", "output"])
    skip = (np.array([[0, 1], [0, 0]]), ["input", "output"])
    path = tmp_path / "fixture_full.tfrecord"
    write_nb101_full_fixture(path, [chain, skip])
    return path.read_bytes()


def test_nb101_full_downloads_resumes_verifies_and_converts(server, tmp_path: Path, full_fixture: bytes):
    base, st = server
    _serve(st, "/full.tfrecord", full_fixture)
    st.drops["/full.tfrecord"] = 1  # the first response is cut off: the rest comes by an HTTP Range
    ds = dataclasses.replace(OFFICIAL["nb101-full"], checksum=_sha(full_fixture))
    d = tmp_path / "data"
    path = fetch_nb101(
        d, dataset=ds, url=f"{base}/full.tfrecord", convert=nb101_converter("nb101-full"), policy=FAST,
        progress=False,
    )  # fmt: skip
    assert path == d / "nasbench_full.tfrecord" and path.read_bytes() == full_fixture
    assert any(rng for _, rng in st.requests) and marker_ok(path, ds.checksum)
    assert (d / "nasbench_full.nb101cache").is_dir()  # converted by the full table's reader
    paths = locate(d)
    assert paths.nb101_full == path and paths.nb101 is None


def test_nb101_full_truncated_download_is_refused_before_install(
    server, tmp_path: Path, capsys, full_fixture
):
    base, st = server
    _serve(st, "/full.tfrecord", full_fixture[:-100])  # truncated: fails the official SHA-256
    d = tmp_path / "data"
    rc = main(["download", "nb101-full", "--dest", str(d), "--url", f"{base}/full.tfrecord", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and "sha256" in err
    assert not (d / "nasbench_full.tfrecord").exists() and not (d / "nasbench_full.nb101cache").exists()
    assert locate(d).nb101_full is None


def test_nb101_full_from_file_checks_the_official_checksum(tmp_path: Path, capsys, full_fixture: bytes):
    src = tmp_path / "nasbench_full.tfrecord"
    src.write_bytes(full_fixture)  # a fixture is not the official file
    d = tmp_path / "d"
    rc = main(["download", "nb101-full", "--dest", str(d), "--from-file", str(src)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "3d64db8180fb" in err
    assert not (d / "nasbench_full.tfrecord").exists()


def test_corrupt_full_file_fails_conversion_with_one_line(tmp_path: Path, capsys, full_fixture: bytes):
    src = tmp_path / "src.tfrecord"
    src.write_bytes(full_fixture[: len(full_fixture) // 2])  # installed unverified, then converted
    d = tmp_path / "d"
    rc = main(["download", "nb101-full", "--dest", str(d), "--from-file", str(src), "--no-verify"])
    lines = capsys.readouterr().err.strip().splitlines()  # INFO lines (converting...) may come first
    errors = [line for line in lines if line.startswith("error: ")]
    assert rc == 2 and errors == lines[-1:] and "download nb101-full" in errors[0]
    assert not (d / "nasbench_full.nb101cache").exists()


def test_status_lists_nb101_full_as_optional(tmp_path: Path, capsys):
    assert main(["status", "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nb101-full (" in out and "optional" in out
    assert f"to add it: python -m bench.data download nb101-full --dest {tmp_path}" in out
    # `all` is what a run needs: the optional full table is not in it
    todo = out.split("to fetch what is missing:")[1]
    assert "nb101-full" not in todo
    (tmp_path / "nasbench_full.tfrecord").write_bytes(b"synthetic")
    assert main(["status", "--dest", str(tmp_path)]) == 0
    assert "nasbench_full.tfrecord (9 bytes)" in capsys.readouterr().out

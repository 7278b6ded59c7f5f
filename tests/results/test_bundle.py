"""Sharing runs as bundles (bench.results.bundle, `python -m bench.results`): the round trip, and a
corpus of bad archives made here, each refused with one line and exit 2 before anything is written.

Every refusal is checked the same way: `verify` and `unpack` exit 2 with a single `error:` line naming
the bundle, DEST (which already holds a run of its own) is byte for byte unchanged, and nothing appeared
anywhere else under the test's folder (where `../x` or an absolute path would have landed).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from analysis import figure3, regret, report
from analysis.load import load, machine_lines
from bench import results
from bench.results import bundle
from bench.runs.restore import RestoreError, load_run
from bench.share import main
from tests.analysis.fixtures import (
    stub_savefig,  # noqa: F401 - the fixture
    write_run,
)
from tests.helpers import TouchOnLoad
from tests.runs.fixture_cli import main as fixture_main
from tests.runs.test_reliability import TINY

DAY = "2026-12-07"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root of three runs in bench.run's layout (tests/analysis/fixtures.py: synthetic
    numbers, cheap to write)."""
    root = tmp_path_factory.mktemp("source") / "results"
    write_run(root, optimizer="darts", seed=0)
    for seed in (0, 1):
        write_run(root, optimizer="sdarts-rs", seed=seed)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root holding one real run of bench.run (fixture table, toy data, one epoch), with
    its real checkpoint.pt."""
    root = tmp_path_factory.mktemp("trained") / "results"
    assert fixture_main(["--optimizer", "darts", "--epochs", "1", *TINY, "--out", str(root)]) == 0
    return root


@pytest.fixture(scope="module")
def good(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "runs.tar.gz"
    bundle.pack(source, out, created=DAY)
    return out


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with a file's bytes (None for a folder or anything else)."""
    return {
        str(p): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
    }


def read_entries(path: Path) -> tuple[dict, list[tuple[str, bytes]]]:
    with tarfile.open(path, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
    assert members[0][0] == bundle.MANIFEST
    return json.loads(members[0][1]), members[1:]


def write_tar(path: Path, manifest: dict | bytes, entries: list[tuple[str, bytes]],
              specials: list[tarfile.TarInfo] = ()) -> Path:  # fmt: skip
    """A gzip'd tar: the manifest first (as given), the entries, then any special members."""
    raw = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(bundle.MANIFEST, raw), *entries]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in specials:
            tar.addfile(info)
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info


# ---- the corpus: each builder writes one bad bundle from the good one -----------------------------
Builder = Callable[[Path, Path, Path], Path]  # (good bundle, folder to write in, test folder) -> bad


def _rebuilt(edit_manifest=None, edit_entries=None, specials=None) -> Builder:  # type: ignore[no-untyped-def]
    def build(good: Path, folder: Path, base: Path) -> Path:
        manifest, entries = read_entries(good)
        manifest = copy.deepcopy(manifest)
        run = manifest["runs"][0]["path"]
        if edit_manifest:
            edit_manifest(manifest)
        if edit_entries:
            entries = edit_entries(entries, run, base)
        extra = specials(run, base) if specials else []
        return write_tar(folder / "bad.tar.gz", manifest, entries, extra)

    return build


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def _bytes(transform: Callable[[bytes], bytes]) -> Builder:
    def build(good: Path, folder: Path, base: Path) -> Path:
        out = folder / "bad.tar.gz"
        out.write_bytes(transform(good.read_bytes()))
        return out

    return build


def _first_file(m: dict) -> dict:
    return m["files"][0]


CORPUS: dict[str, Builder] = {
    "path traversal ../x": _rebuilt(edit_entries=lambda e, run, base: [*e, ("../escaped", b"x")]),
    "traversal inside a path": _rebuilt(edit_entries=lambda e, run, base: [*e, (f"{run}/../../../x", b"x")]),
    "absolute path": _rebuilt(edit_entries=lambda e, run, base: [*e, (str(base / "absolute"), b"x")]),
    "symlink entry": _rebuilt(specials=lambda run, base: [special(f"{run}/link", tarfile.SYMTYPE, "/etc")]),
    "hard link entry": _rebuilt(
        specials=lambda run, base: [special(f"{run}/hard", tarfile.LNKTYPE, f"{run}/config.json")]
    ),
    "fifo entry": _rebuilt(specials=lambda run, base: [special(f"{run}/fifo", tarfile.FIFOTYPE)]),
    "device entry": _rebuilt(specials=lambda run, base: [special(f"{run}/null", tarfile.CHRTYPE)]),
    "directory entry": _rebuilt(specials=lambda run, base: [special(f"{run}/sub", tarfile.DIRTYPE)]),
    "tampered byte in a file": _rebuilt(
        edit_entries=lambda e, run, base: [(e[0][0], _flip(e[0][1], len(e[0][1]) // 2)), *e[1:]]
    ),
    "tampered byte in the archive": _bytes(lambda d: _flip(d, len(d) // 2)),
    "truncated archive": _bytes(lambda d: d[: len(d) // 2]),
    "empty file": _bytes(lambda d: b""),
    "not gzip": _bytes(lambda d: b"PK\x03\x04 a zip, not a bundle" * 10),
    "manifest lies: wrong hash": _rebuilt(edit_manifest=lambda m: _first_file(m).update(sha256="0" * 64)),
    "manifest lies: wrong size": _rebuilt(
        edit_manifest=lambda m: _first_file(m).update(size=_first_file(m)["size"] + 1)
    ),
    "manifest lies: extra entry": _rebuilt(
        edit_manifest=lambda m: m["files"].append(
            {"path": m["runs"][0]["path"] + "/extra.csv", "sha256": "0" * 64, "size": 1}
        )
    ),
    "manifest lies: missing entry": _rebuilt(
        edit_entries=lambda e, run, base: [*e, (f"{run}/unlisted", b"x")]
    ),
    "file missing from the archive": _rebuilt(edit_entries=lambda e, run, base: e[1:]),
    "duplicate entry": _rebuilt(edit_entries=lambda e, run, base: [*e, e[0]]),
    "manifest lists a file twice": _rebuilt(edit_manifest=lambda m: m["files"].append(_first_file(m))),
    "manifest lists an escaping path": _rebuilt(
        edit_manifest=lambda m: m["files"].append({"path": "../x", "sha256": "0" * 64, "size": 1})
    ),
    "manifest lists an escaping run": _rebuilt(
        edit_manifest=lambda m: m["runs"].append({"path": "/a/b/c/d/seed0"})
    ),
    "manifest from another bundle version": _rebuilt(edit_manifest=lambda m: m.update(bundle_version=99)),
    "manifest not JSON": lambda good, folder, base: write_tar(folder / "bad.tar.gz", b"{not json", []),
    "manifest not first": lambda good, folder, base: _manifest_last(good, folder / "bad.tar.gz"),
}


def _manifest_last(good: Path, out: Path) -> Path:
    with tarfile.open(good, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        members = src.getmembers()
        for m in [*members[1:], members[0]]:
            dst.addfile(m, src.extractfile(m))
    return out


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A results directory that already holds a run of its own."""
    root = tmp_path / "dest"
    write_run(root, optimizer="gdas", seed=7)
    return root


def assert_refused(argv: list[str], capsys: pytest.CaptureFixture[str], names: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and names in err[0], err
    return err[0]


def test_the_corpus_size() -> None:
    """docs/reliability.md lists the corpus by name: keep the two in step."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    for name in CORPUS:
        assert f"`{name}`" in page, name
    assert f"{len(CORPUS)} bad bundles" in page


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_bundles_are_refused_and_nothing_written(
    case: str, good: Path, dest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    bad = CORPUS[case](good, folder, tmp_path)
    before = snapshot(tmp_path)
    assert_refused(["verify", str(bad)], capsys, str(bad))
    assert_refused(["unpack", str(bad), str(dest)], capsys, str(bad))
    assert_refused(["unpack", str(bad), str(tmp_path / "new")], capsys, str(bad))
    assert snapshot(tmp_path) == before
    assert not (Path("/etc") / "escaped").exists()


@pytest.mark.parametrize(
    ("flags", "why"),
    [(["--max-bytes", "1K"], "over the bound"), (["--max-entries", "2"], "over the bound")],
)
def test_oversized_bundles_are_refused(
    flags: list[str], why: str, good: Path, dest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(tmp_path)
    line = assert_refused(["unpack", str(good), str(dest), *flags], capsys, str(good))
    assert why in line
    assert snapshot(tmp_path) == before


def test_the_unpacked_size_is_bounded_too(
    good: Path, dest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bound above the archive's size but below what it unpacks to (compression ratio) is refused."""
    manifest, _ = read_entries(good)
    unpacked = sum(f["size"] for f in manifest["files"])
    assert good.stat().st_size < unpacked - 10
    before = snapshot(tmp_path)
    line = assert_refused(
        ["unpack", str(good), str(dest), "--max-bytes", str(unpacked - 1)], capsys, str(good)
    )
    assert f"unpacks to {unpacked} bytes" in line
    assert snapshot(tmp_path) == before


def test_round_trip_then_analysis_over_dest(
    source: Path, good: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert "OK, " in out and "3 run(s)" in out and DAY in out
    dest = tmp_path / "dest"
    assert main(["unpack", str(good), str(dest)]) == 0
    assert [p.relative_to(dest) for p in results.run_dirs(dest)] == [
        p.relative_to(source) for p in results.run_dirs(source)
    ]
    sent = {p.relative_to(source): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    assert {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()} == sent
    res = load(dest)
    assert len(res.runs) == 3
    assert not regret.compute(res).curves.empty
    assert not figure3.shown(figure3.compute(res)).empty


def test_unpack_beside_existing_runs_clash_and_prefix(
    good: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "dest"
    assert main(["unpack", str(good), str(dest)]) == 0
    write_run(dest, optimizer="gdas", seed=7)  # the user's own run
    before = snapshot(tmp_path)
    line = assert_refused(["unpack", str(good), str(dest)], capsys, "a run already exists there")
    assert "--prefix" in line and str(dest / "digits") in line
    assert snapshot(tmp_path) == before
    assert main(["unpack", str(good), str(dest), "--prefix", "alice"]) == 0
    assert len(results.run_dirs(dest / "alice")) == 3
    assert len(load(dest / "alice").runs) == 3
    # the layout still parses over DEST: mine, the first unpack and alice's copy of the same three runs,
    # which analysis reports as duplicates (same seed and setting) rather than counting twice
    res = load(dest)
    assert len(res.runs) == 4
    assert sum(i.kind == "duplicate_run" for i in res.issues) == 3
    line = assert_refused(["unpack", str(good), str(dest), "--prefix", "alice"], capsys, "already exists")
    for bad in ("../up", "a/b", ".hidden", ""):
        before = snapshot(tmp_path)
        assert_refused(["unpack", str(good), str(dest), "--prefix", bad], capsys, "--prefix")
        assert snapshot(tmp_path) == before


def test_a_real_run_round_trips_and_restores(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "real.tar.gz"
    assert main(["pack", str(trained), "-o", str(out)]) == 0
    assert main(["unpack", str(out), str(tmp_path / "dest")]) == 0
    (run,) = results.run_dirs(trained)
    restored = load_run(tmp_path / "dest" / run.relative_to(trained))
    assert restored.epoch == 0


def test_a_malicious_checkpoint_is_installed_as_data_and_refused_on_load(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle whose checkpoint.pt would run code when unpickled is valid as a bundle (its manifest
    matches); unpacking never loads it, and bench.runs.restore refuses it without running it."""
    root = tmp_path / "sender"
    (run,) = results.run_dirs(trained)
    mine = root / run.relative_to(trained)
    shutil.copytree(run, mine)
    marker = tmp_path / "marker"
    state = torch.load(mine / results.CHECKPOINT, weights_only=True)
    state["rows"] = [TouchOnLoad(marker)]
    torch.save(state, mine / results.CHECKPOINT)
    out = tmp_path / "evil.tar.gz"
    assert main(["pack", str(root), "-o", str(out)]) == 0
    assert main(["unpack", str(out), str(tmp_path / "dest")]) == 0
    assert not marker.exists()
    installed = tmp_path / "dest" / run.relative_to(trained)
    with pytest.raises(RestoreError, match="checkpoint"):
        load_run(installed)
    assert not marker.exists()
    capsys.readouterr()


def test_pack_is_deterministic_and_selects(source: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.tar.gz", tmp_path / "sub" / "b.tar.gz"
    bundle.pack(source, a, created=DAY)
    bundle.pack(source, b, created=DAY)
    assert a.read_bytes() == b.read_bytes()
    manifest = bundle.pack(
        source, tmp_path / "c.tar.gz", bundle.Selection(optimizers=["sdarts-rs"], seeds=[1])
    )
    assert [r["path"] for r in manifest["runs"]] == ["digits/space1/sdarts-rs/paper/seed1"]
    assert manifest["runs"][0]["machine"]["cpu_model"] == "fixture CPU"
    assert manifest["harness"]["version"] == bundle.harness_version()


def test_pack_refuses_bad_input(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "old.tar.gz"
    existing.write_bytes(b"keep me")
    assert_refused(["pack", str(source), "-o", str(existing)], capsys, "already exists")
    assert existing.read_bytes() == b"keep me"
    assert_refused(["pack", str(tmp_path / "nope"), "-o", str(tmp_path / "x.tar.gz")], capsys, "nope")
    assert_refused(
        ["pack", str(source), "--optimizer", "enas", "-o", str(tmp_path / "x.tar.gz")], capsys, "no runs"
    )
    assert not (tmp_path / "x.tar.gz").exists()


@pytest.mark.usefixtures("stub_savefig")
def test_analysis_says_when_runs_come_from_other_harness_versions(good: Path, tmp_path: Path) -> None:
    """Someone else's runs unpacked beside one's own: the captions and the report name both harnesses."""
    dest = tmp_path / "dest"
    for seed in (2, 3):
        run = write_run(dest, optimizer="msdarts", seed=seed, tag="paper_bandwidth=1",
                        hp={"bandwidth": 1.0, "epsilon": 0.25})  # fmt: skip
        record = results.read_json(run / results.CONFIG_JSON)
        record["versions"]["harness"], record["git_revision"] = "9.9.9", "f" * 40
        results.write_json(run / results.CONFIG_JSON, record)
    assert main(["unpack", str(good), str(dest), "--prefix", "alice"]) == 0
    res = load(dest)
    # the fixture runs in the bundle record no harness (as runs from before the record)
    expected = "space 1: runs from one harness version and runs whose harness version is not recorded"
    assert any(line.startswith(expected) for line in machine_lines(res.runs))
    assert "harness 9.9.9 (git ffffffffffff)" in figure3.compute(res).caption
    assert any("harness 9.9.9" in note for note in regret.compute(res).notes)
    out = tmp_path / "report"
    assert report.main([str(dest), "-o", str(out)]) == 0
    assert "harness 9.9.9" in (out / report.REPORT_HTML).read_text()


def test_one_harness_adds_nothing(source: Path) -> None:
    assert machine_lines(load(source).runs) == []

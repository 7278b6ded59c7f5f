"""The data loaders never run code from a file: NumPy archives are read without pickle, and the CIFAR-10
archive is extracted only inside its directory (member checks, then tarfile's data filter)."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench import results
from bench.data import cifar10
from bench.data.download import UnsafeArchiveError
from bench.data.install import fetch_cifar10
from bench.search import spaces
from bench.truth import nb101_cache
from tests.helpers import TouchOnLoad, write_fake_cifar

NPZ_READERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "alphas.npz": (results.read_alphas, "epochs"),
    "nb101 cache": (nb101_cache.read_cache, "meta"),
    "space cache": (spaces._load_unique, "hashes"),
}


@pytest.mark.parametrize("reader", sorted(NPZ_READERS))
def test_npz_with_an_object_array_is_refused(reader: str, tmp_path: Path) -> None:
    read, key = NPZ_READERS[reader]
    marker = tmp_path / "marker"
    path = tmp_path / "evil.npz"
    np.savez(path, **{key: np.array([TouchOnLoad(marker)], dtype=object)}, other=np.zeros(2))
    with pytest.raises(ValueError, match="allow_pickle"):
        read(path)
    assert not marker.exists()


def _cifar_tarball(tmp_path: Path, extra: tarfile.TarInfo | None = None) -> Path:
    src = tmp_path / "src"
    write_fake_cifar(src / cifar10.DIRNAME, per_batch=2)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / cifar10.DIRNAME, arcname=cifar10.DIRNAME)
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"bad"))
    return archive


def test_cifar10_tarball_escaping_its_directory_is_refused(tmp_path: Path) -> None:
    info = tarfile.TarInfo(f"{cifar10.DIRNAME}/../../escaped.txt")
    info.size = 3
    archive = _cifar_tarball(tmp_path, info)
    data = tmp_path / "data"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        fetch_cifar10(data, from_file=archive, verify=False, progress=False)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (data / cifar10.DIRNAME).exists()


def test_cifar10_tarball_is_extracted_with_the_data_filter(tmp_path: Path, monkeypatch) -> None:
    seen: list[object] = []
    extractall = tarfile.TarFile.extractall

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(kwargs.get("filter"))
        return extractall(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "extractall", spy)
    target = fetch_cifar10(
        tmp_path / "data", from_file=_cifar_tarball(tmp_path), verify=False, progress=False
    )
    assert cifar10.is_complete(target)
    assert seen == ["data"]

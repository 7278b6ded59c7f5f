"""CIFAR-10 reader on tiny SYNTHETIC batches written in the official `cifar-10-batches-py` layout."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from bench.data import cifar10
from bench.data.cifar10 import CIFAR10Error, load_cifar10, load_label_names
from tests.helpers import LABEL_NAMES, write_fake_cifar


@pytest.fixture
def fake_dir(tmp_path: Path) -> tuple[Path, dict]:
    d = tmp_path / cifar10.DIRNAME
    return d, write_fake_cifar(d)


def test_train_split_concatenates_the_five_batches_in_order(fake_dir):
    d, written = fake_dir
    images, labels = load_cifar10(d, "train")
    assert images.shape == (15, 3, 32, 32) and images.dtype == np.uint8
    assert labels.shape == (15,) and labels.dtype == np.int64
    expected = np.concatenate([written[n][0] for n in cifar10.TRAIN_BATCHES])
    np.testing.assert_array_equal(images.reshape(15, -1), expected)
    assert labels.tolist() == sum((written[n][1] for n in cifar10.TRAIN_BATCHES), [])
    # Rows are CHW: the first 1024 bytes are the red plane.
    np.testing.assert_array_equal(images[0, 0], expected[0, :1024].reshape(32, 32))


def test_test_split_and_label_names(fake_dir):
    d, written = fake_dir
    images, labels = load_cifar10(d, split="test")
    np.testing.assert_array_equal(images.reshape(3, -1), written["test_batch"][0])
    assert labels.tolist() == written["test_batch"][1]
    assert load_label_names(d) == LABEL_NAMES


def test_parent_directory_is_accepted(fake_dir):
    d, _ = fake_dir
    assert load_cifar10(d.parent, "test")[0].shape == (3, 3, 32, 32)
    assert cifar10.is_complete(d) and cifar10.is_complete(d.parent)


def test_numpy1_pickles_load_without_warnings(tmp_path: Path):
    """The official files name `numpy.core.multiarray`; NumPy 2 must read them quietly."""
    d = tmp_path / cifar10.DIRNAME
    write_fake_cifar(d)
    raw = (d / "test_batch").read_bytes()
    legacy = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert legacy != raw
    (d / "test_batch").write_bytes(legacy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images, _ = load_cifar10(d, "test")
    assert images.shape == (3, 3, 32, 32)


def test_missing_directory_names_the_download_command(tmp_path: Path):
    with pytest.raises(CIFAR10Error, match="python -m bench.data download cifar10"):
        load_cifar10(tmp_path / "nowhere")


def test_missing_batch_file(fake_dir):
    d, _ = fake_dir
    (d / "data_batch_3").unlink()
    assert cifar10.missing_files(d) == ["data_batch_3"] and not cifar10.is_complete(d)
    with pytest.raises(CIFAR10Error, match="data_batch_3.*download cifar10"):
        load_cifar10(d, "train")
    load_cifar10(d, "test")  # the other split is still usable


@pytest.mark.parametrize(
    "content",
    [
        b"not a pickle at all",
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=2)[
            :-40
        ],  # truncated
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, protocol=2),  # wrong width
        pickle.dumps(
            {b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, protocol=2
        ),  # wrong dtype
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, protocol=2),  # label count
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 12]}, protocol=2),  # label range
        pickle.dumps({b"labels": [1, 2]}, protocol=2),  # no data
        pickle.dumps([1, 2, 3], protocol=2),  # not a dict
    ],
    ids=["garbage", "truncated", "width", "dtype", "count", "range", "nodata", "list"],
)
def test_malformed_batch(fake_dir, content: bytes):
    d, _ = fake_dir
    (d / "test_batch").write_bytes(content)
    with pytest.raises(CIFAR10Error, match="test_batch"):
        load_cifar10(d, "test")


def test_pickle_with_foreign_globals_is_refused_not_run(fake_dir, tmp_path: Path):
    d, _ = fake_dir
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # would create the file if it ran

    (d / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(CIFAR10Error, match="unexpected global"):
        load_cifar10(d, "test")
    assert not marker.exists()


def test_bad_split_name(fake_dir):
    with pytest.raises(ValueError, match="split"):
        load_cifar10(fake_dir[0], "valid")

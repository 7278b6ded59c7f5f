"""Read CIFAR-10 from the official `cifar-10-batches-py` layout; never downloads.

The batches are Python 2 pickles (hence `encoding="bytes"`: keys and strings come back as bytes). A
pickle can run arbitrary code, so the unpickler only resolves the handful of NumPy/codecs names that an
array needs; anything else is reported as a malformed batch instead of being executed.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np

from bench.data.download import DataError

DIRNAME = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCHES = ("test_batch",)
META = "batches.meta"
REQUIRED_FILES = (*TRAIN_BATCHES, *TEST_BATCHES, META)
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)  # the rows are CHW-flattened, 3072 bytes each
TRAIN_IMAGES = 50_000  # the training split: 5 batches of 10,000
_FETCH_HINT = "python -m bench.data download cifar10"

# (module, name) pairs an ndarray pickle needs, under NumPy 1 names (the official files) and NumPy 2 names.
_ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class CIFAR10Error(DataError):
    """CIFAR-10 files missing or malformed; the message says how to get good ones."""


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module.removeprefix("numpy.core.")  # avoids NumPy 2's deprecation shim
        return getattr(importlib.import_module(module), name)


def resolve_dir(directory: Path | str) -> Path:
    """Accept either `cifar-10-batches-py/` itself or the folder that contains it."""
    d = Path(directory)
    if not (d / META).exists() and (d / DIRNAME).is_dir():
        return d / DIRNAME
    return d


def missing_files(directory: Path | str) -> list[str]:
    d = resolve_dir(directory)
    return [name for name in REQUIRED_FILES if not (d / name).is_file() or (d / name).stat().st_size == 0]


def is_complete(directory: Path | str) -> bool:
    return Path(directory).is_dir() and not missing_files(directory)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except FileNotFoundError as e:
        raise CIFAR10Error(f"CIFAR-10 file {path} is missing; run `{_FETCH_HINT}`") from e
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
    ) as e:
        raise CIFAR10Error(
            f"{path} is not a valid CIFAR-10 batch ({e}); delete {path.parent} and run `{_FETCH_HINT}`"
        ) from e
    if not isinstance(obj, dict):
        raise CIFAR10Error(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dict; run `{_FETCH_HINT}`"
        )
    return obj


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    if b"data" not in batch or b"labels" not in batch:
        raise CIFAR10Error(f"{path} lacks b'data' or b'labels'; delete {path.parent} and run `{_FETCH_HINT}`")
    data = batch[b"data"]
    labels = np.asarray(batch[b"labels"])
    n_pixels = int(np.prod(IMAGE_SHAPE))
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != n_pixels
    ):
        shape = getattr(data, "shape", None)
        raise CIFAR10Error(
            f"{path}: b'data' must be uint8 N x {n_pixels}, got {type(data).__name__} {shape}; "
            f"delete {path.parent} and run `{_FETCH_HINT}`"
        )
    if labels.ndim != 1 or labels.shape[0] != data.shape[0] or not np.issubdtype(labels.dtype, np.integer):
        raise CIFAR10Error(
            f"{path}: {labels.shape} labels for {data.shape[0]} images; "
            f"delete {path.parent} and run `{_FETCH_HINT}`"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise CIFAR10Error(f"{path}: labels outside 0..{NUM_CLASSES - 1}; run `{_FETCH_HINT}`")
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def load_cifar10(directory: Path | str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8, N x 3 x 32 x 32) and labels (int64, N) of the "train" or "test" split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = resolve_dir(directory)
    if not d.is_dir():
        raise CIFAR10Error(f"CIFAR-10 directory {d} does not exist; run `{_FETCH_HINT}` or pass its path")
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    absent = [n for n in names if not (d / n).is_file()]
    if absent:
        raise CIFAR10Error(f"{d} lacks {', '.join(absent)}; run `{_FETCH_HINT}` to get the complete dataset")
    parts = [_read_batch(d / n) for n in names]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return np.ascontiguousarray(images), labels


def load_label_names(directory: Path | str) -> list[str]:
    """Class names from `batches.meta`, in label order."""
    path = resolve_dir(directory) / META
    meta = _unpickle(path)
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise CIFAR10Error(f"{path} lacks {NUM_CLASSES} b'label_names'; run `{_FETCH_HINT}`")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]

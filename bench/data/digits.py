"""scikit-learn's bundled 8x8 digits in one fixed stratified train/valid/test split.

The embedded benchmark's only data: its supernet searches on the train split (bench.data.splits) and its
ground truth (bench.truth.digits_protocol) trains on the train split and scores on valid and test.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["SPLIT_SEED", "TEST_SIZE", "VALID_SIZE", "load_digits_splits", "shared_splits", "split_indices"]

SPLIT_SEED = 0
TEST_SIZE = 450  # 25 %: accuracy steps of 0.22 points, enough to tell architectures apart
VALID_SIZE = 360  # 20 %; the remaining 987 images are 'train'


@lru_cache(maxsize=4)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32).reshape(-1, 1, 8, 8) / 16.0, digits.target.astype(np.int64)


def split_indices(seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Row indices of the fixed stratified split into sklearn's digits array (disjoint, covering)."""
    from sklearn.model_selection import train_test_split

    _, y = _digits()
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=seed)
    train, valid = train_test_split(rest, test_size=VALID_SIZE, stratify=y[rest], random_state=seed)
    return {"train": train, "valid": valid, "test": test}


@lru_cache(maxsize=4)
def shared_splits(seed: int = SPLIT_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`load_digits_splits` without the copies: one cached set of arrays per process, READ-ONLY by
    contract (for trainers that only index into them)."""
    x, y = _digits()
    parts = split_indices(seed)
    # One scalar mean/std from the train split only: the valid/test images never leak into training.
    mean, std = float(x[parts["train"]].mean()), float(x[parts["train"]].std())
    return {name: (((x[p] - mean) / std).astype(np.float32), y[p]) for name, p in parts.items()}


def load_digits_splits(seed: int = SPLIT_SEED) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The fixed stratified train/valid/test split of the 1,797 digits (987/360/450 images).

    X is float32 N x 1 x 8 x 8, standardized with the train split's mean and std; y is int64. The
    train split is in shuffled order, so a consumer may cut it into halves by position. Fresh copies:
    callers may modify them.
    """
    return {k: (x.copy(), y.copy()) for k, (x, y) in shared_splits(seed).items()}

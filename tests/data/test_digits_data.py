"""The embedded benchmark's data: scikit-learn's 8x8 digits in one fixed stratified split."""

from __future__ import annotations

import numpy as np

from bench.data.digits import load_digits_splits, shared_splits, split_indices
from bench.data.splits import load_digits_search_data


def test_splits_fixed_disjoint_stratified() -> None:
    idx = split_indices()
    sizes = {k: len(v) for k, v in idx.items()}
    assert sizes == {"train": 987, "valid": 360, "test": 450}
    all_idx = np.concatenate(list(idx.values()))
    assert len(np.unique(all_idx)) == 1797  # disjoint and covering
    again = split_indices()
    assert all(np.array_equal(idx[k], again[k]) for k in idx)
    s = load_digits_splits()
    for name, (x, y) in s.items():
        assert x.shape == (sizes[name], 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
        counts = np.bincount(y, minlength=10)
        assert counts.min() >= 0.9 * sizes[name] / 10 * 0.95  # stratified: every class ~10 %
    assert abs(float(s["train"][0].mean())) < 1e-5 and abs(float(s["train"][0].std()) - 1) < 1e-4
    s["train"][0][:] = 0  # copies: mutating one answer does not change the next
    assert float(np.abs(load_digits_splits()["train"][0]).sum()) > 0


def test_shared_splits_are_the_copied_ones_and_feed_the_search_data() -> None:
    copied, shared = load_digits_splits(), shared_splits()
    assert all(np.array_equal(copied[k][0], shared[k][0]) for k in copied)
    assert copied["train"][0] is not shared["train"][0]
    data = load_digits_search_data(train_portion=0.5)
    assert data.name == "digits" and len(data.x_train) + len(data.x_valid) == 987
    assert np.array_equal(data.x_train.numpy(), shared["train"][0][:493])

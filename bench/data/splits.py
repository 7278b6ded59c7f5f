"""Search data: the training split halved into a weight half and an architecture half, and batches.

Batches are drawn from in-memory tensors with a generator seeded by (seed, epoch, stream), so the
data order of any epoch is a pure function of the run's seed: nothing to checkpoint, and a resumed
run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
STREAM_TRAIN, STREAM_VALID, STREAM_HESSIAN = 0, 1, 2


@dataclass
class SearchData:
    """The two halves of the search data, as float tensors on the CPU."""

    name: str
    x_train: Tensor  # trains the weights
    y_train: Tensor
    x_valid: Tensor  # drives the architecture (and the one-shot validation accuracy)
    y_valid: Tensor
    num_classes: int
    in_channels: int
    augment: bool = False

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, min(len(self.x_train), len(self.x_valid)) // batch_size)


def split_halves(x: Tensor, y: Tensor, train_portion: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """First `train_portion` trains the weights, the rest the alphas (the reference's fixed split)."""
    split = int(np.floor(train_portion * len(x)))
    if split < 1 or split >= len(x):
        raise ValueError(f"train_portion={train_portion} leaves an empty half of {len(x)} images")
    return x[:split], y[:split], x[split:], y[split:]


def load_digits_search_data(train_portion: float, data_limit: int | None = None) -> SearchData:
    """The embedded benchmark's search data: the train split of scikit-learn's 8x8 digits."""
    from bench.data.digits import load_digits_splits

    x, y = load_digits_splits()["train"]
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
    if data_limit is not None:
        x, y = x[:data_limit], y[:data_limit]
    xt, yt, xv, yv = split_halves(x, y, train_portion)
    return SearchData("digits", xt, yt, xv, yv, num_classes=10, in_channels=int(x.shape[1]))


def load_cifar10_search_data(
    cifar_dir: Path, train_portion: float, data_limit: int | None = None, augment: bool = True
) -> SearchData:
    """CIFAR-10's 50k training images, normalized, halved into weight and architecture data."""
    from bench.data.cifar10 import load_cifar10

    images, labels = load_cifar10(cifar_dir, split="train")
    if data_limit is not None:
        images, labels = images[:data_limit], labels[:data_limit]
    x = torch.from_numpy(images).float().div_(255.0)
    mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    x = (x - mean) / std
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    xt, yt, xv, yv = split_halves(x, y, train_portion)
    return SearchData("cifar10", xt, yt, xv, yv, num_classes=10, in_channels=3, augment=augment)


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    # Distinct, reproducible streams per (seed, epoch, purpose).
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])
    )


def _augment(x: Tensor, gen: torch.Generator, pad: int = 4) -> Tensor:
    """Random crop with zero padding and horizontal flip, per image (the DARTS CIFAR transform)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def epoch_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    seed: int,
    epoch: int,
    stream: int,
    device: torch.device,
    augment: bool = False,
    steps: int | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled mini-batches for one epoch (full batches only, so BatchNorm never sees a tiny one)."""
    gen = _generator(seed, epoch, stream)
    order = torch.randperm(len(x), generator=gen)
    n_steps = len(x) // batch_size if steps is None else steps
    for i in range(n_steps):
        idx = order[i * batch_size : (i + 1) * batch_size]
        xb = x[idx]
        if augment:
            xb = _augment(xb, gen)
        yield xb.to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


def fixed_batch(
    x: Tensor, y: Tensor, batch_size: int, seed: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """One reproducible minibatch (the Hessian's validation batch), the same every epoch."""
    gen = _generator(seed, 0, STREAM_HESSIAN)
    idx = torch.randperm(len(x), generator=gen)[: min(batch_size, len(x))]
    return x[idx].to(device), y[idx].to(device)

"""Search data: the training split halved into a weight half and an architecture half, and batches.

Batches are drawn from in-memory tensors with a generator seeded by (seed, epoch, stream), so the
data order of any epoch is a pure function of the run's seed: nothing to checkpoint, and a resumed
run sees exactly the batches an uninterrupted one would.

How the published scripts (DARTS' CIFAR-10 pipeline in NAS-Bench-1Shot1, SDARTS, MS-DARTS) batch and
augment, and the switches that reproduce it (bench/runs/config.py names the settings):

- A DataLoader without `drop_last`: an epoch is ceil(25,000 / 96) = 261 steps, the last one on the 40
  remaining images (`partial=True`); the validation iterator restarts with a new shuffle when it runs
  out (`steps` beyond one pass). The corrected protocol drops the partial batch.
- RandomCrop(32, padding=4) runs on the PIL image, before ToTensor/Normalize, so the padding is black
  (after normalization: -mean/std per channel; `Augmentation.pad_value`); padding the normalized
  tensor with zeros pads with the mean colour instead.
- Cutout (off unless asked) runs after Normalize: a square of side `cutout_length` centred on a uniform
  pixel, clipped at the border, set to 0 (the mean) with probability `cutout_prob` per image. The
  scripts' linear "cutout_prob schedule" sets an attribute the Cutout transform never reads, so the
  probability is constant.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)
STREAM_TRAIN, STREAM_VALID, STREAM_HESSIAN, STREAM_PLUGIN_VALID = 0, 1, 2, 3


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
    augment: bool = False  # whether the training transform applies to these images (CIFAR-10, not digits)
    # A black pixel after normalization, per channel (what padding before normalization adds); None: 0.
    black: tuple[float, ...] | None = None

    def steps_per_epoch(self, batch_size: int, partial: bool = False) -> int:
        """Search steps per epoch. `partial` (the scripts): one pass over the weight half including its
        last, smaller batch, ceil(n_train / batch_size); else full batches of both halves only."""
        n = len(self.x_train) if partial else min(len(self.x_train), len(self.x_valid))
        return batches_per_pass(n, batch_size, partial)

    def augmentation(
        self, crop_padding: str = "black", cutout_length: int = 0, cutout_prob: float = 1.0
    ) -> Augmentation | None:
        """The training transform for these images (None when they are not augmented).

        `crop_padding`: "black" pads the crop with black pixels as the scripts do (before normalization),
        "mean" with zeros after normalization (the mean colour). `cutout_length` 0: no cutout.
        """
        if not self.augment:
            return None
        if crop_padding not in CROP_PADDINGS:
            raise ValueError(f"crop_padding={crop_padding!r}: choose {' or '.join(CROP_PADDINGS)}")
        fill = self.black if crop_padding == "black" else None
        return Augmentation(pad_value=fill, cutout_length=cutout_length, cutout_prob=cutout_prob)


CROP_PADDINGS = ("black", "mean")


@dataclass(frozen=True)
class Augmentation:
    """DARTS' CIFAR-10 training transform on normalized tensors: random crop of the image padded by
    `crop_padding` pixels of `pad_value` (per channel; None: 0), horizontal flip, then cutout."""

    crop_padding: int = 4
    pad_value: tuple[float, ...] | None = None
    flip: bool = True
    cutout_length: int = 0  # 0: no cutout
    cutout_prob: float = 1.0

    def __call__(self, x: Tensor, gen: torch.Generator) -> Tensor:
        out = _crop_flip(x, gen, self.crop_padding, self.pad_value, self.flip)
        if self.cutout_length > 0:
            out = out * cutout_masks(len(out), out.shape[-2], out.shape[-1], self.cutout_length,
                                     self.cutout_prob, gen).to(out.dtype)  # fmt: skip
        return out


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
    return cifar10_halves(x, y, train_portion, augment)


def cifar10_halves(
    x: Tensor, y: Tensor, train_portion: float, augment: bool = True, name: str = "cifar10"
) -> SearchData:
    """Normalized CIFAR-shaped images (N x 3 x 32 x 32) and labels as search data: the weight and the
    architecture half, CIFAR-10's augmentation and black padding (also `bench.perf protocol`'s
    synthetic stand-in, which must batch exactly as the real data do)."""
    xt, yt, xv, yv = split_halves(x, y, train_portion)
    black = tuple(float(-m / s) for m, s in zip(CIFAR_MEAN, CIFAR_STD, strict=True))
    return SearchData(name, xt, yt, xv, yv, num_classes=10, in_channels=3, augment=augment, black=black)


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    # Distinct, reproducible streams per (seed, epoch, purpose).
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1)[0])
    )


def _crop_flip(
    x: Tensor,
    gen: torch.Generator,
    pad: int = 4,
    pad_value: tuple[float, ...] | None = None,
    flip: bool = True,
) -> Tensor:
    """Random crop of the padded image and horizontal flip, per image (the DARTS CIFAR transform)."""
    n, c, h, w = x.shape
    if pad_value is None:
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    else:
        padded = (
            torch.as_tensor(pad_value, dtype=x.dtype).view(1, c, 1, 1).repeat(n, 1, h + 2 * pad, w + 2 * pad)
        )
        padded[:, :, pad : pad + h, pad : pad + w] = x
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])
    if flip:
        flipped = torch.rand(n, generator=gen) < 0.5
        out[flipped] = out[flipped].flip(3)
    return out


def cutout_masks(n: int, h: int, w: int, length: int, prob: float, gen: torch.Generator) -> Tensor:
    """(n, 1, h, w) 0/1 masks of DARTS' Cutout: with probability `prob` per image, zero the square
    [y - L//2, y + L//2) x [x - L//2, x + L//2) around a uniform pixel (y, x), clipped at the border."""
    apply = torch.rand(n, generator=gen) < prob
    cy = torch.randint(0, h, (n,), generator=gen)
    cx = torch.randint(0, w, (n,), generator=gen)
    half = length // 2
    rows, cols = torch.arange(h), torch.arange(w)
    in_rows = (rows >= (cy - half).clamp(0, h)[:, None]) & (rows < (cy + half).clamp(0, h)[:, None])
    in_cols = (cols >= (cx - half).clamp(0, w)[:, None]) & (cols < (cx + half).clamp(0, w)[:, None])
    cut = in_rows[:, :, None] & in_cols[:, None, :] & apply[:, None, None]
    return (~cut).float().unsqueeze(1)


def batches_per_pass(n: int, batch_size: int, partial: bool) -> int:
    """Mini-batches in one pass over n examples: with `partial` the smaller remainder counts (a DataLoader
    without drop_last), without it only full batches; at least one."""
    return max(1, math.ceil(n / batch_size) if partial else n // batch_size)


def batch_stream(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    seed: int,
    epoch: int,
    stream: int,
    device: torch.device,
    augment: Augmentation | None = None,
    partial: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless shuffled mini-batches: pass after pass over (x, y), each pass freshly shuffled.

    `partial=False`: full batches only; `partial=True`: each pass ends with its smaller remainder batch,
    as a DataLoader without drop_last, whose iterator the scripts restart when it runs out.
    """
    gen = _generator(seed, epoch, stream)
    per_pass = batches_per_pass(len(x), batch_size, partial)
    while True:
        order = torch.randperm(len(x), generator=gen)
        for i in range(per_pass):
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, gen)
            yield xb.to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


def epoch_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    seed: int,
    epoch: int,
    stream: int,
    device: torch.device,
    augment: Augmentation | None = None,
    steps: int | None = None,
    partial: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch's mini-batches of `batch_stream`: `steps` of them (default: one pass); steps beyond
    one pass continue with a freshly shuffled pass."""
    if steps is None:
        steps = batches_per_pass(len(x), batch_size, partial)
    return itertools.islice(
        batch_stream(x, y, batch_size, seed, epoch, stream, device, augment, partial), steps
    )


def fixed_batch(
    x: Tensor, y: Tensor, batch_size: int, seed: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """One reproducible minibatch (the Hessian's validation batch), the same every epoch."""
    gen = _generator(seed, 0, STREAM_HESSIAN)
    idx = torch.randperm(len(x), generator=gen)[: min(batch_size, len(x))]
    return x[idx].to(device), y[idx].to(device)


def random_batch(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    seed: int,
    epoch: int,
    device: torch.device,
    augment: Augmentation | None = None,
) -> tuple[Tensor, Tensor]:
    """A fresh random minibatch for `epoch`, augmented like the search data (RobustDARTS' Hessian batch:
    the first batch of a new pass over the validation half)."""
    gen = _generator(seed, epoch + 1, STREAM_HESSIAN)  # epoch 0's stream belongs to fixed_batch
    idx = torch.randperm(len(x), generator=gen)[: min(batch_size, len(x))]
    xb = x[idx]
    if augment is not None:
        xb = augment(xb, gen)
    return xb.to(device), y[idx].to(device)

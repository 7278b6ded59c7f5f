"""The NAS-Bench-1Shot1 one-shot supernet.

Follows the reference search model (automl/nasbench-1shot1, `optimizers/darts/model_search.py` and
`operations.py`): a 3×3 ConvBnRelu stem to C channels; 9 cells in 3 stacks with a 2×2 max-pool and
channel doubling before the first cell of stacks 2 and 3; one set of mixing weights shared by all cells;
head = ReLU → 1×1 conv (C_last·B → C_last) → BatchNorm(affine=False) → global average pool → linear.

Cell (input s0 with C_in channels; C_in = C for the first cell, else the previous cell's C·B):
choice block i gets its own 1×1 ConvBnRelu projection of s0 to C channels; its input is
Σ_j w_ij·x_j over [proj_i(s0), node_1 … node_(i-1)] (a plain sum for nodes without input weights:
node 1 of every space, node 2 of space 1); it applies the mixed op Σ_o w_io·op_o(x) over
PRIMITIVES (maxpool3x3, conv3x3-bn-relu, conv1x1-bn-relu, all at stride 1, C → C). The cell output
is w_out[0]·proj_out(s0) + concat_i(w_out[i]·node_i), where proj_out is a 1×1 ConvBnRelu to C·B.
Every ConvBnRelu uses an affine BatchNorm (the reference's NAS-Bench ops ignore their `affine=False`).

The supernet never normalizes: `forward(x, weights)` takes the MIXING WEIGHTS (softmax, Gumbel,
perturbed simplex points …), computed by the optimizer from alphas it owns.

Differences from the reference code, all deliberate:

- By default downsampling is NAS-Bench-101's: 2×2/2 max-pool without padding (32→16→8; `ceil_mode=True`
  reproduces TensorFlow's 'same' padding on odd sizes). The reference pads by 1 (32→17→9):
  `downsample_padding=1` (floor mode, as PyTorch's default).
- By default BatchNorm momentum is 0.003, the PyTorch equivalent of NAS-Bench-101's TF decay 0.997; the
  reference passes 0.997 as PyTorch momentum, so its running statistics follow only the last train-mode
  batch, and leaves PyTorch's default 0.1 in the head's BatchNorm (`bn_momentum`, `head_bn_momentum`).
  With 0.003 running statistics average over ~1/0.003 ≈ 330 steps, so eval-mode outputs are poor in the
  first epoch or so. `reference_quirks=True` is shorthand for all three reference values (pool padding 1,
  momentum 0.997, head BN momentum 0.1); explicit arguments win over it. The run settings of the
  `paper` preset are the reference's (bench/runs/config.py).
- On CPU the activations are channels_last (the input is converted in `forward`): oneDNN's 1×1
  convolutions and ATen's max-pool are several times faster so. Same function; on CUDA the input's
  format is kept.
- ReLUs run in place and the weighted sums accumulate in place (autograd's version checks guarantee
  this never clobbers a tensor saved for backward).
- Weights may be given per cell (an extra leading dimension of size `num_cells` on any weight tensor).
  The reference GDAS samples its Gumbel weights anew for every cell; this allows the same.
- GDAS (`op_choice`): exactly the chosen op runs in each choice block, times its mixing weight, so a
  straight-through hard one-hot passes gradient to the alphas. The reference instead runs every op
  whose weight is nonzero, which is the same for one-hot weights.
- PC-DARTS (`partial_channels=K`): the ops see the first C/K channels; the result, concatenated with
  the untouched channels, is channel-shuffled with K groups in one copy (stack + flatten), the same
  permutation as PC-DARTS' view/transpose `channel_shuffle`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwad
import torch.nn.functional as F
from torch import Tensor, nn

from bench.errors import HarnessError
from bench.search.spaces import PRIMITIVES, SearchSpace

log = logging.getLogger(__name__)

BN_EPS = 1e-5
BN_MOMENTUM = 0.003  # PyTorch momentum equivalent to NAS-Bench-101's TF decay 0.997
REFERENCE_BN_MOMENTUM = 0.997  # what the reference passes (TF decay used as PyTorch momentum)
REFERENCE_HEAD_BN_MOMENTUM = 0.1  # PyTorch's default, left in place by the reference's head


class SupernetInputError(HarnessError, ValueError):
    """Mixing weights, op choices or a configuration that do not fit the supernet."""


class ConvBnRelu(nn.Module):
    """conv(bias=False) → BatchNorm(affine) → ReLU, 'same' padding (NAS-Bench-101's conv_bn_relu)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, bn_momentum: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=bn_momentum)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training and self.bn.running_var is not None:
            return F.relu(self._folded_conv(x), inplace=True)
        # In place is safe: BatchNorm's backward needs its input, not its output.
        return F.relu(self.bn(self.conv(x)), inplace=True)

    def _folded_conv(self, x: Tensor) -> Tensor:
        """Eval-mode BN folded into the conv: one pass over the activations instead of two.

        Eval-mode BN is the affine map (x - mean) * g / sqrt(var + eps) + b, so it becomes a scaled
        kernel and a bias. The eval forwards that MS-DARTS' samples, SDARTS-ADV's attack and the one-shot
        evaluation run are ~10-20% cheaper so; the folding is differentiable, so gradients w.r.t. the
        input (PGD) and the BN parameters stay exact.
        """
        bn = self.bn
        scale = torch.rsqrt(bn.running_var + bn.eps)
        bias = -bn.running_mean * scale
        if bn.weight is not None:
            scale = scale * bn.weight
            bias = bias * bn.weight + bn.bias
        weight = self.conv.weight * scale.view(-1, 1, 1, 1)
        return F.conv2d(x, weight, bias, padding=self.conv.padding)


class MaxPool3x3(nn.MaxPool2d):
    """3×3 max-pool, stride 1, padding 1; without autograd, a separable version ~3× faster on CPU.

    With no gradient to compute (MS-DARTS' sample losses, one-shot evaluation) the pool runs as a 1×3
    then a 3×1 elementwise maximum over shifted views: the same values bit for bit (max is exact), none
    of the argmax indices ATen's kernel writes for a backward that will not come. With autograd the
    ATen kernel runs, because its backward routes a tied gradient to one input where torch.maximum's
    splits it, and ties are common after ReLUs.
    """

    def __init__(self) -> None:
        super().__init__(3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        if (torch.is_grad_enabled() and x.requires_grad) or fwad.unpack_dual(x).tangent is not None:
            return super().forward(x)  # a tangent must be routed like the backward routes gradients
        p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
        rows = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
        return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """PC-DARTS' shuffle: channel g·(C/groups) + r moves to r·groups + g."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    """Σ_o w_o·op_o(x) over PRIMITIVES, optionally on the first C/K channels only (PC-DARTS)."""

    def __init__(self, channels: int, bn_momentum: float, partial_channels: int = 1) -> None:
        super().__init__()
        self.partial_channels = partial_channels
        self.op_channels = channels // partial_channels
        c = self.op_channels
        ops = {
            "maxpool3x3": MaxPool3x3,
            "conv3x3-bn-relu": lambda: ConvBnRelu(c, c, 3, bn_momentum),
            "conv1x1-bn-relu": lambda: ConvBnRelu(c, c, 1, bn_momentum),
        }
        self.ops = nn.ModuleList(ops[name]() for name in PRIMITIVES)

    def forward(self, x: Tensor, weights: Sequence[Tensor], choice: int | None = None) -> Tensor:
        k = self.partial_channels
        xa = x[:, : self.op_channels] if k > 1 else x
        if choice is not None:
            y = weights[choice] * self.ops[choice](xa)
        else:
            # Convs first so the fresh product is a new tensor we may accumulate into in place.
            y = weights[1] * self.ops[1](xa)
            y.addcmul_(weights[2], self.ops[2](xa))
            y.addcmul_(weights[0], self.ops[0](xa))
        if k == 1:
            return y
        # cat([y, rest]) followed by channel_shuffle(·, k) as one copy: stacking the k groups along a
        # new channel-minor dim puts channel r of group g at r·k + g. In channels_last the channel dim
        # is innermost in memory, so stack there to keep the result channels_last.
        groups = [y, *x[:, self.op_channels :].split(self.op_channels, dim=1)]
        if y.is_contiguous(memory_format=torch.channels_last):
            nhwc = torch.stack([g.permute(0, 2, 3, 1) for g in groups], dim=-1).flatten(-2)
            return nhwc.permute(0, 3, 1, 2)
        return torch.stack(groups, dim=2).flatten(1, 2)


@dataclass
class _CellWeights:
    """One cell's mixing weights as 0-dim tensors, unbound once per forward."""

    ops: list[tuple[Tensor, ...]]  # per choice block: one weight per PRIMITIVE
    output: tuple[Tensor, ...]  # input edge, then choice blocks 1..B
    inputs: list[tuple[Tensor, ...] | None]  # per choice block: weights of candidates, None = plain sum


class Cell(nn.Module):
    """One NAS-Bench-1Shot1 cell; all choice blocks on `channels` channels, output channels·B."""

    def __init__(
        self, c_in: int, channels: int, num_blocks: int, bn_momentum: float, partial_channels: int = 1
    ) -> None:
        super().__init__()
        self.channels = channels
        self.num_blocks = num_blocks
        # 1×1 projections of the cell input for choice blocks 1..B (C each), then the output edge (C·B).
        # Separate, as in the reference: one fused conv + split measured no faster in channels_last
        # (the slices need copies) and, split carelessly, its backward turns gradients NCHW.
        self.projections = nn.ModuleList(
            [ConvBnRelu(c_in, channels, 1, bn_momentum) for _ in range(num_blocks)]
            + [ConvBnRelu(c_in, num_blocks * channels, 1, bn_momentum)]
        )
        self.blocks = nn.ModuleList(
            MixedOp(channels, bn_momentum, partial_channels) for _ in range(num_blocks)
        )

    def forward(self, s0: Tensor, w: _CellWeights, choices: Sequence[int] | None = None) -> Tensor:
        states: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            iw = w.inputs[i]
            proj = self.projections[i](s0)
            if iw is None:
                x = proj
                for s in states:
                    x = x + s
            else:
                x = iw[0] * proj
                for wj, s in zip(iw[1:], states, strict=True):
                    x.addcmul_(wj, s)
            states.append(block(x, w.ops[i], None if choices is None else choices[i]))
        out = torch.cat([wi * s for wi, s in zip(w.output[1:], states, strict=True)], dim=1)
        return out.addcmul_(w.output[0], self.projections[-1](s0))


class Supernet(nn.Module):
    """The one-shot model of a NAS-Bench-1Shot1 search space; mixing weights come from outside."""

    def __init__(
        self,
        space: SearchSpace,
        init_channels: int = 16,
        num_classes: int = 10,
        in_channels: int = 3,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        reference_quirks: bool = False,
        partial_channels: int = 1,
        bn_momentum: float | None = None,
        head_bn_momentum: float | None = None,
        downsample_padding: int | None = None,
    ) -> None:
        super().__init__()
        if partial_channels < 1 or init_channels % partial_channels:
            raise SupernetInputError(
                f"partial_channels={partial_channels} must be ≥1 and divide init_channels={init_channels}; "
                "pick a divisor such as 4 with the default 16 channels"
            )
        if min(init_channels, num_classes, in_channels, num_stacks, cells_per_stack) < 1:
            raise SupernetInputError("channel, class, stack and cell counts must all be ≥1; fix the config")
        self.space = space
        self.num_blocks = space.num_blocks
        self.alpha_shapes = dict(space.alpha_shapes())
        self.reference_quirks = reference_quirks
        self.partial_channels = partial_channels
        self.num_cells = num_stacks * cells_per_stack
        # Nodes whose input is a weighted sum; the others (node 1, space 1's node 2) sum plainly.
        self._input_tensor = {
            int(name.split("_", 1)[1]): k
            for k, name in enumerate(self.alpha_shapes)
            if name.startswith("inputs_")
        }

        if bn_momentum is None:
            bn_momentum = REFERENCE_BN_MOMENTUM if reference_quirks else BN_MOMENTUM
        if head_bn_momentum is None:
            head_bn_momentum = REFERENCE_HEAD_BN_MOMENTUM if reference_quirks else BN_MOMENTUM
        if downsample_padding is None:
            downsample_padding = 1 if reference_quirks else 0
        if downsample_padding not in (0, 1):
            raise SupernetInputError(
                f"downsample_padding={downsample_padding}: choose 0 (NB-101) or 1 (reference)"
            )
        bn_m, head_m = bn_momentum, head_bn_momentum
        self.stem = ConvBnRelu(in_channels, init_channels, 3, bn_m)
        # NB-101 pools without padding; ceil_mode gives TF 'same' on odd sizes (identical on even).
        # The reference pads by 1 in PyTorch's floor mode.
        self.downsample = nn.MaxPool2d(
            2, stride=2, padding=downsample_padding, ceil_mode=downsample_padding == 0
        )
        self.downsample_before = frozenset(range(cells_per_stack, self.num_cells, cells_per_stack))
        cells = []
        c, c_in = init_channels, init_channels
        for i in range(self.num_cells):
            if i in self.downsample_before:
                c *= 2
            cells.append(Cell(c_in, c, self.num_blocks, bn_m, partial_channels))
            c_in = c * self.num_blocks
        self.cells = nn.ModuleList(cells)
        self.head_conv = nn.Conv2d(c_in, c, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(c, eps=BN_EPS, momentum=head_m, affine=False)
        self.classifier = nn.Linear(c, num_classes)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The network weights (all parameters: the alphas are owned by the optimizer)."""
        return list(self.parameters())

    def forward(
        self, x: Tensor, weights: Sequence[Tensor], op_choice: Tensor | Sequence | None = None
    ) -> Tensor:
        """Logits for `x` under mixing `weights` (alpha_shapes order, or per cell with a leading dim).

        `op_choice`: one op index per choice block (or per cell and block, shape (num_cells, B)); then
        only that op runs, multiplied by its mixing weight (GDAS).
        """
        cell_weights = self._cell_weights(weights)
        choices = self._choices(op_choice)
        s = self._stem(x)
        for i in range(self.num_cells):
            s = self._cell(i, s, cell_weights[i], choices[i])
        return self._head(s)

    def stages(
        self, mixing_fn: Callable[[Sequence[Tensor]], Sequence[Tensor]]
    ) -> list[Callable[[Tensor, Sequence[Tensor]], Tensor]]:
        """`forward` as a chain of stages (stem, each cell with its downsampling, head), each mapping
        (activation, alphas) to the next activation, with mixing weights `mixing_fn(alphas)`.

        Lets second derivatives be taken one stage at a time (`bench.search.hessian`, hvp="segmented"), so
        only one cell's graph is alive at once.
        """

        def stem(x: Tensor, alphas: Sequence[Tensor]) -> Tensor:
            return self._stem(x)

        def cell(i: int) -> Callable[[Tensor, Sequence[Tensor]], Tensor]:
            def run(s: Tensor, alphas: Sequence[Tensor]) -> Tensor:
                return self._cell(i, s, self._cell_weights(list(mixing_fn(alphas)))[i], None)

            return run

        def head(s: Tensor, alphas: Sequence[Tensor]) -> Tensor:
            return self._head(s)

        return [stem, *(cell(i) for i in range(self.num_cells)), head]

    def _stem(self, x: Tensor) -> Tensor:
        if x.device.type == "cpu" and x.dim() == 4:
            # oneDNN's convolutions and ATen's max-pool are several times faster in channels_last on
            # CPU; every later activation inherits the format from here.
            x = x.contiguous(memory_format=torch.channels_last)
        return self.stem(x)

    def _cell(self, i: int, s: Tensor, weights: _CellWeights, choices: Sequence[int] | None) -> Tensor:
        if i in self.downsample_before:
            s = self.downsample(s)
        return self.cells[i](s, weights, choices)

    def _head(self, s: Tensor) -> Tensor:
        s = self.head_bn(self.head_conv(F.relu(s)))
        return self.classifier(s.mean(dim=(2, 3)))

    # ---- argument handling -------------------------------------------------------------------
    def _cell_weights(self, weights: Sequence[Tensor]) -> list[_CellWeights]:
        if len(weights) != len(self.alpha_shapes):
            raise SupernetInputError(
                f"expected {len(self.alpha_shapes)} mixing-weight tensors ({', '.join(self.alpha_shapes)}), "
                f"got {len(weights)}; pass one tensor per entry of space.alpha_shapes()"
            )
        n = self.num_cells
        per_tensor: list[list[tuple]] = []  # per arch tensor, per cell: its weights as 0-dim tensors
        for (name, shape), w in zip(self.alpha_shapes.items(), weights, strict=True):
            nested = name == "ops"
            if tuple(w.shape) == shape:  # shared by all cells: unbind once
                per_tensor.append([_unbind(w if nested else w[0], nested)] * n)
            elif tuple(w.shape) == (n, *shape):
                per_tensor.append([_unbind(w[i] if nested else w[i, 0], nested) for i in range(n)])
            else:
                raise SupernetInputError(
                    f"mixing weights {name!r} have shape {tuple(w.shape)}, expected {shape} "
                    f"or {(n, *shape)} (per cell)"
                )
        return [
            _CellWeights(
                ops=list(per_tensor[0][i]),
                output=per_tensor[1][i],
                inputs=[
                    per_tensor[self._input_tensor[node]][i] if node in self._input_tensor else None
                    for node in range(1, self.num_blocks + 1)
                ],
            )
            for i in range(n)
        ]

    def _choices(self, op_choice: Tensor | Sequence[int] | None) -> list[list[int] | None]:
        n, b = self.num_cells, self.num_blocks
        if op_choice is None:
            return [None] * n
        c = torch.as_tensor(op_choice)
        if c.dtype.is_floating_point or c.dtype == torch.bool or tuple(c.shape) not in ((b,), (n, b)):
            raise SupernetInputError(
                f"op_choice must be integer op indices of shape ({b},) or ({n}, {b}) (per cell), "
                f"got {c.dtype} of shape {tuple(c.shape)}"
            )
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= len(PRIMITIVES)):
            raise SupernetInputError(f"op_choice entries must be op indices 0..{len(PRIMITIVES) - 1}")
        rows = c.tolist()
        return [rows] * n if c.dim() == 1 else rows


def _unbind(t: Tensor, nested: bool) -> tuple:
    """A 1-D weight row as a tuple of 0-dim tensors (2-D: a tuple of such tuples)."""
    return tuple(r.unbind(0) for r in t.unbind(0)) if nested else t.unbind(0)

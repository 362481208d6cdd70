r"""The operations a cell's node may apply to an input: appendix C's 11, in one registry.

Every operation maps a (B, C, H, W) feature map to (B, C, H', W') with the *same* channel
count C and $H' = \lceil H / s \rceil$ for stride $s \in \{1, 2\}$ ($H' = H$ at stride 1).
Stride 2 is used only on a reduction cell's two cell inputs (NAO, Luo et al. 2018).

* convolutions are LeakyReLU -> conv -> `LearnerBatchNorm` (the "ReLU-conv-BN" block of
  NASNet/NAO, with the library's LeakyReLU(0.1)); padding $k/2$ keeps the size, and a
  $1{\times}k + k{\times}1$ conv is two convs in a row (the first carries the row stride,
  the second the column stride);
* pools use TensorFlow's "SAME" padding: $p = \max((\lceil H/s\rceil - 1)s + k - H, 0)$
  pixels in total, $\lfloor p/2 \rfloor$ before and the rest after. That is the only way an
  even window (2x2) keeps $H$ at stride 1: one pixel of padding, after. Max pools pad with
  $-\infty$, average pools average over the real pixels only (padding is not counted);
* identity at stride 2 cannot skip: it becomes `FactorizedReduce`, two strided 1x1 convs
  on pixel grids offset by one, concatenated (NASNet/DARTS).

A researcher adds an operation with the decorator; sample it by naming it in
`Genotype.sample(ops=...)` or `NASConfig.ops`::

    @register_operation("conv_5x5")
    def conv_5x5(channels, stride, weight_norm):
        return ConvBN(channels, 5, stride, weight_norm)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import registrar
from ..nn import LEAKY_SLOPE, LearnerBatchNorm, WNConv2d

__all__ = ["OPERATIONS", "PAPER_OPERATIONS", "register_operation", "ConvBN", "FactorizedReduce", "Pool"]

Operation = Callable[[int, int, bool], nn.Module]
"""`(channels, stride, weight_norm) -> nn.Module`: what `OPERATIONS` holds."""

OPERATIONS: dict[str, Operation] = {}
"""Operation name -> constructor `(channels, stride, weight_norm) -> nn.Module`, in registration order."""


def register_operation(name: str) -> Callable[[Operation], Operation]:
    """Decorator adding a constructor `(channels, stride, weight_norm) -> nn.Module` to `OPERATIONS`.

    The module must keep the channel count and map H to ceil(H / stride); the tests check
    every registered operation for this.
    """
    if not isinstance(name, str) or not name or any(c in name for c in " ()+=;,"):
        raise ValueError(f"operation names must be non-empty and free of spaces and ' ()+=;,' (they appear in "
                         f"Genotype strings), got {name!r}; use e.g. 'conv_5x5'")

    return registrar(OPERATIONS, "operation", name, "OPERATIONS")


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class ConvBN(nn.Module):
    """LeakyReLU -> conv(s) -> `LearnerBatchNorm`: H -> ceil(H / stride), C channels kept by default.

    Args:
        channels: input channels C (and output channels unless `out_channels` is given).
        kernel: k for a k x k conv, or (1, k) for a 1 x k conv followed by a k x 1 conv.
        stride: 1 or 2.
        weight_norm: weight-normalise the convs (`WNConv2d`).
        out_channels: output channels, if not C (the cells' 1x1 projections).
    """

    def __init__(self, channels: int, kernel: int | tuple[int, int], stride: int, weight_norm: bool,
                 out_channels: int | None = None) -> None:
        super().__init__()
        out = out_channels or channels
        if isinstance(kernel, int):
            convs = [WNConv2d(channels, out, kernel, stride=stride, bias=False, weight_norm=weight_norm)]
        else:  # 1 x k then k x 1: the rows stride in the first conv, the columns in the second
            _, k = kernel
            convs = [WNConv2d(channels, out, (1, k), stride=(1, stride), bias=False, weight_norm=weight_norm),
                     WNConv2d(out, out, (k, 1), stride=(stride, 1), bias=False, weight_norm=weight_norm)]
        self.convs = nn.Sequential(*convs)  # no bias: the BN right after has one
        self.bn = LearnerBatchNorm(out)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s))
        """The block's output, batch-normalised."""
        return self.bn(self.convs(_act(x)))


class FactorizedReduce(nn.Module):
    """Halve the resolution without dropping pixels: two strided 1x1 convs on grids offset by one.

    One conv reads the even pixels (0, 2, ...), the other the odd ones (1, 3, ..., the input
    padded by one zero row and column so odd sizes line up); their outputs are concatenated
    to `out_channels` and batch-normalised. Stride-2 identity, and the cell input that
    comes from before a reduction cell, go through it.

    Args:
        in_channels: input channels.
        out_channels: output channels (split as evenly as possible between the two convs).
        weight_norm: weight-normalise the convs.
    """

    def __init__(self, in_channels: int, out_channels: int, weight_norm: bool) -> None:
        super().__init__()
        widths = [w for w in (out_channels // 2, out_channels - out_channels // 2) if w > 0]
        self.convs = nn.ModuleList(WNConv2d(in_channels, w, 1, stride=2, bias=False, weight_norm=weight_norm)
                                   for w in widths)
        self.bn = LearnerBatchNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, ceil(H/2), ceil(W/2))
        """x at half the resolution: even-pixel and odd-pixel 1x1 convs, concatenated, BN."""
        x = _act(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]  # pixel (i, j) <- (i+1, j+1), same size
        return self.bn(torch.cat([conv(v) for conv, v in zip(self.convs, (x, shifted))], dim=1))


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding so a k-window at stride s gives ceil(size / s) outputs (TF "SAME")."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Pool(nn.Module):
    """k x k max or average pooling with "SAME" padding: H -> ceil(H / stride), channels unchanged.

    Args:
        kind: "max" or "avg".
        kernel: window size k (even sizes pad one pixel more after than before).
        stride: 1 or 2.
    """

    def __init__(self, kind: str, kernel: int, stride: int) -> None:
        super().__init__()
        if kind not in ("max", "avg"):
            raise ValueError(f"Pool kind must be 'max' or 'avg', got {kind!r}")
        self.kind, self.kernel, self.stride = kind, kernel, stride

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s))
        """x pooled over k x k windows, padded to keep ceil(H / stride)."""
        top, bottom = _same_padding(x.shape[2], self.kernel, self.stride)
        left, right = _same_padding(x.shape[3], self.kernel, self.stride)
        pad = (left, right, top, bottom)
        if self.kind == "max":  # -inf padding is never the maximum: every window holds a real pixel
            return F.max_pool2d(F.pad(x, pad, value=float("-inf")), self.kernel, self.stride)
        total = F.avg_pool2d(F.pad(x, pad), self.kernel, self.stride)
        real = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pad), self.kernel, self.stride)
        return total / real  # mean over the real pixels of each window

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}"


@register_operation("identity")
def identity(channels: int, stride: int, weight_norm: bool) -> nn.Module:
    """x itself at stride 1; `FactorizedReduce` at stride 2."""
    return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, weight_norm)


def _conv(kernel: int | tuple[int, int]) -> Operation:
    def make(channels: int, stride: int, weight_norm: bool) -> nn.Module:
        return ConvBN(channels, kernel, stride, weight_norm)

    shape = f"{kernel}x{kernel}" if isinstance(kernel, int) else f"1x{kernel[1]} + {kernel[1]}x1"
    make.__doc__ = f"LeakyReLU -> {shape} conv -> BN (see ConvBN)."
    return make


def _pool(kind: str, kernel: int) -> Operation:
    def make(channels: int, stride: int, weight_norm: bool) -> nn.Module:
        return Pool(kind, kernel, stride)

    make.__doc__ = f"{kernel}x{kernel} {kind} pooling with SAME padding (see Pool)."
    return make


for _name, _make in [("conv_1x1", _conv(1)), ("conv_3x3", _conv(3)), ("conv_1x3_3x1", _conv((1, 3))),
                     ("conv_1x7_7x1", _conv((1, 7))),
                     *[(f"{kind}_pool_{k}x{k}", _pool(kind, k)) for kind in ("max", "avg") for k in (2, 3, 5)]]:
    register_operation(_name)(_make)

PAPER_OPERATIONS: tuple[str, ...] = tuple(OPERATIONS)
"""Appendix C's 11 operations, in its order: what `Genotype.sample` and `NASConfig` draw from by default."""

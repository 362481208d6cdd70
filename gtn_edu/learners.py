"""The learners of appendix A: `ConvLearner` (A.1 for MNIST, A.2 for CIFAR-10) and `MLPLearner`.

Each is a `Learner` (`learner.py`): it defines its layers and `forward`, and inherits the
functional state, the losses and the BatchNorm handling that the inner loop needs.
`ArchSpace` (`arch_space.py`) samples their widths and depths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .learner import Learner
from .nn import LEAKY_SLOPE, LearnerBatchNorm, WNConv2d, WNLinear

__all__ = ["ConvLearner", "MLPLearner"]


def _act(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class ConvLearner(Learner):
    """Convolutional learner: convs (+BN, LeakyReLU) -> optional pooling -> FC head.

    MNIST (appendix A.1): `channels=(c1, c2)`, `pool="max"` after each conv, one hidden
    FC layer. CIFAR (A.2): five convs with `strides=(1, 2, 1, 2, 1)`, `pool="global"`.

    With `pool="max"` each block is conv -> 2x2 max-pool -> BN -> LeakyReLU: the paper
    puts a max-pool after each conv and does not fix where BN goes. Pooling first runs
    BN and the activation (and their double backward, the bulk of a meta-gradient's
    element-wise work) on a quarter of the pixels: about 1.5x faster meta-iterations on
    CPU at quick size, measured in CHANGELOG.md, session 3.

    Args:
        input_shape: (C, H, W) of the inputs.
        num_classes: number of outputs.
        channels: filters of each conv layer.
        strides: stride of each conv (default 1 everywhere).
        hidden: width of the hidden FC layer, or None for a linear head only.
        pool: "max" (2x2 max-pool after every conv, before its BN) or "global" (average
            pool at the end).
        batch_norm: use `LearnerBatchNorm` after each conv and hidden FC layer.
        weight_norm: weight-normalise every conv and FC layer.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, channels: tuple[int, ...],
                 *, strides: tuple[int, ...] | None = None, hidden: int | None = None,
                 pool: str = "max", batch_norm: bool = True, weight_norm: bool = True) -> None:
        super().__init__(input_shape, num_classes)
        if pool not in ("max", "global"):
            raise ValueError(f"pool must be 'max' or 'global', got {pool!r}")
        strides = tuple(strides or (1,) * len(channels))
        if len(strides) != len(channels):
            raise ValueError(f"need one stride per conv layer: {len(channels)} channels, {len(strides)} strides")
        c, h, w = input_shape
        self.pool = pool
        self.convs, self.conv_bns = nn.ModuleList(), nn.ModuleList()
        for out, s in zip(channels, strides):
            self.convs.append(WNConv2d(c, out, 3, stride=s, weight_norm=weight_norm))
            self.conv_bns.append(LearnerBatchNorm(out) if batch_norm else nn.Identity())
            c, h, w = out, (h - 1) // s + 1, (w - 1) // s + 1
            if pool == "max":
                h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise ValueError(
                    f"input shape {tuple(input_shape)} is too small for {len(channels)} conv layers with "
                    f"strides {strides} and pool={pool!r}: the feature map shrinks to nothing. Use larger "
                    "images, fewer layers, or pool='global'.")
        feat = c if pool == "global" else c * h * w
        self.hidden = WNLinear(feat, hidden, weight_norm=weight_norm) if hidden else None
        self.hidden_bn = LearnerBatchNorm(hidden) if (hidden and batch_norm) else nn.Identity()
        self.head = WNLinear(hidden or feat, num_classes, weight_norm=weight_norm)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, classes)
        for conv, bn in zip(self.convs, self.conv_bns):
            x = conv(x)
            if self.pool == "max":
                x = F.max_pool2d(x, 2)  # pool first: BN and LeakyReLU on 1/4 of the pixels
            x = _act(bn(x))
        x = x.mean(dim=(2, 3)) if self.pool == "global" else rearrange(x, "b c h w -> b (c h w)")
        if self.hidden is not None:
            x = _act(self.hidden_bn(self.hidden(x)))
        return self.head(x)


class MLPLearner(Learner):
    """Fully connected learner: flatten -> [FC (+BN) -> LeakyReLU] * n -> FC.

    Args:
        input_shape: shape of one input sample (flattened internally).
        num_classes: number of outputs.
        hidden: widths of the hidden layers.
        batch_norm: use `LearnerBatchNorm` after each hidden layer.
        weight_norm: weight-normalise every layer.
        activation (Callable[[Tensor], Tensor]): hidden nonlinearity (LeakyReLU(0.1) by default;
            CartPole uses tanh).
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (128,),
                 *, batch_norm: bool = True, weight_norm: bool = True, activation=_act) -> None:
        super().__init__(input_shape, num_classes)
        d = int(torch.tensor(input_shape).prod())
        self.layers, self.bns = nn.ModuleList(), nn.ModuleList()
        for width in hidden:
            self.layers.append(WNLinear(d, width, weight_norm=weight_norm))
            self.bns.append(LearnerBatchNorm(width) if batch_norm else nn.Identity())
            d = width
        self.head = WNLinear(d, num_classes, weight_norm=weight_norm)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # (B, *input_shape) -> (B, classes)
        x = x.flatten(1)
        for layer, bn in zip(self.layers, self.bns):
            x = self.activation(bn(layer(x)))
        return self.head(x)

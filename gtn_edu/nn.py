r"""Layers that meta-learning needs: weight-normalised linear and conv, learner BatchNorm.

Weight normalisation (Salimans & Kingma, 2016) writes every weight matrix as

$$ W = g \, \frac{V}{\lVert V \rVert} $$

with one scale $g$ per output unit. The GTN paper (section 2) found that this makes
meta-gradients through many inner steps far more stable (its Figure 1b). We start with
$g = \lVert V \rVert$ so that a freshly initialised layer computes exactly what the
same layer without weight normalisation would compute.

`LearnerBatchNorm` normalises with the statistics of the current batch while training,
records those statistics (unbiased variance, as torch's `BatchNorm` with `momentum=1`),
and uses the recorded values in `eval` mode. That is "BatchNorm momentum 0" in the
paper's words: a trained learner is scored with the statistics of the last batch it
saw. The statistics are ordinary tensors of the computation, so meta-gradients flow
through them too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["WNLinear", "WNConv2d", "UpsampleConv2d", "LearnerBatchNorm", "kaiming_normal_", "LEAKY_SLOPE"]

LEAKY_SLOPE = 0.1  # LeakyReLU slope used by the paper's generator and learners


def kaiming_normal_(weight: Tensor) -> Tensor:
    """Kaiming-normal initialisation for a LeakyReLU(0.1) network (He et al., 2015)."""
    return nn.init.kaiming_normal_(weight, a=LEAKY_SLOPE, nonlinearity="leaky_relu")


class _WeightNormMixin:
    """Shared parameter handling: either (v, g) with W = g v/||v|| or a plain weight."""

    weight_norm: bool

    def _init_weight(self, shape: tuple[int, ...]) -> None:
        v = kaiming_normal_(torch.empty(shape))
        if self.weight_norm:
            self.v = nn.Parameter(v)
            # g = ||v|| per output unit, so W == v at initialisation.
            self.g = nn.Parameter(v.flatten(1).norm(dim=1))
        else:
            self.weight = nn.Parameter(v)

    def effective_weight(self) -> Tensor:
        """The weight the layer applies: $W = g V / \\lVert V \\rVert$ (or the plain weight)."""
        if not self.weight_norm:
            return self.weight
        v = self.v
        norm = v.flatten(1).norm(dim=1)  # (out,)
        scale = (self.g / norm).view(-1, *([1] * (v.dim() - 1)))
        return v * scale  # W = g V / ||V||


class WNLinear(_WeightNormMixin, nn.Module):
    """A linear layer with optional weight normalisation.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: add a learnable bias.
        weight_norm: parametrise the weight as $g V/\\lVert V\\rVert$.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 weight_norm: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.weight_norm = in_features, out_features, weight_norm
        self._init_weight((out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: Tensor) -> Tensor:  # (B, in) -> (B, out)
        return F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, weight_norm={self.weight_norm}"


class WNConv2d(_WeightNormMixin, nn.Module):
    """A 2-d convolution with optional weight normalisation ('same' padding by default).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size or (kh, kw).
        stride: convolution stride.
        padding: zero padding; `None` keeps the spatial size at stride 1.
        bias: add a learnable bias.
        weight_norm: parametrise the weight as $g V/\\lVert V\\rVert$.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 *, stride: int = 1, padding: int | tuple[int, int] | None = None, bias: bool = True,
                 weight_norm: bool = True) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels, self.out_channels, self.weight_norm = in_channels, out_channels, weight_norm
        self.stride = stride
        self.padding = (kh // 2, kw // 2) if padding is None else padding
        self._init_weight((out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, H', W')
        return F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
                f"weight_norm={self.weight_norm}")


# Nearest x2 upsampling followed by a 3x3 conv (padding 1), seen from the low-resolution
# grid: output pixel (2i+a, 2j+b) reads low-resolution rows i-1, i, i+1 through the rows
# of _PHASE[a] (and columns through _PHASE[b]). Row a=0 reads rows 2i-1, 2i, 2i+1 of the
# upsampled map = low rows i-1, i, i; row a=1 reads 2i, 2i+1, 2i+2 = low rows i, i, i+1.
_PHASE = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]],
                       [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # (phase, low row, kernel row)


class UpsampleConv2d(WNConv2d):
    r"""Nearest-neighbour x2 upsampling followed by a 3x3 convolution, in one step.

    Computes exactly `conv2d(interpolate(x, scale_factor=2), W, padding=1)` (the generator's
    "upsample x2 -> conv" of appendix A), but as a *sub-pixel* convolution: each of the
    four output phases (even/odd row, even/odd column) is a 3x3 convolution of the
    low-resolution input with a kernel made of sums of W's taps, and `pixel_shuffle`
    interleaves the phases. Nothing is computed at full resolution except the output, so
    on CPU a layer with few output channels (the generator's last, image-making conv) runs
    its forward and backward passes about 10x faster. Parameters (and checkpoints) are
    those of `WNConv2d`.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        bias: add a learnable bias.
        weight_norm: parametrise the weight as $g V/\lVert V\rVert$.
    """

    def __init__(self, in_channels: int, out_channels: int, *, bias: bool = True, weight_norm: bool = True) -> None:
        super().__init__(in_channels, out_channels, 3, bias=bias, weight_norm=weight_norm)
        # a buffer, so it lives on the layer's device: no host-to-device copy per call
        self.register_buffer("phase", _PHASE.clone(), persistent=False)

    def phase_kernels(self) -> Tensor:
        """The (4 * out, in, 3, 3) low-resolution kernels, phase-major within each output channel."""
        w = self.effective_weight()  # (out, in, 3, 3)
        m = self.phase.to(w.dtype)  # no-op unless the weights are in another dtype
        k = torch.einsum("apk,bql,oikl->oabipq", m, m, w)  # (out, 2, 2, in, 3, 3)
        return k.reshape(4 * w.shape[0], w.shape[1], 3, 3)

    def forward(self, x: Tensor) -> Tensor:  # (B, Cin, H, W) -> (B, Cout, 2H, 2W)
        bias = None if self.bias is None else self.bias.repeat_interleave(4)
        return F.pixel_shuffle(F.conv2d(x, self.phase_kernels(), bias, 1, 1), 2)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, upsample=2, weight_norm={self.weight_norm}"


class LearnerBatchNorm(nn.Module):
    """BatchNorm for learners: batch statistics in training, last batch's statistics in eval.

    In training mode the layer normalises with the current batch's mean and (biased)
    variance and keeps the batch's mean and unbiased variance in `last_stats`; the
    learner collects them into its state. In eval mode it normalises with the buffers
    `running_mean` and `running_var`, which a functional call replaces by the collected
    statistics.

    Args:
        num_features: channels (for (B, C, H, W) inputs) or features (for (B, C)).
        eps: added to the variance for numerical stability.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.last_stats: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            if not (torch.is_grad_enabled() and (self.running_mean.requires_grad or self.running_var.requires_grad)):
                # Nothing to differentiate through the statistics (e.g. scoring): the fused kernel.
                return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0,
                                    self.eps)
            # Written out (not F.batch_norm) so gradients flow into the statistics too.
            shape = (1, -1) + (1,) * (x.dim() - 2)
            scale = (self.weight * (self.running_var + self.eps).rsqrt()).view(shape)
            return (x - self.running_mean.view(shape)) * scale + self.bias.view(shape)
        dims = [0] + list(range(2, x.dim()))
        n = x.numel() // x.shape[1]
        if n < 2:
            raise ValueError("LearnerBatchNorm needs at least 2 values per channel in training mode; "
                             "use a batch size of 2 or more.")
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = x.mean(dim=dims)
        xc = x - mean.view(shape)
        var = (xc * xc).mean(dim=dims)  # biased batch variance, used to normalise
        self.last_stats = (mean, var * (n / (n - 1)))  # unbiased, as torch's running_var
        # (Written out rather than F.batch_norm: on CPU this is as fast and its double
        # backward is faster; torch.var_mean is slow for this reduction.)
        return xc * (self.weight * (var + self.eps).rsqrt()).view(shape) + self.bias.view(shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


r"""Teachers: where the inner loop's training batches come from.

`Teacher` is the GTN generator $x = G(z, y)$ of appendix A:

    [z ; one_hot(y)] -> FC 1024 -> FC 128*(H/4)*(W/4) -> reshape -> upsample x2
        -> conv 64 -> upsample x2 -> conv C -> tanh

with weight normalisation, BatchNorm and LeakyReLU(0.1); `XYTeacher` also generates soft
labels (appendix F). Two baselines share its interface (`baselines.py`), so the same
trainer and evaluation run them: `RealData` (real training batches, nothing learned)
and `DistilledData` (a learned tensor of images, dataset distillation).

Every teacher turns a `Curriculum` into `Batches`: T batches written as a pure function
of the tensors that meta-gradients flow to, so the recomputing unroll can recompute
any batch in the backward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.func import functional_call

from .checks import boolean, sizes, value_range
from .checks import image_shape as check_image_shape
from .curriculum import Curriculum
from .nn import LEAKY_SLOPE, UpsampleConv2d, WNLinear

__all__ = ["BaseTeacher", "Teacher", "XYTeacher", "RealData", "DistilledData", "TensorBatches", "generated_batches"]


def _act(v: Tensor) -> Tensor:
    return F.leaky_relu(v, LEAKY_SLOPE)


@dataclass
class TensorBatches:
    """T batches computed by `make(t, tensors)`, with labels `labels[t]` or learned targets.

    `make` returns either the inputs `x_t` (the targets are then the fixed `labels[t]`)
    or a pair `(x_t, targets_t)` when the teacher learns its targets too (soft labels,
    appendix F; a policy's action targets). Either way the batch is a pure function of
    `tensors`, so the recomputing backward pass can rebuild it and meta-gradients reach
    the targets as well as the inputs.

    Attributes:
        steps: number of inner steps T.
        tensors: the inputs meta-gradients flow to.
        make: rebuilds batch t from `tensors`: `x_t`, or `(x_t, targets_t)`.
        labels: (T, B) class labels of the slots (the targets unless `make` returns its own).
        source: what `make` computes with besides `tensors` and `labels` (the generator), or
            None. Batches with one source and the very same `tensors` and `labels` are equal,
            so stacked learners (`gtn_edu.fast.stacked`) compute them once.
    """

    steps: int
    tensors: tuple[Tensor, ...]
    make: Callable[[int, Sequence[Tensor]], Tensor | tuple[Tensor, Tensor]]
    labels: Tensor
    source: object = None

    def batch(self, t: int, tensors: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Batch t as (inputs (B, ...), targets: labels (B,) or learned targets (B, ...))."""
        out = self.make(t, tensors)
        return out if isinstance(out, tuple) else (out, self.labels[t])


def generated_batches(generator: nn.Module, curriculum: Curriculum, rng: torch.Generator | None = None
                      ) -> TensorBatches:
    """Batch t = `generator(z_t, y_t)` for the curriculum's T steps, differentiable in weights and codes.

    The batches of any generator network (`Teacher`, the CartPole teacher): `generator`
    has `latent_dim` and `num_classes` attributes that must match the curriculum's, and its
    `forward(z, y)` returns inputs, or (inputs, learned targets). Each batch is
    `generator.functional_call(generator, weights, (z_t, y_t))`, torch.func's unless
    `gtn_edu.fast.compile_teacher` gave the generator a compiled one.
    """
    if curriculum.latent_dim != generator.latent_dim or curriculum.num_classes != generator.num_classes:
        raise ValueError(f"curriculum (latent_dim={curriculum.latent_dim}, num_classes={curriculum.num_classes})"
                         f" does not fit the teacher (latent_dim={generator.latent_dim}, num_classes="
                         f"{generator.num_classes}); build both with the same values.")
    z, y = curriculum.sample(rng)
    names = [k for k, _ in generator.named_parameters()]
    call = getattr(generator, "functional_call", functional_call)

    def make(t: int, tensors: Sequence[Tensor]) -> Tensor | tuple[Tensor, Tensor]:
        params = dict(zip(names, tensors[:-1]))
        return call(generator, params, (tensors[-1][t], y[t]))

    return TensorBatches(curriculum.steps, (*generator.parameters(), z), make, y, source=generator)


class BaseTeacher(nn.Module):
    """What the meta-trainer needs from any source of inner-loop data.

    Subclasses implement `batches(curriculum, rng)`; `rng` is the trainer's random-number
    generator for anything random in the batches (shuffles, real-data indices).
    """

    def batches(self, curriculum: Curriculum, rng: torch.Generator | None = None) -> TensorBatches:
        """The T inner-loop batches for one outer iteration."""
        raise NotImplementedError


class Teacher(BaseTeacher):
    """The GTN generator $G(z, y)$ (appendix A). Override `forward` for another generator.

    Args:
        image_shape: (C, H, W) of the images to generate, positive ints; H and W divisible by 4.
        num_classes: number of classes K (the one-hot part of the input).
        latent_dim: size of the code z.
        hidden: width of the first FC layer (1024 in the paper).
        channels: channels of the 1/4-resolution feature map (128 in the paper).
        conv_channels: channels of the middle conv (64 in the paper).
        weight_norm: weight-normalise every layer (the paper's stabiliser).
        output_range: (low, high) to map tanh's (-1, 1) onto, e.g. the value range of the
            normalised real data (MNIST: about (-0.42, 2.82)); finite, low < high; None keeps (-1, 1).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, *,
                 latent_dim: int = 128, hidden: int = 1024, channels: int = 128, conv_channels: int = 64,
                 weight_norm: bool = True, output_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        c, h, w = check_image_shape("Teacher", image_shape, multiple=4)
        sizes("Teacher", {"weight_norm": weight_norm}, num_classes=num_classes, latent_dim=latent_dim,
              hidden=hidden, channels=channels, conv_channels=conv_channels)
        lo_hi = value_range("output_range", output_range)
        self.image_shape, self.num_classes, self.latent_dim = tuple(image_shape), num_classes, latent_dim
        self.h4, self.w4, self.channels = h // 4, w // 4, channels
        wn = dict(weight_norm=weight_norm)
        self.fc1 = WNLinear(latent_dim + num_classes, hidden, **wn)
        self.bn1 = nn.BatchNorm1d(hidden, track_running_stats=False)
        self.fc2 = WNLinear(hidden, channels * self.h4 * self.w4, **wn)
        self.bn2 = nn.BatchNorm1d(channels * self.h4 * self.w4, track_running_stats=False)
        self.conv1 = UpsampleConv2d(channels, conv_channels, **wn)  # upsample x2, then conv
        self.bn3 = nn.BatchNorm2d(conv_channels, track_running_stats=False)
        self.conv2 = UpsampleConv2d(conv_channels, c, **wn)
        # A buffer, so checkpoints carry it and a reloaded teacher draws the same images.
        self.register_buffer("output_lo_hi", torch.tensor(lo_hi))

    @property
    def compile_forward(self) -> bool:
        """Deprecated: whether batches run compiled; call `gtn_edu.fast.compile_teacher(teacher)` instead."""
        return getattr(self, "functional_call", functional_call) is not functional_call

    @compile_forward.setter
    def compile_forward(self, on: bool) -> None:
        from .fast.compiled import compile_teacher

        warnings.warn("Teacher.compile_forward is deprecated: call gtn_edu.fast.compile_teacher(teacher)",
                      DeprecationWarning, stacklevel=2)
        compile_teacher(self, on)

    @property
    def output_range(self) -> tuple[float, float]:
        """(low, high) that tanh's (-1, 1) is mapped onto."""
        lo, hi = self.output_lo_hi.tolist()
        return lo, hi

    def forward(self, z: Tensor, y: Tensor) -> Tensor:  # z (B, L), y (B,) -> x (B, C, H, W)
        """Images $x = G(z, y)$ from codes `z` (B, latent_dim) and integer labels `y` (B,).

        The batch's BatchNorm statistics are used (the generator has no running averages),
        and the tanh output is mapped onto `output_range`. Override to try another generator;
        `batches` calls it once per inner step. A generator that returns `(x, targets)`
        teaches learned targets too (see `XYTeacher`).
        """
        return self.decode(self.embed(z, y))

    def embed(self, z: Tensor, y: Tensor) -> Tensor:  # -> (B, hidden)
        """The first layer: $h = \text{LeakyReLU}(\text{BN}(W [z; \text{onehot}(y)]))$."""
        x = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)  # (B, L + K)
        return _act(self.bn1(self.fc1(x)))                                      # (B, 1024)

    def decode(self, h: Tensor) -> Tensor:  # (B, hidden) -> (B, C, H, W)
        """From the first layer's features to images in `output_range`."""
        x = _act(self.bn2(self.fc2(h)))                                         # (B, 128 h/4 w/4)
        x = rearrange(x, "b (c h w) -> b c h w", c=self.channels, h=self.h4, w=self.w4)
        x = _act(self.bn3(self.conv1(x)))  # upsample x2 -> conv                # (B, 64, h/2, w/2)
        x = torch.tanh(self.conv2(x))      # upsample x2 -> conv                # (B, C, h, w)
        lo, hi = self.output_lo_hi.to(x.dtype)  # same value range as the normalised real images
        return lo + (x + 1) * (0.5 * (hi - lo))

    def batches(self, curriculum: Curriculum, rng: torch.Generator | None = None) -> TensorBatches:
        """x_t = G(z_t, y_t) for the curriculum's T steps, differentiable in weights and codes.

        When `forward` returns `(x, targets)` (e.g. `XYTeacher`), each batch holds those learned
        targets instead of the curriculum's labels.
        """
        return generated_batches(self, curriculum, rng)


class XYTeacher(Teacher):
    r"""A generator of images *and* their soft labels (appendix F, the "XY-generator").

    The first layer's features $h$ feed a second head, $p = \text{softmax}(W_p h)$, and
    the learner trains on $(x, p)$ with cross-entropy against the probabilities $p$. With
    `conditional=True` (default) the generator still sees the slot's class label, so $p$
    refines a label; with `conditional=False` its only input is the code $z$, as in the
    paper's appendix F. The paper found this variant *under*-performs the conditioned
    generator on MNIST (its Figure 4).

    Args:
        image_shape: (C, H, W) of the images.
        num_classes: number of classes K (size of the soft labels).
        conditional: also feed the one-hot label of each slot to the generator.
        **kw: the other arguments of `Teacher`.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, *,
                 conditional: bool = True, **kw: Any) -> None:
        super().__init__(image_shape, num_classes, **kw)
        boolean("XYTeacher: conditional", conditional)
        self.conditional = conditional
        self.label_head = WNLinear(self.fc1.out_features, num_classes, weight_norm=self.fc1.weight_norm)

    def embed(self, z: Tensor, y: Tensor) -> Tensor:
        """As `Teacher.embed`, with the one-hot label zeroed when `conditional` is False."""
        if self.conditional:
            return super().embed(z, y)
        x = torch.cat([z, z.new_zeros(len(z), self.num_classes)], dim=1)
        return _act(self.bn1(self.fc1(x)))

    def forward(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:  # -> x (B, C, H, W), p (B, K)
        """Images and soft labels: $(x, p) = G(z, y)$."""
        h = self.embed(z, y)
        return self.decode(h), self.label_head(h).softmax(dim=1)


# The two baselines live in baselines.py; importing them from here keeps working.
from .baselines import DistilledData, RealData  # noqa: E402

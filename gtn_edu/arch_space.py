"""Architecture spaces: a fresh, randomly initialised learner for every outer iteration.

GTN samples a new learner architecture and initialisation every outer iteration, so the
synthetic data must teach *any* learner of the space, not one network (section 2).

* `ArchSpace.mnist()`: appendix A.1, two convs with $c_1 \\sim U[32,128]$,
  $c_2 \\sim U[64,256]$, each followed by 2x2 max-pooling, an FC layer of
  $h \\sim U[64,256]$ units and the output layer.
* `ArchSpace.cifar()`: appendix A.2, five convs (first $U[32,128]$, others
  $U[64,256]$; the 2nd and 4th with stride 2), global average pooling, FC.
* `ArchSpace.mlp()`: a small fully connected space, for fast tests and teaching.

Subclass and override `sample` for another space (the NAS cell space does).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .learner import ConvLearner, Learner, MLPLearner

__all__ = ["ArchSpace", "ConvSpace", "MLPSpace"]


class ArchSpace:
    """A distribution over learners. `sample(generator)` returns a fresh `Learner`."""

    input_shape: tuple[int, ...]
    num_classes: int

    def sample(self, generator: torch.Generator | None = None) -> Learner:
        """A new learner with a random architecture and Kaiming-normal initialisation."""
        raise NotImplementedError

    @staticmethod
    def mnist(input_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, **kw) -> ConvSpace:
        """Appendix A.1's space (keyword arguments override `ConvSpace` fields)."""
        return ConvSpace(input_shape, num_classes, **kw)

    @staticmethod
    def cifar(input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10, **kw) -> ConvSpace:
        """Appendix A.2's space (keyword arguments override `ConvSpace` fields)."""
        kw = {"channel_ranges": ((32, 128), (64, 256), (64, 256), (64, 256), (64, 256)),
              "strides": (1, 2, 1, 2, 1), "hidden_range": None, "pool": "global", **kw}
        return ConvSpace(input_shape, num_classes, **kw)

    @staticmethod
    def mlp(input_shape: tuple[int, ...] = (1, 28, 28), num_classes: int = 10, **kw) -> MLPSpace:
        """A small MLP space (keyword arguments override `MLPSpace` fields)."""
        return MLPSpace(input_shape, num_classes, **kw)


def _uniform(lo: int, hi: int, generator: torch.Generator | None) -> int:
    """An integer drawn uniformly from [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (1,), generator=generator))


def _seeded(build, generator: torch.Generator | None) -> Learner:
    """Build a learner whose Kaiming-normal initialisation is drawn from `generator`'s stream."""
    if generator is None:
        return build()
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


@dataclass
class ConvSpace(ArchSpace):
    """Conv learners with per-layer channel counts drawn uniformly from ranges.

    Args:
        input_shape: (C, H, W).
        num_classes: outputs.
        channel_ranges: inclusive (low, high) filter counts, one pair per conv layer.
        strides: stride per conv layer (None: all 1).
        hidden_range: inclusive range of the hidden FC width, or None for no hidden layer.
        pool: "max" after every conv, or "global" average pooling at the end.
        batch_norm: BatchNorm in the learners.
        weight_norm: weight normalisation in the learners.
    """

    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    channel_ranges: tuple[tuple[int, int], ...] = ((32, 128), (64, 256))
    strides: tuple[int, ...] | None = None
    hidden_range: tuple[int, int] | None = (64, 256)
    pool: str = "max"
    batch_norm: bool = True
    weight_norm: bool = True

    def __post_init__(self) -> None:
        for lo, hi in list(self.channel_ranges) + ([self.hidden_range] if self.hidden_range else []):
            if not 1 <= lo <= hi:
                raise ValueError(f"ranges must satisfy 1 <= low <= high, got ({lo}, {hi})")
        # Build the smallest member once so a bad input shape fails here, not mid-training.
        self._build(tuple(lo for lo, _ in self.channel_ranges),
                    self.hidden_range[0] if self.hidden_range else None)

    def _build(self, channels: tuple[int, ...], hidden: int | None) -> ConvLearner:
        return ConvLearner(self.input_shape, self.num_classes, channels, strides=self.strides, hidden=hidden,
                           pool=self.pool, batch_norm=self.batch_norm, weight_norm=self.weight_norm)

    def sample(self, generator: torch.Generator | None = None) -> ConvLearner:
        """A fresh conv learner; the same generator state gives the same learner."""
        channels = tuple(_uniform(lo, hi, generator) for lo, hi in self.channel_ranges)
        hidden = _uniform(*self.hidden_range, generator) if self.hidden_range else None
        return _seeded(lambda: self._build(channels, hidden), generator)


@dataclass
class MLPSpace(ArchSpace):
    """MLP learners with 1 to `max_layers` hidden layers of widths drawn from `width_range`.

    Args:
        input_shape: shape of one sample.
        num_classes: outputs.
        width_range: inclusive range of hidden widths.
        max_layers: largest number of hidden layers (the count is drawn from 1..max_layers).
        batch_norm: BatchNorm in the learners.
        weight_norm: weight normalisation in the learners.
    """

    input_shape: tuple[int, ...] = (1, 28, 28)
    num_classes: int = 10
    width_range: tuple[int, int] = (32, 128)
    max_layers: int = 2
    batch_norm: bool = True
    weight_norm: bool = True

    def sample(self, generator: torch.Generator | None = None) -> MLPLearner:
        """A fresh MLP learner; the same generator state gives the same learner."""
        depth = _uniform(1, self.max_layers, generator)
        widths = tuple(_uniform(*self.width_range, generator) for _ in range(depth))
        return _seeded(lambda: MLPLearner(self.input_shape, self.num_classes, widths,
                                          batch_norm=self.batch_norm, weight_norm=self.weight_norm), generator)

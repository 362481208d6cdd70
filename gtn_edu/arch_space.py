"""Architecture spaces: a fresh, randomly initialised learner for every outer iteration.

GTN samples a new learner architecture and initialisation every outer iteration, so the
synthetic data must teach *any* learner of the space, not one network (section 2).

* `ArchSpace.mnist()`: appendix A.1, two convs with $c_1 \\sim U[32,128]$,
  $c_2 \\sim U[64,256]$, each followed by 2x2 max-pooling, an FC layer of
  $h \\sim U[64,256]$ units and the output layer.
* `ArchSpace.cifar()`: appendix A.2, five convs (first $U[32,128]$, others
  $U[64,256]$; the 2nd and 4th with stride 2), global average pooling, FC.
* `ArchSpace.mlp()`: a small fully connected space, for fast tests and teaching.

Subclass and implement `sample_spec` and `build` for another space (the NAS cell space does).
`GTNConfig.arch` names a space of the registry `ARCH_SPACES`: `@register_arch_space("name")`
on a builder `(cfg, image_shape, num_classes) -> ArchSpace` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .checks import registrar
from .learner import ConvLearner, Learner, MLPLearner

if TYPE_CHECKING:  # config.py imports this module: the config is only named in type hints here
    from .config import GTNConfig

__all__ = ["ArchSpace", "ConvSpace", "MLPSpace", "seeded_build", "ARCH_SPACES", "register_arch_space", "HIDDEN_FLOOR"]


class ArchSpace:
    """A distribution over learners, in two parts: a spec to sample and a learner to build.

    * `sample_spec(rng)` draws an architecture as a small JSON-able dict (widths, depth,
      ...): what a NAS evaluator scores and a search stores;
    * `build(spec, rng)` builds that architecture with a fresh initialisation drawn from
      `rng` (or torch's global generator when `rng` is None);
    * `sample(rng)` does both, `build(sample_spec(rng), rng)`: what the meta-trainer calls
      for every outer iteration.

    A subclass implements `sample_spec` and `build` (or, for a quick experiment, only
    `sample`). Random-number generators are called `rng` in gtn_edu: the generator is the GTN.
    """

    input_shape: tuple[int, ...]
    num_classes: int

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        """A random architecture of the space as a JSON-able dict."""
        raise NotImplementedError(f"{type(self).__name__} does not implement sample_spec(rng); "
                                  "override sample_spec and build, or only sample")

    def build(self, spec: dict, rng: torch.Generator | None = None) -> Learner:
        """The learner of architecture `spec`, initialised from `rng`'s stream."""
        raise NotImplementedError(f"{type(self).__name__} does not implement build(spec, rng)")

    def sample(self, rng: torch.Generator | None = None) -> Learner:
        """A new learner with a random architecture and initialisation: `build(sample_spec(rng), rng)`."""
        return self.build(self.sample_spec(rng), rng)

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


def _uniform(lo: int, hi: int, rng: torch.Generator | None) -> int:
    """An integer drawn uniformly from [lo, hi] (both ends included)."""
    return int(torch.randint(lo, hi + 1, (1,), generator=rng))


def seeded_build(build: Callable[[], Learner], rng: torch.Generator | None) -> Learner:
    """Run `build()` with its initialisation drawn from `rng`'s stream (global RNG if None).

    Layer constructors draw from torch's default CPU generator. It is seeded from `rng`
    inside `fork_rng(devices=[])`, which restores it afterwards; no other device's
    generator is touched (`torch.manual_seed` would also reseed every CUDA device).
    """
    if rng is None:
        return build()
    seed = int(torch.randint(0, 2**62, (1,), generator=rng))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return build()


def _check_keys(space: ArchSpace, spec: dict, keys: set[str]) -> None:
    if not isinstance(spec, dict) or set(spec) != keys:
        got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
        raise ValueError(f"{type(space).__name__}.build needs a spec with keys {sorted(keys)}, got {got}; "
                         "make one with sample_spec(rng)")


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

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        """`{"channels": [c1, ...], "hidden": h or None}`, each drawn uniformly from its range."""
        channels = [_uniform(lo, hi, rng) for lo, hi in self.channel_ranges]
        hidden = _uniform(*self.hidden_range, rng) if self.hidden_range else None
        return {"channels": channels, "hidden": hidden}

    def build(self, spec: dict, rng: torch.Generator | None = None) -> ConvLearner:
        """The conv learner of `spec`; the same `rng` state gives the same initialisation."""
        _check_keys(self, spec, {"channels", "hidden"})
        if len(spec["channels"]) != len(self.channel_ranges):
            raise ValueError(f"spec has {len(spec['channels'])} conv layers but this space has "
                             f"{len(self.channel_ranges)}")
        return seeded_build(lambda: self._build(tuple(spec["channels"]), spec["hidden"]), rng)


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

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        """`{"widths": [w1, ...]}`: 1 to `max_layers` hidden layers, each width drawn from `width_range`."""
        depth = _uniform(1, self.max_layers, rng)
        return {"widths": [_uniform(*self.width_range, rng) for _ in range(depth)]}

    def build(self, spec: dict, rng: torch.Generator | None = None) -> MLPLearner:
        """The MLP learner of `spec`; the same `rng` state gives the same initialisation."""
        _check_keys(self, spec, {"widths"})
        return seeded_build(lambda: MLPLearner(self.input_shape, self.num_classes, tuple(spec["widths"]),
                                               batch_norm=self.batch_norm, weight_norm=self.weight_norm), rng)


SpaceBuilder = Callable[["GTNConfig", tuple[int, int, int], int], ArchSpace]
"""`(cfg, image_shape, num_classes) -> ArchSpace`: what `ARCH_SPACES` holds."""

ARCH_SPACES: dict[str, SpaceBuilder] = {}
"""`GTNConfig.arch` name -> builder `(cfg, image_shape, num_classes) -> ArchSpace`, in registration order."""


def register_arch_space(name: str) -> Callable[[SpaceBuilder], SpaceBuilder]:
    """Decorator adding a builder `(cfg, image_shape, num_classes) -> ArchSpace` to `ARCH_SPACES`.

    `GTNConfig(arch=name)` is then valid, and `gtn_edu.experiment.build_arch_space` builds the
    space for every arm. Let the builder read `cfg.arch_scale` and `cfg.weight_norm`, as the built-in ones do.
    """
    return registrar(ARCH_SPACES, "architecture space", name, "ARCH_SPACES")


HIDDEN_FLOOR = 32
"""Fewest hidden FC units a scaled learner of the "mnist" space gets (appendix A.1: 64 to 256)."""


def _scale(r: tuple[int, int], s: float) -> tuple[int, int]:
    return max(1, round(r[0] * s)), max(1, round(r[1] * s))


@register_arch_space("mnist")
def _mnist_space(cfg: GTNConfig, image_shape: tuple[int, int, int], num_classes: int) -> ConvSpace:
    """Appendix A.1's space, widths scaled by `cfg.arch_scale`.

    The hidden FC layer keeps at least `HIDDEN_FLOOR` (32) units: 16-unit layers (a quarter of appendix
    A.1's 64) cap what any data can teach in a few steps; measured on GTN data they cost 3 points of accuracy.
    """
    s = cfg.arch_scale
    hidden = tuple(max(HIDDEN_FLOOR, v) for v in _scale((64, 256), s))
    return ArchSpace.mnist(image_shape, num_classes, channel_ranges=(_scale((32, 128), s), _scale((64, 256), s)),
                           hidden_range=hidden, weight_norm=cfg.weight_norm)


@register_arch_space("cifar")
def _cifar_space(cfg: GTNConfig, image_shape: tuple[int, int, int], num_classes: int) -> ConvSpace:
    """Appendix A.2's space, widths scaled by `cfg.arch_scale`."""
    ranges = (_scale((32, 128), cfg.arch_scale),) + (_scale((64, 256), cfg.arch_scale),) * 4
    return ArchSpace.cifar(image_shape, num_classes, channel_ranges=ranges, weight_norm=cfg.weight_norm)


@register_arch_space("mlp")
def _mlp_space(cfg: GTNConfig, image_shape: tuple[int, int, int], num_classes: int) -> MLPSpace:
    """The small MLP space, widths scaled by `cfg.arch_scale`."""
    return ArchSpace.mlp(image_shape, num_classes, width_range=_scale((64, 256), cfg.arch_scale),
                         weight_norm=cfg.weight_norm)

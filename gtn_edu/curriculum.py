r"""Curricula: which generator inputs $(z_t, y_t)$ the learner sees at inner step t.

Section 3.2 of the paper compares four ways to feed the generator, each with more
control over the order of the data:

| variant            | codes $z$                          | order                       |
|--------------------|------------------------------------|-----------------------------|
| `none`             | fresh $z \sim \mathcal N(0, 1)$    | random, new every time      |
| `all_shuffled`     | $T \cdot B$ learned codes          | shuffled across all batches |
| `shuffled_batch`   | $T$ learned batches of $B$ codes   | batch order shuffled        |
| `full`             | $T$ learned batches of $B$ codes   | fixed (the default, best)   |

Labels are fixed and balanced: every batch holds $B / K$ examples of each of the K
classes, so B must be a multiple of K.

Each variant is one small function `(curriculum, rng) -> (z, y)` in the registry
`VARIANTS`. A researcher adds one by name, and `Curriculum(..., variant="noisy")` and
`GTNConfig(curriculum="noisy")` then accept it::

    @register_curriculum_variant("noisy", learned=True)
    def noisy(curriculum, rng):
        z = curriculum.codes
        return z + 0.1 * torch.randn(z.shape, generator=rng, device=z.device), curriculum.labels
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .checks import balanced, registrar, sizes

__all__ = ["Curriculum", "VARIANTS", "CurriculumVariant", "register_curriculum_variant"]


class Curriculum(nn.Module):
    """The generator inputs for T inner steps of batch B.

    Use the constructors `Curriculum.full(...)`, `.shuffled_batch(...)`,
    `.all_shuffled(...)`, `.no_curriculum(...)`, or pass `variant`. To try a new scheme,
    register a variant by name (`register_curriculum_variant`) or override `sample(rng)`.

    Args:
        steps: inner steps T.
        batch_size: inner batch size B (a multiple of `num_classes`).
        num_classes: number of classes K.
        latent_dim: size of each code z (128 in the paper).
        variant: a name in `VARIANTS`: "none", "all_shuffled", "shuffled_batch", "full", or one
            added with `register_curriculum_variant`.

    Raises:
        ValueError: a size that is not a positive integer (named), B not a multiple of K, an unknown variant.
    """

    def __init__(self, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128, *,
                 variant: str = "full") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown curriculum variant {variant!r}; choose one of {', '.join(VARIANTS)}, "
                             "or add one with gtn_edu.curriculum.register_curriculum_variant")
        sizes("Curriculum", steps=steps, batch_size=batch_size, num_classes=num_classes, latent_dim=latent_dim)
        balanced(batch_size, num_classes)
        self.steps, self.batch_size, self.num_classes = steps, batch_size, num_classes
        self.latent_dim, self.variant = latent_dim, variant
        labels = torch.arange(batch_size).remainder(num_classes).repeat(steps, 1)  # (T, B) balanced
        self.register_buffer("labels", labels)
        if VARIANTS[variant].learned:
            self.codes = nn.Parameter(torch.randn(steps, batch_size, latent_dim))  # (T, B, L)
        else:
            self.codes = None

    @classmethod
    def full(cls, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128) -> Curriculum:
        """Learned codes in a fixed order (the paper's best variant)."""
        return cls(steps, batch_size, num_classes, latent_dim, variant="full")

    @classmethod
    def shuffled_batch(cls, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128) -> Curriculum:
        """Learned batches presented in a random order each outer iteration."""
        return cls(steps, batch_size, num_classes, latent_dim, variant="shuffled_batch")

    @classmethod
    def all_shuffled(cls, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128) -> Curriculum:
        """Learned codes shuffled across all batches each outer iteration."""
        return cls(steps, batch_size, num_classes, latent_dim, variant="all_shuffled")

    @classmethod
    def no_curriculum(cls, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128) -> Curriculum:
        """Fresh Gaussian codes every time; nothing learned."""
        return cls(steps, batch_size, num_classes, latent_dim, variant="none")

    def sample(self, rng: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Codes and labels for one inner loop: z (T, B, L) and y (T, B).

        z is differentiable with respect to the learned codes; `rng` draws the shuffles and
        fresh codes (the trainer's data stream). The variant's function in `VARIANTS` draws them.
        """
        return VARIANTS[self.variant].sample(self, rng)


Sampler = Callable[[Curriculum, "torch.Generator | None"], tuple[Tensor, Tensor]]
"""`(curriculum, rng) -> (z (T, B, L), y (T, B))`: one variant's `Curriculum.sample`."""


@dataclass(frozen=True)
class CurriculumVariant:
    """A curriculum variant of `VARIANTS`: what `Curriculum.sample` returns, and whether codes are learned.

    Attributes:
        sample: `(curriculum, rng) -> (z, y)`, codes (T, B, L) and labels (T, B) for one inner loop.
        learned: the curriculum holds learned codes, `curriculum.codes`, an `nn.Parameter` of
            shape (T, B, L) drawn from N(0, 1) when it is made; otherwise `codes` is None.
    """

    sample: Sampler
    learned: bool


VARIANTS: dict[str, CurriculumVariant] = {}
"""Variant name -> `CurriculumVariant`, in registration order (section 3.2's four first)."""


def register_curriculum_variant(name: str, *, learned: bool) -> Callable[[Sampler], Sampler]:
    """Decorator adding a variant `(curriculum, rng) -> (z, y)` to `VARIANTS` under `name`.

    `learned=True` gives the curriculum its learned codes `curriculum.codes` (T, B, L) to use;
    keep z a differentiable function of them, so the meta-gradient reaches them. Draw every
    random choice from `rng` (the trainer's data stream), so seeded runs repeat.
    """
    return registrar(VARIANTS, "curriculum variant", name, "VARIANTS", lambda fn: CurriculumVariant(fn, learned))


@register_curriculum_variant("none", learned=False)
def _fresh_codes(cur: Curriculum, rng: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Fresh Gaussian codes every time."""
    return torch.randn(cur.steps, cur.batch_size, cur.latent_dim, generator=rng, device=cur.labels.device), cur.labels


@register_curriculum_variant("all_shuffled", learned=True)
def _all_shuffled(cur: Curriculum, rng: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """The T x B learned codes, with their labels, shuffled across all batches."""
    T, B, L = cur.steps, cur.batch_size, cur.latent_dim
    perm = torch.randperm(T * B, generator=rng, device=cur.labels.device)
    return cur.codes.reshape(T * B, L)[perm].view(T, B, L), cur.labels.reshape(T * B)[perm].view(T, B)


@register_curriculum_variant("shuffled_batch", learned=True)
def _shuffled_batch(cur: Curriculum, rng: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """The T learned batches in a random order."""
    order = torch.randperm(cur.steps, generator=rng, device=cur.labels.device)
    return cur.codes[order], cur.labels[order]


@register_curriculum_variant("full", learned=True)
def _full(cur: Curriculum, rng: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """The learned codes in their fixed order."""
    return cur.codes, cur.labels

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
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import balanced, sizes

__all__ = ["Curriculum", "VARIANTS"]

VARIANTS = ("none", "all_shuffled", "shuffled_batch", "full")


class Curriculum(nn.Module):
    """The generator inputs for T inner steps of batch B.

    Use the constructors `Curriculum.full(...)`, `.shuffled_batch(...)`,
    `.all_shuffled(...)`, `.no_curriculum(...)`, or pass `variant`. Override `sample(rng)`
    to try a new scheme.

    Args:
        steps: inner steps T.
        batch_size: inner batch size B (a multiple of `num_classes`).
        num_classes: number of classes K.
        latent_dim: size of each code z (128 in the paper).
        variant: one of "none", "all_shuffled", "shuffled_batch", "full".

    Raises:
        ValueError: a size that is not a positive integer (named), B not a multiple of K, an unknown variant.
    """

    def __init__(self, steps: int, batch_size: int, num_classes: int, latent_dim: int = 128, *,
                 variant: str = "full") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown curriculum variant {variant!r}; choose one of {VARIANTS}")
        sizes("Curriculum", steps=steps, batch_size=batch_size, num_classes=num_classes, latent_dim=latent_dim)
        balanced(batch_size, num_classes)
        self.steps, self.batch_size, self.num_classes = steps, batch_size, num_classes
        self.latent_dim, self.variant = latent_dim, variant
        labels = torch.arange(batch_size).remainder(num_classes).repeat(steps, 1)  # (T, B) balanced
        self.register_buffer("labels", labels)
        if variant == "none":
            self.codes = None
        else:
            self.codes = nn.Parameter(torch.randn(steps, batch_size, latent_dim))  # (T, B, L)

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
        fresh codes (the trainer's data stream).
        """
        T, B, L = self.steps, self.batch_size, self.latent_dim
        y = self.labels
        dev = y.device
        if self.variant == "none":
            return torch.randn(T, B, L, generator=rng, device=dev), y
        if self.variant == "full":
            return self.codes, y
        if self.variant == "shuffled_batch":
            order = torch.randperm(T, generator=rng, device=dev)
            return self.codes[order], y[order]
        perm = torch.randperm(T * B, generator=rng, device=dev)  # all_shuffled
        return self.codes.reshape(T * B, L)[perm].view(T, B, L), y.reshape(T * B)[perm].view(T, B)

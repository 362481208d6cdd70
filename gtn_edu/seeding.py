"""Random-number streams: one per (seed, purpose), so no two purposes ever share one.

A run draws random numbers for several independent purposes: which architecture the
next learner has and how it is initialised, which real batch scores it, how a
curriculum is shuffled, which learners evaluate the result. Seeding them `seed`,
`seed + 1`, `seed + 1000` makes streams collide: run 1's data stream is run 0's
architecture stream, and run 1000's is run 0's evaluation. Here each stream's seed is a hash of the pair
`(seed, purpose)`, so different purposes get unrelated streams for every seed, and a new
purpose can be added without shifting the old ones.

Naming: a `torch.Generator` is called `rng` throughout gtn_edu; "generator" is the GTN.

    >>> arch_rng = make_rng(0, "train/arch")          # CPU stream for sampling learners
    >>> derive_seed(0, "train/arch") != derive_seed(0, "eval/arch")
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["derive_seed", "make_rng", "evaluation_streams", "seeded", "PURPOSES"]

PURPOSES = ("init/teacher", "train/arch", "train/data", "eval/arch", "eval/data")
"""The streams the library itself uses: the teacher's initialisation (`build_arm`), then
learners and data while meta-training and while evaluating."""


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for the stream `purpose` of run `seed` (SHA-256 of both; stable across versions)."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not purpose:
        raise ValueError("purpose must be a non-empty string naming what the stream is for, e.g. 'train/arch'")
    digest = hashlib.sha256(f"gtn_edu:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch seeds must fit in a signed 64-bit int


def make_rng(seed: int, purpose: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A `torch.Generator` on `device` seeded for `(seed, purpose)`."""
    return torch.Generator(device).manual_seed(derive_seed(seed, purpose))


@contextmanager
def seeded(seed: int, purpose: str) -> Iterator[None]:
    """Within: torch's default CPU generator seeded for `(seed, purpose)`; afterwards, as it was.

    For what draws from the global generator, as layer constructors do (a teacher's, a
    critic's, a discriminator's initial weights). Only the CPU generator is touched:
    `torch.manual_seed` would also reseed every CUDA device, outside what is restored.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(derive_seed(seed, purpose))
        yield


def evaluation_streams(seed: int, device: torch.device | str = "cpu") -> tuple[torch.Generator, torch.Generator]:
    """An evaluation's architecture stream (CPU) and data stream (on `device`), distinct for every seed.

    The image tasks' evaluations (`gtn_edu.evaluate`) and CartPole's (`gtn_edu.rl.evaluate`)
    draw their learners and batches from these, so one seed means the same learners in both arms.
    """
    return make_rng(seed, "eval/arch"), make_rng(seed, "eval/data", device)

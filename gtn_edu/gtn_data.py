r"""GTN data read back: the batches, the lr and momentum schedule, and what they were measured to teach.

A file written by `gtn_edu.export` (`gtn-edu export RUN_DIR`) is a numpy `.npz` that loads
without running code. `load_synthetic` reads it as a `SyntheticData`, which gives the
examples as a `torch.utils.data.Dataset`, and a teacher, a curriculum and an inner optimiser
(`ScheduledSGD`, eq. (1) on the stored $\alpha_t$, $\beta_t$) that `few_step_accuracy`, the
NAS evaluations and the tutorials accept. `shipped(name)` loads the data of the quick runs
that ships inside the package.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .curriculum import Curriculum
from .teacher import BaseTeacher, TensorBatches
from .unrolled import UnrolledSGD

__all__ = ["SyntheticData", "SyntheticDataset", "SyntheticTeacher", "ScheduledSGD", "load_synthetic", "shipped",
           "FORMAT"]

FORMAT = "gtn_edu.synthetic/1"  # the `format` field of an exported file's metadata


class SyntheticTeacher(BaseTeacher):
    """A teacher that hands out stored batches: step t is `x[t]` with `y[t]`; nothing is learned."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        super().__init__()
        self.register_buffer("x", x)
        self.register_buffer("y", y)

    def batches(self, curriculum: Curriculum | None = None, rng: torch.Generator | None = None) -> TensorBatches:
        """The stored T batches (a curriculum, if given, must have the same T and B)."""
        T, B = self.x.shape[:2]
        if curriculum is not None and (curriculum.steps, curriculum.batch_size) != (T, B):
            raise ValueError(f"this data holds T={T} batches of B={B}; the curriculum asks for "
                             f"T={curriculum.steps}, B={curriculum.batch_size}")
        if self.y.dim() == 2:  # class labels
            return TensorBatches(T, (), lambda t, _: self.x[t], self.y, source=self)
        labels = self.y.argmax(-1)  # learned soft targets: the batch carries them
        return TensorBatches(T, (), lambda t, _: (self.x[t], self.y[t]), labels, source=self)


class SyntheticDataset(torch.utils.data.Dataset):
    """The T x B examples as a map-style dataset of `(x, y, t)`: image, label (or soft target), step."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y, self.batch = x, y, x.shape[1]

    def __len__(self) -> int:
        return self.x.shape[0] * self.batch

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        t, j = divmod(i % len(self), self.batch)
        return self.x[t, j], self.y[t, j], t


@dataclass
class SyntheticData:
    """Exported GTN data: T batches, their lr and momentum schedule, and what they were measured to teach.

    Attributes:
        x: (T, B, C, H, W) images.
        y: (T, B) labels, or (T, B, K) soft targets.
        lr: (T,) the learned $\\alpha_t$.
        momentum: (T,) the learned $\\beta_t$.
        meta: the metadata record (see the module docstring).
    """

    x: Tensor
    y: Tensor
    lr: Tensor
    momentum: Tensor
    meta: dict = field(default_factory=dict)

    steps = property(lambda self: self.x.shape[0], doc="T, the number of batches.")
    batch_size = property(lambda self: self.x.shape[1], doc="B, the examples of a batch.")

    def dataset(self) -> SyntheticDataset:
        """The examples as a `torch.utils.data.Dataset` (in step order: index t * B + j)."""
        return SyntheticDataset(self.x, self.y)

    def teacher(self) -> SyntheticTeacher:
        """A teacher handing out the stored batches."""
        return SyntheticTeacher(self.x, self.y)

    def curriculum(self, num_classes: int | None = None) -> Curriculum:
        """A curriculum with this data's T and B (the teacher uses no codes)."""
        k = num_classes or int(self.meta.get("num_classes", 10))
        return Curriculum(self.steps, self.batch_size, k, latent_dim=1, variant="none")

    def sgd(self, mode: str = "recompute") -> ScheduledSGD:
        """The inner optimiser with this data's per-step lr and momentum (fixed, not learnable)."""
        return ScheduledSGD(self.lr, self.momentum, mode=mode)

    def real_data_sgd(self, mode: str = "recompute") -> ScheduledSGD:
        """The lr and momentum meta-learned for *real* batches in the same run (the paper's control).

        The real-data judge of NAS (`RealDataEvaluation`) trains with these, so GTN data and
        real data are compared at their own tuned settings (`meta["real_data_schedule"]`).
        """
        sched = self.meta.get("real_data_schedule")
        if sched is None:
            raise ValueError("this file holds no real-data schedule: it was exported from a run without the real-data "
                             "arm (`gtn-edu train` without --no-baseline makes one)")
        return ScheduledSGD(torch.tensor(sched["lr"]), torch.tensor(sched["momentum"]), mode=mode)


class ScheduledSGD(UnrolledSGD):
    r"""Eq. (1) on a stored schedule: step t uses exactly the stored $\alpha_t$ and $\beta_t$ (nothing learned)."""

    def __init__(self, lr: Tensor, momentum: Tensor, *, mode: str = "recompute") -> None:
        super().__init__(per_step=len(lr), mode=mode, learn=False)
        self.register_buffer("lr_t", lr.float().clone())
        self.register_buffer("momentum_t", momentum.float().clone())
        self.raw_lr.copy_(self.lr_t.log())  # so `lr` and `momentum` report the schedule (to rounding)
        self.raw_momentum.copy_(self.momentum_t.logit())

    def hyper(self, t: int) -> tuple[Tensor, Tensor]:
        return self.lr_t[t], self.momentum_t[t]


def load_synthetic(path: str | os.PathLike) -> SyntheticData:
    """Read a file written by `save_synthetic` (no code runs: `allow_pickle=False`)."""
    with np.load(path, allow_pickle=False) as f:
        missing = {"x", "y", "lr", "momentum", "meta"} - set(f.files)
        if missing:
            raise ValueError(f"{path} is not GTN data exported by gtn_edu: it lacks {sorted(missing)}")
        meta = json.loads(str(f["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}, this gtn_edu reads {FORMAT!r}")
        y = torch.from_numpy(f["y"])
        return SyntheticData(torch.from_numpy(f["x"].astype(np.float32)), y if y.is_floating_point() else y.long(),
                             torch.from_numpy(f["lr"]), torch.from_numpy(f["momentum"]), meta)


SHIPPED = Path(__file__).parent / "synthetic"
"""Where the package keeps the GTN data of its quick runs (`shipped`)."""


def shipped(name: str) -> SyntheticData:
    """GTN data that ships with the package: "cifar10" (the CIFAR-10 quick run) or "mnist" (MNIST quick).

    Exported from a `gtn-edu train --dataset NAME --quick` run at seed 0 with `--float16`;
    its metadata says which commit made it and what it teaches (`meta["few_step_accuracy"]`).
    """
    path = SHIPPED / f"{name}_quick.npz"
    if not path.exists():
        have = sorted(p.stem.removesuffix("_quick") for p in SHIPPED.glob("*_quick.npz"))
        raise ValueError(f"no shipped GTN data for {name!r}; the package has {have}")
    return load_synthetic(path)

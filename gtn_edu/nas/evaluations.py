r"""How a NAS candidate is scored: the `Evaluation` base class and the training-based evaluations.

An evaluation turns a freshly initialised learner into one number, higher is better. The
paper (section 3.4, Figure 3c) compares three ways of paying for that number:

* `GTNEvaluation`: T steps (128 for CIFAR-10) on a trained teacher's synthetic data,
  then accuracy on held-out real data (*GTN evaluation*);
* `RealDataEvaluation`: the same T steps on real batches, with a tuned lr and momentum;
* `EpochsEvaluation`: ordinary training for k epochs of real data (3 epochs: the paper's
  cheaper control; 100 epochs: the *search evaluation*, the ground truth).

The zero-cost proxies, which train nothing, live in `proxies.py`. Write another
evaluation by subclassing `Evaluation` and implementing `score(learner, rng)`; give it a
`name`, and put everything its score depends on in `settings()`: `NASEvaluator` caches
scores under a hash of both, so changing a setting (or retraining the teacher) never
returns a stale score.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from torch import Tensor

from ..config import GTNConfig
from ..curriculum import Curriculum
from ..data import Dataset, Split, fingerprint  # noqa: F401 - fingerprint: re-exported (its old home)
from ..learner import Learner
from ..nn import LearnerBatchNorm
from ..teacher import BaseTeacher, RealData
from ..unrolled import UnrolledSGD

__all__ = ["Evaluation", "GTNEvaluation", "RealDataEvaluation", "EpochsEvaluation", "fingerprint"]


class Evaluation:
    """Scores one freshly built learner; subclass and implement `score` (and `settings`).

    Attributes:
        name: names the evaluation in cache files and tables ("gtn", "real", ...).
    """

    name: str = "evaluation"

    def score(self, learner: Learner, rng: torch.Generator) -> float:
        """The learner's score, higher is better.

        Args:
            learner: freshly built on the CPU, initialised from the evaluator's stream for
                its genotype; move it to the device the evaluation works on.
            rng: a CPU stream for anything random in the evaluation (batches, shuffles),
                also derived from the genotype, so a score does not depend on list order.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score(learner, rng) -> float")

    def settings(self) -> dict:
        """Everything the score depends on, JSON-able: part of the cache key."""
        return {}


class GTNEvaluation(Evaluation):
    """T steps on a teacher's curriculum, then accuracy on real held-out data (*GTN evaluation*).

    Args:
        teacher: the trained teacher (any `BaseTeacher`).
        curriculum: its curriculum (T, B, the learned codes).
        sgd: its meta-learned inner optimiser.
        val: the held-out split to score on (same device as the teacher); image learners
            train channels-last, as in `EpochsEvaluation`.
        bn_images: real training images whose BatchNorm statistics the trained learner is
            scored with (`Learner.with_batch_stats`, one forward pass after the T steps, e.g.
            the first `gtn_edu.evaluate.BN_IMAGES` of the training split); None: the
            statistics of the last inner batch, the library's convention.
    """

    name = "gtn"

    def __init__(self, teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, val: Split, *,
                 bn_images: Tensor | None = None) -> None:
        self.teacher, self.curriculum, self.sgd, self.val = teacher, curriculum, sgd, val
        if bn_images is not None and (bn_images.dim() != val.x.dim() or len(bn_images) < 2):
            raise ValueError(f"bn_images must be a batch of at least 2 inputs shaped like val's "
                             f"{tuple(val.x.shape[1:])}, got shape {tuple(bn_images.shape)}")
        self.bn_images = None if bn_images is None else bn_images.to(val.x.device)

    @classmethod
    def from_arm(cls, arm, val: Split, *, bn_images: Tensor | None = None) -> GTNEvaluation:
        """The evaluation of an `Arm`'s (trained) teacher, curriculum and optimiser (`bn_images`: as above)."""
        return cls(arm.teacher, arm.curriculum, arm.sgd, val, bn_images=bn_images)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, cfg: GTNConfig | None, data: Dataset, *, split: str = "val",
                        device: torch.device | str = "cpu", bn_images: Tensor | None = None) -> GTNEvaluation:
        """The teacher saved by `MetaTrainer.save` at `path`, scored on `data`'s `split`.

        Args:
            path: the checkpoint.
            cfg: its `GTNConfig`, or None to read the one stored in the checkpoint.
            data: the dataset the teacher was trained on.
            split: "val" (for searching) or "test".
            device: where to train and score.
            bn_images: real images whose BatchNorm statistics the score uses (None: the last
                inner batch's), e.g. `data.train.x[:BN_IMAGES]`.
        """
        from ..experiment import load_arm

        return cls.from_arm(load_arm("gtn", path, data, cfg, device=device), getattr(data, split).to(device),
                            bn_images=bn_images)

    def score(self, learner: Learner, rng: torch.Generator) -> float:
        """Accuracy on `val` after T steps on the teacher's batches (no meta-graph)."""
        device = self.curriculum.labels.device
        if device.type != "cpu":  # curriculum shuffles draw on the curriculum's device: a stream there
            rng = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=rng)))
        learner, batches = learner.to(self.val.x.device), self.teacher.batches(self.curriculum, rng)
        if self.val.x.dim() == 4:  # images: channels-last order, as in EpochsEvaluation (same values, faster)
            learner, make = learner.to(memory_format=torch.channels_last), batches.make
            batches = dataclasses.replace(batches, make=lambda t, tensors: _nhwc_batch(make(t, tensors)))
        state = self.sgd.unroll(learner, batches, differentiable=False)
        if self.bn_images is not None:  # score with real images' BatchNorm statistics, not the last batch's
            with torch.no_grad():
                state = learner.with_batch_stats(state, _nhwc(self.bn_images))
        return learner.accuracy(state, _nhwc(self.val.x), self.val.y)  # the paper's few-step score

    def settings(self) -> dict:
        """T, B and fingerprints of the teacher + curriculum + optimiser, of `val` and of `bn_images` if given."""
        c = self.curriculum
        return {"steps": c.steps, "batch_size": c.batch_size, "variant": c.variant,
                "teacher": fingerprint(self.teacher, c, self.sgd), "val": fingerprint(self.val),
                **self._bn_settings()}

    def _bn_settings(self) -> dict:
        """`{"bn_images": fingerprint}` when given; nothing otherwise, so earlier runs' cache keys stay."""
        return {} if self.bn_images is None else {"bn_images": fingerprint(self.bn_images)}


class RealDataEvaluation(GTNEvaluation):
    """T steps on random real batches, then accuracy on `val` (the paper's real-data control).

    It is `GTNEvaluation` with the `RealData` teacher (batches drawn with replacement from
    the evaluator's stream) in place of a generator, as the real-data arm of meta-training.

    Args:
        train: the real training split.
        val: the held-out split to score on (same device).
        steps: T.
        batch_size: B (a multiple of the class count, as every inner batch here).
        sgd: the inner optimiser; use a tuned one, e.g. a "real" arm's meta-learned lr and momentum.
        bn_images: as in `GTNEvaluation` (None: the last inner batch's statistics).
    """

    name = "real"

    def __init__(self, train: Split, val: Split, steps: int, batch_size: int, sgd: UnrolledSGD, *,
                 bn_images: Tensor | None = None) -> None:
        if steps < 1 or batch_size < 2:
            raise ValueError(f"need steps >= 1 and batch_size >= 2 (BatchNorm), got {steps}, {batch_size}")
        curriculum = Curriculum(steps, batch_size, int(train.y.max()) + 1, latent_dim=1, variant="none")
        super().__init__(RealData(train.x, train.y), curriculum.to(train.x.device), sgd, val, bn_images=bn_images)
        self.train = train

    @classmethod
    def from_arm(cls, arm, train: Split, val: Split, *, bn_images: Tensor | None = None) -> RealDataEvaluation:
        """T, B and the tuned lr and momentum of a (trained) real-data `Arm` (`bn_images`: as above)."""
        return cls(train, val, arm.curriculum.steps, arm.curriculum.batch_size, arm.sgd, bn_images=bn_images)

    def settings(self) -> dict:
        """T, B, the lr and momentum values, fingerprints of the two splits and of `bn_images` if given."""
        c = self.curriculum
        return {"steps": c.steps, "batch_size": c.batch_size, "lr": self.sgd.lr.tolist(),
                "momentum": self.sgd.momentum.tolist(), "train": fingerprint(self.train),
                "val": fingerprint(self.val), **self._bn_settings()}


class EpochsEvaluation(Evaluation):
    """Ordinary training for k epochs of real data: `torch.optim.SGD` on `learner.outer_loss`.

    Each epoch visits `train` in a new order drawn from `rng`, in batches of `batch_size`;
    a last batch smaller than that is dropped (as `drop_last`). BatchNorm follows the
    library's convention ("momentum 0": a learner is scored with the statistics of the last
    batch it saw), so after training one forward pass without gradients over `bn_images`
    training images (drawn from `rng`) sets the statistics the score uses: one batch of 64
    would make the score noisier than the architecture differences it is meant to rank.
    Images run channels-last (NHWC): the same function, 1.5 times as fast for a cell network
    on a CPU (an epoch at the stored ground truth's size: 53 s against 78 s, one thread).

    Args:
        train: the training split.
        val: the held-out split to score on (same device).
        epochs: k.
        batch_size: examples per step.
        lr: SGD's learning rate.
        momentum: SGD's momentum.
        weight_decay: SGD's L2 penalty.
        bn_images: training images in the pass that sets BatchNorm's statistics for scoring
            (at most all of `train`).
    """

    name = "epochs"

    def __init__(self, train: Split, val: Split, epochs: int, batch_size: int = 128, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 0.0, bn_images: int = 512) -> None:
        if epochs < 1 or batch_size < 2 or bn_images < 2:
            raise ValueError(f"need epochs >= 1, batch_size >= 2 and bn_images >= 2 (BatchNorm), got "
                             f"{epochs}, {batch_size}, {bn_images}")
        self.train, self.val, self.epochs, self.batch_size = train, val, epochs, batch_size
        self.lr, self.momentum, self.weight_decay, self.bn_images = lr, momentum, weight_decay, bn_images

    def score(self, learner: Learner, rng: torch.Generator) -> float:
        """Accuracy on `val` after k epochs of minibatch SGD."""
        x, y = _nhwc(self.train.x), self.train.y
        learner = learner.to(x.device).train()
        if x.dim() == 4:
            learner = learner.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(learner.parameters(), lr=self.lr, momentum=self.momentum,
                              weight_decay=self.weight_decay)
        size = min(self.batch_size, len(y))
        for _ in range(self.epochs):
            order = torch.randperm(len(y), generator=rng).to(x.device)
            for idx in order[:len(y) - len(y) % size].split(size):  # drop the ragged last batch
                loss = learner.outer_loss(learner(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():  # BN statistics of one large batch become the buffers (see above)
            learner(x[torch.randperm(len(y), generator=rng)[:self.bn_images].to(x.device)])
            for m in learner.modules():
                if isinstance(m, LearnerBatchNorm) and m.last_stats is not None:
                    m.running_mean.copy_(m.last_stats[0])
                    m.running_var.copy_(m.last_stats[1])
                    m.last_stats = None
        return learner.accuracy(learner.init_state(), _nhwc(self.val.x), self.val.y)

    def settings(self) -> dict:
        """k, batch size, lr, momentum, weight decay, BN images and fingerprints of the two splits."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "bn_images": self.bn_images, "train": fingerprint(self.train),
                "val": fingerprint(self.val)}


def _nhwc_batch(batch: Tensor | tuple[Tensor, Tensor]) -> Tensor | tuple[Tensor, Tensor]:
    return (_nhwc(batch[0]), batch[1]) if isinstance(batch, tuple) else _nhwc(batch)  # (inputs[, targets])


def _nhwc(x: Tensor) -> Tensor:
    """Image batches in channels-last order (same values, faster convolutions and pools); others as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

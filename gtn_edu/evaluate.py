"""Few-step evaluation: how well do fresh learners do after T steps on a teacher's data?

Everything here trains learners the plain way (`differentiable=False`: no meta-graph)
and measures accuracy on a held-out split, so it is what a NAS user would pay per
architecture.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch

from .arch_space import ArchSpace
from .curriculum import Curriculum
from .data import Split
from .learner import EVAL_CHUNK
from .seeding import evaluation_streams
from .teacher import BaseTeacher
from .unrolled import UnrolledSGD

__all__ = ["FewStepResult", "few_step_accuracy", "accuracy_per_step", "ensemble_accuracy", "BN_IMAGES",
           "bn_images_for"]

BN_IMAGES = 512
"""Real training images whose BatchNorm statistics a learner is scored with under `bn_stats="real"`
(the NAS ground truth sets its statistics from as many)."""


def bn_images_for(bn_stats: str, train: Split) -> torch.Tensor | None:
    """The images to score with under `bn_stats`: the first `BN_IMAGES` of `train` for "real", else None."""
    if bn_stats not in ("synthetic", "real"):
        raise ValueError(f"bn_stats must be 'synthetic' or 'real', got {bn_stats!r}")
    return train.x[:BN_IMAGES] if bn_stats == "real" else None


@dataclass
class FewStepResult:
    """Accuracies of independently sampled learners.

    Attributes:
        accuracies: one accuracy per fresh learner.
    """

    accuracies: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        """Mean accuracy."""
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation (0 for one learner)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def __str__(self) -> str:
        return f"{100 * self.mean:.2f}% +- {100 * self.std:.2f} (n={len(self.accuracies)})"


def _train(teacher, curriculum, sgd, learner, rng, at=None, bn_images=None):
    batches = teacher.batches(curriculum, rng)
    states = sgd.unroll(learner, batches, at=at, differentiable=False)
    if bn_images is None:
        return states
    with torch.no_grad():
        if at is None:
            return learner.with_batch_stats(states, bn_images)
        return [learner.with_batch_stats(s, bn_images) for s in states]


def few_step_accuracy(teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, arch_space: ArchSpace,
                      split: Split, *, n_learners: int = 5, seed: int = 1234,
                      bn_images: torch.Tensor | None = None) -> FewStepResult:
    """Train `n_learners` fresh learners for T steps on `teacher`'s data; accuracy on `split`.

    Args:
        teacher: any teacher (GTN, `RealData`, `DistilledData`).
        curriculum: the curriculum (T, B and codes).
        sgd: the inner optimiser, with its (meta-learned) lr and momentum.
        arch_space: where the fresh learners come from.
        split: held-out data to score on (use the test split for reporting).
        n_learners: number of fresh learners.
        seed: the evaluation's seed: architectures and initialisations come from the stream
            ("eval/arch"), `RealData` batches from ("eval/data"); both differ from the
            meta-training streams of the same seed.
        bn_images: real training images whose BatchNorm statistics each trained learner is
            scored with (`bn_images_for`); None: the last inner batch's (the paper's way).

    Returns:
        A `FewStepResult` with one accuracy per learner.
    """
    if n_learners < 1:
        raise ValueError(f"n_learners must be >= 1, got {n_learners}")
    device = split.x.device
    arch_rng, data_rng = evaluation_streams(seed, device)
    result = FewStepResult()
    for _ in range(n_learners):
        learner = arch_space.sample(arch_rng).to(device)
        state = _train(teacher, curriculum, sgd, learner, data_rng, bn_images=bn_images)
        result.accuracies.append(learner.accuracy(state, split.x, split.y))
    return result


def accuracy_per_step(teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, arch_space: ArchSpace,
                      split: Split, *, n_learners: int = 3, seed: int = 1234,
                      bn_images: torch.Tensor | None = None) -> list[FewStepResult]:
    """Accuracy after each of the T inner steps (Figure 2b), one result per step (`bn_images`: as in
    `few_step_accuracy`)."""
    device = split.x.device
    arch_rng, data_rng = evaluation_streams(seed, device)
    T = curriculum.steps
    per_step = [FewStepResult() for _ in range(T)]
    for _ in range(n_learners):
        learner = arch_space.sample(arch_rng).to(device)
        states = _train(teacher, curriculum, sgd, learner, data_rng, at=range(1, T + 1), bn_images=bn_images)
        for t, state in enumerate(states):
            per_step[t].accuracies.append(learner.accuracy(state, split.x, split.y))
    return per_step


@torch.no_grad()
def ensemble_accuracy(teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, arch_space: ArchSpace,
                      split: Split, *, n_learners: int = 5, seed: int = 1234,
                      bn_images: torch.Tensor | None = None) -> tuple[float, FewStepResult]:
    """Accuracy of the averaged softmax of `n_learners` learners trained on one teacher (Figure 7;
    `bn_images`: as in `few_step_accuracy`).

    Returns:
        (ensemble accuracy, the individual learners' `FewStepResult`).
    """
    device = split.x.device
    arch_rng, data_rng = evaluation_streams(seed, device)
    probs = torch.zeros(len(split), arch_space.num_classes, device=device)
    single = FewStepResult()
    for _ in range(n_learners):
        learner = arch_space.sample(arch_rng).to(device)
        state = _train(teacher, curriculum, sgd, learner, data_rng, bn_images=bn_images)
        single.accuracies.append(learner.accuracy(state, split.x, split.y))
        probs += torch.cat([learner.predict(state, xb).softmax(1) for xb in split.x.split(EVAL_CHUNK)])
    return (probs.argmax(1) == split.y).float().mean().item(), single

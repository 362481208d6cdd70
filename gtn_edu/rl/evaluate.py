"""Scoring CartPole teachers: K fresh policies, each trained by the inner loop, M greedy episodes each.

This is the paper's measure (Figure 8): how many of the 200 frames a freshly initialised
policy keeps the pole up after ONE SGD step on the teacher's batch. Policies act greedily
(their most likely action); set `greedy=False` to sample as in meta-training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..arch_space import ArchSpace
from ..curriculum import Curriculum
from ..seeding import evaluation_streams
from ..teacher import BaseTeacher
from ..unrolled import UnrolledSGD
from .env import MAX_STEPS, make_envs, play

__all__ = ["PolicyScores", "one_step_returns"]


@dataclass
class PolicyScores:
    """Episode returns of K policies, M episodes each.

    Attributes:
        returns: (K, M) episode returns (= lengths: reward 1 per step).
        max_steps: the episode cap they were played with.
    """

    returns: Tensor
    max_steps: int

    @property
    def mean(self) -> float:
        """Mean return over all K x M episodes."""
        return float(self.returns.float().mean())

    @property
    def policy_means(self) -> Tensor:
        """(K,) each policy's mean return."""
        return self.returns.float().mean(1)

    @property
    def std(self) -> float:
        """Spread of the policies' mean returns (sample standard deviation; 0 for one policy)."""
        return float(self.policy_means.std()) if len(self.returns) > 1 else 0.0

    @property
    def solved(self) -> float:
        """Fraction of episodes that reached the cap."""
        return float((self.returns >= self.max_steps).float().mean())

    @property
    def env_steps(self) -> int:
        """Environment steps the scoring itself played."""
        return int(self.returns.sum())

    def __str__(self) -> str:
        K, M = self.returns.shape
        return (f"{self.mean:.1f} +- {self.std:.1f} of {self.max_steps} ({K} policies x {M} episodes; "
                f"{100 * self.solved:.0f}% of episodes reach {self.max_steps})")


def one_step_returns(teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, space: ArchSpace, *,
                     policies: int = 20, episodes: int = 10, seed: int = 0, max_steps: int = MAX_STEPS,
                     greedy: bool = True) -> PolicyScores:
    """Train `policies` fresh policies by the inner loop on the teacher's data; play `episodes` each.

    Args:
        teacher: the teacher (e.g. a trained `PairTeacher`).
        curriculum: its codes (T and the batch size come from here).
        sgd: the inner optimiser with its learned learning rate.
        space: where fresh policies come from (`PolicySpace`).
        policies: K, fresh policies (each a new initialisation from the stream "eval/arch").
        episodes: M, episodes per policy.
        seed: seeds the policies, the batches and the episodes' start states.
        max_steps: episode cap (200: the paper's).
        greedy: act by $\\arg\\max_a \\pi(a|s)$ (else sample, from the "eval/data" stream).
    """
    if policies < 1 or episodes < 1:
        raise ValueError(f"need at least one policy and one episode, got policies={policies}, episodes={episodes}")
    device = next((t.device for t in curriculum.buffers()), torch.device("cpu"))
    arch_rng, data_rng = evaluation_streams(seed, device)  # the streams of the image tasks' evaluations
    envs, rows = make_envs(episodes, max_steps), []
    for _ in range(policies):
        learner = space.sample(arch_rng).to(device)
        state = sgd.unroll(learner, teacher.batches(curriculum, data_rng), differentiable=False)
        start = int(torch.randint(2**31 - 1, (1,), generator=data_rng, device=device))
        played = play(lambda o, pi=learner, st=state: pi.act(st, o, greedy=greedy, rng=data_rng), episodes, seed=start,
                      max_steps=max_steps, envs=envs)
        rows.append(played.lengths)
    return PolicyScores(torch.stack(rows), max_steps)

"""Hypothesis strategies for small, float64 GTN problems (one place, as minitorch does)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from gtn_edu import ConvLearner, Curriculum, MLPLearner, Teacher, UnrolledSGD, XYTeacher

NUM_CLASSES = 3
IMAGE = (1, 8, 8)


def fixed_problem(teacher, learner, steps: int = 3, batch: int = 6, seed: int = 0) -> Problem:
    """A deterministic float64 problem around a given teacher and learner (for targeted checks)."""
    torch.manual_seed(seed)
    curriculum = Curriculum.full(steps, batch, NUM_CLASSES, latent_dim=teacher.latent_dim).double()
    sgd = UnrolledSGD(0.05, 0.6).double()
    x_real, y_real = torch.randn(7, *IMAGE, dtype=torch.float64), torch.randint(NUM_CLASSES, (7,))
    return Problem(teacher.double(), curriculum, learner.double(), sgd, x_real, y_real, type(teacher).__name__)


@dataclass
class Problem:
    """One meta-gradient problem: teacher, curriculum, learner, inner optimiser, real batch."""

    teacher: Teacher
    curriculum: Curriculum
    learner: torch.nn.Module
    sgd: UnrolledSGD
    x_real: torch.Tensor
    y_real: torch.Tensor
    description: str

    def inputs(self) -> dict[str, torch.Tensor]:
        """Every tensor that should receive a meta-gradient, by name."""
        d = {f"teacher.{k}": p for k, p in self.teacher.named_parameters()}
        d["curriculum.codes"] = self.curriculum.codes
        d["sgd.raw_lr"], d["sgd.raw_momentum"] = self.sgd.raw_lr, self.sgd.raw_momentum
        return d

    def meta_loss(self, mode: str | None = None, at=None) -> torch.Tensor:
        """Mean real-data loss of the states after the steps in `at` (default: the last)."""
        if mode is not None:
            self.sgd.mode = mode
        states = self.sgd.unroll(self.learner, self.teacher.batches(self.curriculum),
                                 at=at or [self.curriculum.steps])
        return torch.stack([self.learner.meta_loss(s, self.x_real, self.y_real) for s in states]).mean()


@st.composite
def problems(draw, max_steps: int = 6) -> Problem:
    """A random small float64 problem: MLP or conv learner, with or without BN and weight norm,
    taught by the conditioned generator or by the XY-generator's images and soft labels."""
    seed = draw(st.integers(0, 2**31 - 1))
    steps = draw(st.integers(1, max_steps))
    kind = draw(st.sampled_from(["mlp", "conv"]))
    batch_norm = draw(st.booleans())
    weight_norm = draw(st.booleans())
    per_step = draw(st.booleans())
    lr = draw(st.floats(0.005, 0.2))
    momentum = draw(st.floats(0.05, 0.95))
    batch = NUM_CLASSES * draw(st.integers(2, 3))
    xy = draw(st.sampled_from([None, True, False]))  # None: Teacher; else XYTeacher(conditional=xy)
    torch.manual_seed(seed)
    kw = dict(latent_dim=4, hidden=8, channels=3, conv_channels=3, weight_norm=weight_norm)
    teacher = (Teacher(IMAGE, NUM_CLASSES, **kw) if xy is None
               else XYTeacher(IMAGE, NUM_CLASSES, conditional=xy, **kw)).double()
    curriculum = Curriculum.full(steps, batch, NUM_CLASSES, latent_dim=4).double()
    if kind == "mlp":
        learner = MLPLearner(IMAGE, NUM_CLASSES, (draw(st.integers(3, 8)),), batch_norm=batch_norm,
                             weight_norm=weight_norm)
    else:
        learner = ConvLearner(IMAGE, NUM_CLASSES, (draw(st.integers(2, 3)), draw(st.integers(2, 3))),
                              hidden=draw(st.sampled_from([None, 5])), batch_norm=batch_norm,
                              weight_norm=weight_norm)
    learner = learner.double()
    sgd = UnrolledSGD(lr, momentum, per_step=steps if per_step else None).double()
    with torch.no_grad():  # per-step values that differ, so a wrong index would show
        sgd.raw_lr.add_(0.1 * torch.randn_like(sgd.raw_lr))
        sgd.raw_momentum.add_(0.1 * torch.randn_like(sgd.raw_momentum))
    x_real = torch.randn(7, *IMAGE, dtype=torch.float64)
    y_real = torch.randint(NUM_CLASSES, (7,))
    desc = (f"{'cond' if xy is None else f'xy(conditional={xy})'} {kind} bn={batch_norm} wn={weight_norm} "
            f"T={steps} per_step={per_step} lr={lr:.3f} mom={momentum:.3f}")
    return Problem(teacher, curriculum, learner, sgd, x_real, y_real, desc)

"""The worked examples of docs/concepts/extending.md, as one runnable script.

The page includes the sections between the `--8<--` markers, and tests/test_tutorials.py
runs this file (with GTN_EDU_TUTORIAL_SIZE=tiny), so the code on the page keeps working.

    GTN_EDU_DATA=../shared/data python docs/scripts/extending_example.py
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gtn_edu import (
    ArchSpace,
    Callback,
    Curriculum,
    Learner,
    LearnerBatchNorm,
    MetaTrainer,
    RealBatchLoss,
    Teacher,
    UnrolledSGD,
    WNConv2d,
    WNLinear,
    XYTeacher,
    few_step_accuracy,
    load_dataset,
)
from gtn_edu.arch_space import seeded_build


# --8<-- [start:teacher]
class TemplateTeacher(Teacher):
    """The GTN generator plus a learned image per class: x = G(z, y) + template[y]."""

    def __init__(self, image_shape=(1, 28, 28), num_classes=10, **kw) -> None:
        super().__init__(image_shape, num_classes, **kw)  # the usual layers
        templates = torch.zeros(num_classes, *image_shape)  # (K, C, H, W)
        self.templates = nn.Parameter(templates)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:  # (B, L), (B,) -> (B, C, H, W)
        return super().forward(z, y) + self.templates[y]
# --8<-- [end:teacher]


# --8<-- [start:learner]
class TinyConv(Learner):
    """One strided conv and a linear head: a learner family the paper never used."""

    def __init__(self, input_shape=(1, 28, 28), num_classes=10, width=16) -> None:
        super().__init__(input_shape, num_classes)
        c, h, w = input_shape
        self.conv = WNConv2d(c, width, 5, stride=2)  # -> (B, width, H/2, W/2)
        self.bn = LearnerBatchNorm(width)  # its statistics join the learner's state
        self.head = WNLinear(width * (h // 2) * (w // 2), num_classes)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, classes)
        x = F.leaky_relu(self.bn(self.conv(x)), 0.1)
        return self.head(x.flatten(1))

    def inner_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Optional: train with label smoothing; the real-data score stays plain cross-entropy."""
        return F.cross_entropy(output, target, label_smoothing=0.05)
# --8<-- [end:learner]


# --8<-- [start:archspace]
@dataclass
class TinyConvSpace(ArchSpace):
    """TinyConv learners of a random width."""

    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    width_range: tuple[int, int] = (8, 32)

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        lo, hi = self.width_range
        return {"width": int(torch.randint(lo, hi + 1, (1,), generator=rng))}

    def build(self, spec: dict, rng: torch.Generator | None = None) -> TinyConv:
        # seeded_build draws the initialisation from rng without touching global state
        return seeded_build(lambda: TinyConv(self.input_shape, self.num_classes, spec["width"]), rng)
# --8<-- [end:archspace]


# --8<-- [start:sgd]
class NesterovSGD(UnrolledSGD):
    r"""Nesterov momentum: $m \leftarrow \beta m + g$,
    $\theta \leftarrow \theta - \alpha (g + \beta m)$."""

    def update(self, params, grads, opt_state, lr, beta):  # opt_state: the momentum buffers m, by weight
        new_m = {k: beta * opt_state[k] + grads[k] for k in params}
        new_p = {k: params[k] - lr * (grads[k] + beta * new_m[k]) for k in params}
        return new_p, new_m
# --8<-- [end:sgd]


# --8<-- [start:curriculum]
class NoisyCurriculum(Curriculum):
    """A full curriculum whose codes get fresh noise every outer iteration."""

    def __init__(self, steps, batch_size, num_classes, latent_dim=128, *, noise=0.1):
        super().__init__(steps, batch_size, num_classes, latent_dim, variant="full")
        self.noise = noise

    def sample(self, rng=None) -> tuple[Tensor, Tensor]:
        z, y = super().sample(rng)  # learned codes (T, B, L), labels (T, B)
        eps = torch.randn(z.shape, generator=rng, device=z.device)
        return z + self.noise * eps, y
# --8<-- [end:curriculum]


# --8<-- [start:objective]
class HardClassLoss(RealBatchLoss):
    """Weight each real example by how hard its class has been lately (a running average).

    The running per-class losses are a buffer, so checkpoints carry them and a resumed
    run weights the classes as the interrupted one did.
    """

    progress_fields = {"acc": "meta_acc", "worst": "worst_class"}

    def __init__(self, split, batch_size, num_classes=10, decay=0.9, sharpness=2.0):
        super().__init__(split, batch_size)
        self.decay, self.sharpness = decay, sharpness
        self.register_buffer("class_loss", torch.ones(num_classes))

    def forward(self, learner, states, rng=None):
        x, y = self.split.sample(self.batch_size, rng)
        per_example = F.cross_entropy(learner.predict(states[-1], x), y, reduction="none")
        with torch.no_grad():  # running per-class loss: the objective's learned state
            seen = torch.zeros_like(self.class_loss).index_add_(0, y, per_example)
            count = torch.bincount(y, minlength=len(self.class_loss)).clamp_min(1)
            self.class_loss.lerp_(seen / count, 1 - self.decay)
        weight = (self.sharpness * self.class_loss).softmax(0)[y] * len(self.class_loss)
        loss = (weight * per_example).mean()
        return loss, {"meta_acc": (learner.predict(states[-1], x).argmax(1) == y).float().mean(),
                      "worst_class": self.class_loss.argmax()}
# --8<-- [end:objective]


# --8<-- [start:callback]
class PrintEvery(Callback):
    """Print a line every `k` outer iterations."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_outer_step(self, trainer, record) -> None:
        if record["iteration"] % self.k == 0:
            print(f"iteration {record['iteration']}: "
                  f"meta-loss {record['meta_loss']:.3f}, lr {record['lr']:.3f}")
# --8<-- [end:callback]


def main() -> None:
    # --8<-- [start:together]
    T, B, outer = 8, 40, 30  # inner steps, inner batch, outer iterations
    if os.environ.get("GTN_EDU_TUTORIAL_SIZE") == "tiny":  # the test suite's size
        T, B, outer = 4, 20, 2
    data = load_dataset("mnist")  # root from $GTN_EDU_DATA
    teacher = TemplateTeacher((1, 28, 28), 10, latent_dim=32, hidden=128,
                              channels=16, conv_channels=16)
    curriculum = NoisyCurriculum(T, B, 10, latent_dim=32, noise=0.1)
    sgd = NesterovSGD(lr=0.1, momentum=0.5, per_step=T, mode="full")
    space = TinyConvSpace()
    objective = HardClassLoss(data.train, batch_size=64)
    trainer = MetaTrainer(teacher, curriculum, sgd, space, objective,
                          callbacks=[PrintEvery(10)], progress=False)
    trainer.fit(outer, checkpoint="runs/extending/ck.pt")  # resumable: trainer.load(path)
    result = few_step_accuracy(teacher, curriculum, sgd, space, data.test, n_learners=3)
    print(result)
    print("an architecture it was scored on:", space.sample_spec(trainer.arch_rng))
    # --8<-- [end:together]

    # --8<-- [start:targets]
    xy = XYTeacher((1, 28, 28), 10, conditional=False, latent_dim=32, hidden=128,
                   channels=16, conv_channels=16)  # images and soft labels from z alone
    batches = xy.batches(Curriculum.full(T, B, 10, latent_dim=32))
    x0, p0 = batches.batch(0, batches.tensors)  # (B, 1, 28, 28) images, (B, 10) probabilities
    print(f"soft labels of step 0: {tuple(p0.shape)}, rows sum to {p0.sum(1).mean():.3f}")
    xy_trainer = MetaTrainer(xy, Curriculum.full(T, B, 10, latent_dim=32),
                             UnrolledSGD(lr=0.1, momentum=0.5, mode="full"), space,
                             RealBatchLoss(data.train, batch_size=64), progress=False)
    xy_trainer.fit(min(outer, 5))  # meta-gradients reach the label head too
    # --8<-- [end:targets]


if __name__ == "__main__":
    main()

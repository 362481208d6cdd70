r"""GTN-GAN (appendix I): a discriminator added to the GTN's meta-objective, against mode collapse.

A GAN's generator learns only to fool a discriminator $D$, and often settles on a few
classes (mode collapse, the paper's Figure 9). A GTN's generator learns only to teach, and
its images need not look real. GTN-GAN asks for both: the generator's loss is the GTN
meta-loss plus the GAN generator loss of the images it generates,

$$ L(\phi) = \ell\big(\theta_T(\phi); x_\text{real}, y_\text{real}\big)
   + \lambda\, \mathbb{E}_{z, y}\big[-\log D(G_\phi(z, y))\big], $$

(the non-saturating form of Goodfellow et al., 2014). A generator that makes one class
cannot teach a learner to classify ten, so the first term pushes back against collapse.

`GANObjective` wraps any supervised objective (`RealBatchLoss`) and holds $D$, a small
conv net, with its own Adam optimiser, as `A2CObjective` holds the CartPole critic: each
call first takes `d_steps` Adam steps of $D$ on real images against the generator's
current images (the usual binary cross-entropy), then scores the generator against the
updated $D$, which is a constant of $L(\phi)$. $D$ and its Adam state are in the
objective's `state_dict`, so the trainer's checkpoints carry them and a resumed run
continues exactly. `gan_step` is one update of a plain GAN with the same pieces, the
comparison of `benchmarks/gtn_gan.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .checks import nonnegative_int, positive_float
from .curriculum import Curriculum
from .learner import Learner, LearnerState
from .objective import MetaObjective
from .teacher import BaseTeacher

__all__ = ["Discriminator", "GANObjective", "generator_loss", "discriminator_loss", "generated_images", "gan_step"]


class Discriminator(nn.Module):
    """$D(x)$: the logit that `x` is a real image. Two stride-2 convs (LeakyReLU 0.2), then a linear layer.

    Args:
        image_shape: (C, H, W), H and W divisible by 4.
        channels: channels of the first conv (the second has twice as many).
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), channels: int = 32) -> None:
        super().__init__()
        c, h, w = image_shape
        if h % 4 or w % 4:
            raise ValueError(f"Discriminator needs H and W divisible by 4 (two stride-2 convs), got {image_shape}")
        self.net = nn.Sequential(
            nn.Conv2d(c, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),                # (B, c1, H/2, W/2)
            nn.Conv2d(channels, 2 * channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2),     # (B, c2, H/4, W/4)
            nn.Flatten(), nn.Linear(2 * channels * (h // 4) * (w // 4), 1))                   # (B, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B,) logits
        return self.net(x).squeeze(1)


def generator_loss(logits: Tensor) -> Tensor:
    r"""$\mathbb{E}[-\log D(G(z))] = \mathbb{E}[\text{softplus}(-\text{logit})]$ (non-saturating)."""
    return F.softplus(-logits).mean()


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    r"""$-\mathbb{E}[\log D(x)] - \mathbb{E}[\log(1 - D(G(z)))]$: binary cross-entropy, real = 1, generated = 0."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generated_images(teacher: BaseTeacher, curriculum: Curriculum, rng: torch.Generator | None = None) -> Tensor:
    """All T x B images one inner loop would train on, as one (T*B, C, H, W) batch (differentiable)."""
    batches = teacher.batches(curriculum, rng)
    return torch.cat([batches.batch(t, batches.tensors)[0] for t in range(batches.steps)])


class GANObjective(MetaObjective):
    """`base`'s meta-loss plus `weight` times the GAN generator loss of the teacher's images.

    Args:
        base: the supervised meta-objective (e.g. `RealBatchLoss`).
        teacher: the generator (the trainer's own; neither it nor `curriculum` is a submodule
            here, so the objective's `state_dict` holds only $D$ and its Adam).
        curriculum: the generator's codes (the trainer's own).
        real (Split): real training images (`sample(batch_size, rng)`).
        weight: $\\lambda$; 0 gives the plain GTN meta-loss (with $D$ still trained alongside).
        batch_size: real images per discriminator step.
        d_lr: Adam learning rate of $D$ (DCGAN's 2e-4).
        d_betas: Adam betas of $D$ (DCGAN's (0.5, 0.999)).
        d_steps: discriminator steps per call (0: $D$ stays as it is).
        discriminator: $D$ (default: `Discriminator(teacher.image_shape)`).
    """

    progress_fields = {"acc": "meta_acc", "D(G)": "d_fake"}

    def __init__(self, base: MetaObjective, teacher: BaseTeacher, curriculum: Curriculum, real, *,
                 weight: float = 1.0, batch_size: int = 64, d_lr: float = 2e-4,
                 d_betas: tuple[float, float] = (0.5, 0.999), d_steps: int = 1,
                 discriminator: nn.Module | None = None) -> None:
        super().__init__()
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0 (0: the GTN meta-loss alone), got {weight}")
        positive_float("d_lr", d_lr)
        nonnegative_int("d_steps", d_steps)
        self.base, self.real, self.weight = base, real, float(weight)
        self.batch_size, self.d_steps = batch_size, d_steps
        self._generator = (teacher, curriculum)  # a tuple: not registered, not saved twice
        if discriminator is None:  # on the teacher's device
            discriminator = Discriminator(teacher.image_shape).to(next(teacher.parameters()).device)
        self.discriminator = discriminator
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=d_lr, betas=d_betas)

    # ---- D's Adam state travels with the module's state_dict (as the CartPole critic's) ----
    def get_extra_state(self) -> dict:
        return {"discriminator_optimizer": self.d_opt.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.d_opt.load_state_dict(state["discriminator_optimizer"])

    def fit_discriminator(self, real: Tensor, fake: Tensor) -> float:
        """`d_steps` Adam steps of $D$ on real against (detached) generated images; the last loss (nan if none)."""
        loss = torch.tensor(float("nan"))
        with torch.enable_grad():
            for _ in range(self.d_steps):
                loss = discriminator_loss(self.discriminator(real), self.discriminator(fake.detach()))
                self.d_opt.zero_grad(set_to_none=True)
                loss.backward()
                self.d_opt.step()
        return float(loss.detach())

    def adversarial(self, fake: Tensor) -> Tensor:
        """The generator loss of `fake` against $D$ held constant (no gradient reaches $D$'s weights)."""
        frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        return generator_loss(functional_call(self.discriminator, frozen, (fake,)))

    def forward(self, learner: Learner, states: Sequence[LearnerState],
                rng: torch.Generator | None = None) -> tuple[Tensor, dict[str, float | Tensor]]:
        """$D$ learns first; then `base`'s loss plus $\\lambda$ times the generator loss of fresh images.

        Logs the base objective's numbers and `gan_loss` (the generator loss), `d_loss`,
        and `d_fake` (the mean probability $D$ gives the generated images of being real).
        """
        meta, logs = self.base(learner, states, rng)
        teacher, curriculum = self._generator
        fake = generated_images(teacher, curriculum, rng)
        real, _ = self.real.sample(self.batch_size, rng)
        d_loss = self.fit_discriminator(real, fake)
        adv = self.adversarial(fake)
        with torch.no_grad():
            d_fake = torch.sigmoid(self.discriminator(fake)).mean()
        return meta + self.weight * adv, {**logs, "gan_loss": adv.detach(), "d_loss": d_loss, "d_fake": d_fake}


def gan_step(objective: GANObjective, optimizer: torch.optim.Optimizer, rng: torch.Generator | None = None) -> dict:
    """One update of a plain GAN with `objective`'s generator and $D$: $D$ learns, then the generator.

    The generator minimises only the GAN generator loss of its images (no learner, no
    meta-loss): the comparison for GTN-GAN. `optimizer` holds the teacher's parameters.
    """
    teacher, curriculum = objective._generator
    fake = generated_images(teacher, curriculum, rng)
    real, _ = objective.real.sample(objective.batch_size, rng)
    d_loss = objective.fit_discriminator(real, fake)
    loss = objective.adversarial(fake)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"gan_loss": loss.item(), "d_loss": d_loss}

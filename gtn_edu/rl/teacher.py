r"""The CartPole teacher: a generator of (state, action target) pairs (appendix H).

    z (latent_dim) -> [FC -> LeakyReLU] x len(hidden) -> FC 6 -> (state (4) * state_scale, target (2))

The learner, a `PolicyLearner`, regresses its two action scores on the targets at the
generated states (mean squared error), so both halves are learned: *where* in state space
the teacher puts its examples, and *what* the policy should answer there. The codes z are
a `Curriculum` (one learned code per pair, `PairTeacher.curriculum()`), so the whole batch
of 512 pairs is a pure function of the generator's weights and the codes, as the engine's
recomputing path needs.

The state output is scaled per dimension by `state_scale` (CartPole's own ranges: the cart
fails at |x| > 2.4 and the pole at |angle| > 0.21 rad), so one generator weight scale fits
all four coordinates; the states are not clipped to those ranges.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..curriculum import Curriculum
from ..nn import LEAKY_SLOPE, WNLinear
from ..teacher import BaseTeacher, TensorBatches, generated_batches
from .policy import NUM_ACTIONS, STATE_DIM

__all__ = ["PairTeacher", "STATE_SCALE"]

STATE_SCALE = (2.4, 1.0, 0.21, 1.5)
"""Scale of each generated state coordinate: cart position, cart velocity, pole angle, angular velocity."""


class PairTeacher(BaseTeacher):
    """A generator of CartPole training pairs: $(s, \\hat y) = G(z)$. Override `forward` for another.

    Args:
        latent_dim: size of each code z.
        hidden: widths of the hidden layers.
        state_scale: multiplies each of the 4 state outputs (`STATE_SCALE` by default).
        weight_norm: weight-normalise every layer (the paper's CartPole run had none; the
            image GTNs found it stabilises meta-training).
    """

    def __init__(self, latent_dim: int = 32, hidden: Sequence[int] = (64, 64), *,
                 state_scale: Sequence[float] = STATE_SCALE, weight_norm: bool = True) -> None:
        super().__init__()
        if len(state_scale) != STATE_DIM:
            raise ValueError(f"state_scale needs one value per state coordinate ({STATE_DIM}), got {state_scale}")
        if latent_dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"latent_dim and every hidden width must be positive, got {latent_dim} and {hidden}")
        self.latent_dim, self.num_classes = latent_dim, 1  # one "class": the curriculum's labels are unused
        widths = [latent_dim, *hidden]
        self.layers = nn.ModuleList(WNLinear(a, b, weight_norm=weight_norm) for a, b in zip(widths, widths[1:]))
        self.out = WNLinear(widths[-1], STATE_DIM + NUM_ACTIONS, weight_norm=weight_norm)
        self.register_buffer("state_scale", torch.tensor([float(v) for v in state_scale]))

    def forward(self, z: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:  # z (B, L) -> (B, 4), (B, 2)
        """States and action targets for codes `z` (B, latent_dim); `y` (the curriculum's labels) is unused."""
        h = z
        for layer in self.layers:
            h = F.leaky_relu(layer(h), LEAKY_SLOPE)
        out = self.out(h)
        return out[:, :STATE_DIM] * self.state_scale, out[:, STATE_DIM:]

    def curriculum(self, batch_size: int = 512, steps: int = 1) -> Curriculum:
        """Learned codes for `steps` inner steps of `batch_size` pairs (appendix H: one step of 512)."""
        return Curriculum.full(steps, batch_size, num_classes=1, latent_dim=self.latent_dim)

    def batches(self, curriculum: Curriculum, rng: torch.Generator | None = None) -> TensorBatches:
        """Inner batch t = (states, targets) = G(z_t), differentiable in the weights and the codes."""
        return generated_batches(self, curriculum, rng)

r"""The CartPole learner (a policy trained by regression on the teacher's pairs) and its critic.

Appendix H: "a single-layer neural network with 64 hidden units and a tanh activation
function for both the policy and the value network".

* `PolicyLearner` (4 -> 64 tanh -> 2) is a `Learner`: `UnrolledSGD` trains it on the
  teacher's (state, target) pairs with its `inner_loss`, the mean squared error between
  its two outputs and the targets. Its outputs are action scores; the policy is
  $\pi(a|s) = \text{softmax}(f_\theta(s))_a$, sampled while meta-training and taken greedily
  ($\arg\max_a$) when a trained policy is scored.
* `PolicySpace` gives a fresh initialisation every outer iteration (and, if asked, a hidden
  width drawn from a range), as the image tasks' `ArchSpace`s do.
* `ValueNet` (4 -> 64 tanh -> 1) is the baseline $V(s)$ of the policy-gradient meta-objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..arch_space import ArchSpace, _check_keys, _uniform, seeded_build
from ..learner import LearnerState, MLPLearner

__all__ = ["PolicyLearner", "PolicySpace", "ValueNet", "STATE_DIM", "NUM_ACTIONS"]

STATE_DIM, NUM_ACTIONS = 4, 2


class PolicyLearner(MLPLearner):
    """A CartPole policy: state (4) -> tanh hidden layer(s) -> 2 action scores; no BatchNorm, no weight norm.

    The paper's CartPole learners predate weight normalisation in GTN and have none. The
    weights start from Kaiming-normal draws and zero biases (`WNLinear`'s initialisation).

    Args:
        hidden: width of the hidden layer (the paper: 64), or the widths of several.
    """

    def __init__(self, hidden: int | tuple[int, ...] = 64) -> None:
        widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
        super().__init__((STATE_DIM,), NUM_ACTIONS, widths, batch_norm=False, weight_norm=False,
                         activation=torch.tanh)

    def inner_loss(self, output: Tensor, target: Tensor) -> Tensor:
        r"""Mean squared error to the teacher's action targets (the inner loop is regression)."""
        if output.shape != target.shape:
            raise ValueError(f"PolicyLearner regresses its {NUM_ACTIONS} action scores on targets of the same "
                             f"shape; got outputs {tuple(output.shape)} and targets {tuple(target.shape)}. Train it "
                             "on a teacher that makes (state, target) pairs, e.g. gtn_edu.rl.PairTeacher.")
        return F.mse_loss(output, target)

    def log_probs(self, state: LearnerState, obs: Tensor) -> Tensor:
        r"""$\log \pi(\cdot | s)$ for a batch of observations (B, 4) -> (B, 2); differentiable in `state`."""
        return self.predict(state, _like(obs, state)).log_softmax(-1)

    def act(self, state: LearnerState, obs: Tensor, *, greedy: bool = False,
            rng: torch.Generator | None = None) -> Tensor:
        """Actions (B,) for observations (B, 4): sampled from $\\pi$, or its most likely action."""
        with torch.no_grad():
            scores = self.predict(state, _like(obs, state))
            if greedy:
                return scores.argmax(-1)
            return torch.multinomial(scores.softmax(-1), 1, generator=rng).squeeze(1)


def _like(obs: Tensor, state: LearnerState) -> Tensor:
    """Observations (float32, CPU, from the simulator) on the device and in the dtype of the policy's weights."""
    w = next(iter(state.params.values()))
    return obs.to(w.device, w.dtype)


@dataclass
class PolicySpace(ArchSpace):
    """Fresh CartPole policies: hidden width drawn from `hidden_range` (both ends included), new initialisation.

    The paper's learners all have 64 hidden units (the default), so only the initialisation
    changes from one outer iteration to the next.

    Args:
        hidden_range: inclusive (low, high) hidden width.
    """

    hidden_range: tuple[int, int] = (64, 64)
    input_shape: tuple[int, ...] = (STATE_DIM,)
    num_classes: int = NUM_ACTIONS

    def __post_init__(self) -> None:
        lo, hi = self.hidden_range
        if not 1 <= lo <= hi:
            raise ValueError(f"hidden_range must satisfy 1 <= low <= high, got {self.hidden_range}")

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        """`{"hidden": h}`, h drawn uniformly from `hidden_range`."""
        return {"hidden": _uniform(*self.hidden_range, rng)}

    def build(self, spec: dict, rng: torch.Generator | None = None) -> PolicyLearner:
        """The policy of `spec`, initialised from `rng`'s stream."""
        _check_keys(self, spec, {"hidden"})
        return seeded_build(lambda: PolicyLearner(int(spec["hidden"])), rng)


class ValueNet(nn.Module):
    """The critic $V(s)$: state (4) -> tanh hidden layer -> 1 (appendix H: 64 units).

    Args:
        hidden: width of the hidden layer.
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(STATE_DIM, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, obs: Tensor) -> Tensor:  # (..., 4) -> (...)
        return self.net(obs).squeeze(-1)

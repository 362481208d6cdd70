r"""The policy-gradient meta-objective of the CartPole GTN (appendix H).

The simulator is not differentiable, so the trained policy $\theta_1(\phi)$ (one SGD step
on the teacher's pairs) *plays* a batch of episodes, and the meta-loss is the advantage
actor-critic surrogate of what it played (Mnih et al., 2016):

$$ L(\phi) = -\frac{1}{M} \sum_{(s_t, a_t)} \log \pi_{\theta_1(\phi)}(a_t | s_t)\,
   \big(R_t - V(s_t)\big), \qquad R_t = \sum_{k \ge t} \gamma^{k-t} r_k, $$

over the M steps of the episodes. Its gradient with respect to $\theta_1$ is the policy
gradient; back-propagated through the inner step it reaches the teacher's weights, its
codes and the inner learning rate. The advantage $R_t - V(s_t)$ is a constant of the
surrogate (no gradient through $V$ or the returns).

$V$ is a `ValueNet` "trained to estimate the average state-value for the learners produced
so far": after each outer iteration it takes `value_steps` Adam steps on the squared error
to the returns just observed. It, its Adam state and the count of environment steps are
part of the objective's `state_dict`, so the trainer's checkpoints carry them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..learner import LearnerState
from ..objective import MetaObjective
from .env import MAX_STEPS, Episodes, make_envs, play
from .policy import PolicyLearner, ValueNet

__all__ = ["A2CObjective", "policy_gradient_loss"]


def policy_gradient_loss(log_probs: Tensor, actions: Tensor, advantages: Tensor) -> Tensor:
    r"""The surrogate $-\frac1M \sum_i \log \pi(a_i | s_i)\, A_i$ of M (state, action) samples.

    Args:
        log_probs: (M, A) $\log \pi(\cdot | s_i)$.
        actions: (M,) actions taken.
        advantages: (M,) advantages $A_i$ (treated as constants).
    """
    chosen = log_probs.gather(1, actions[:, None].to(log_probs.device)).squeeze(1)  # log pi(a_i | s_i)
    return -(chosen * advantages.detach().to(chosen.dtype)).mean()


class A2CObjective(MetaObjective):
    r"""Advantage actor-critic meta-loss: play episodes with the trained policy, score them.

    Args:
        num_envs: episodes per outer iteration (one per environment, played together).
        max_steps: episode cap (the paper: 200).
        gamma: discount $\gamma$ of the returns $R_t$.
        normalize: standardise the advantages of each batch (zero mean, unit spread): the
            step size of the outer Adam then does not depend on how long episodes are.
        value_hidden: width of the critic's hidden layer (the paper: 64).
        value_lr: Adam learning rate of the critic.
        value_steps: critic Adam steps per outer iteration.
    """

    progress_fields = {"return": "return"}

    def __init__(self, num_envs: int = 16, max_steps: int = MAX_STEPS, *, gamma: float = 0.99,
                 normalize: bool = True, value_hidden: int = 64, value_lr: float = 1e-2,
                 value_steps: int = 5) -> None:
        super().__init__()
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must lie in (0, 1], got {gamma}")
        if value_steps < 0 or not value_lr > 0:
            raise ValueError(f"value_steps must be >= 0 and value_lr > 0, got {value_steps} and {value_lr}")
        self.num_envs, self.max_steps, self.gamma, self.normalize = num_envs, max_steps, gamma, normalize
        self.value_steps = value_steps
        self.envs = make_envs(num_envs, max_steps)
        self.value = ValueNet(value_hidden)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=value_lr)
        self.register_buffer("env_steps", torch.zeros((), dtype=torch.long))  # spent while meta-training

    # ---- the critic's Adam state travels with the module's state_dict ----
    def get_extra_state(self) -> dict:
        return {"value_optimizer": self.value_opt.state_dict()}

    def set_extra_state(self, state: dict) -> None:
        self.value_opt.load_state_dict(state["value_optimizer"])

    # ---- the pieces, each usable on its own ----
    def collect(self, learner: PolicyLearner, state: LearnerState, rng: torch.Generator | None) -> Episodes:
        """Play `num_envs` episodes with actions sampled from $\\pi_\\theta$; seeds drawn from `rng`."""
        dev = rng.device if rng is not None else torch.device("cpu")
        seed = int(torch.randint(2**31 - 1, (1,), generator=rng, device=dev))
        state = state.detach()
        return play(lambda o: learner.act(state, o, rng=rng), self.num_envs, seed=seed,
                    max_steps=self.max_steps, envs=self.envs)

    def advantages(self, episodes: Episodes) -> tuple[Tensor, Tensor, Tensor]:
        """Observations (M, 4), returns $R_t$ (M,) and advantages $R_t - V(s_t)$ (M,) of the played steps."""
        alive = episodes.alive
        obs, returns = episodes.obs[alive], episodes.returns_to_go(self.gamma)[alive]
        dev = self.env_steps.device
        obs, returns = obs.to(dev), returns.to(dev)
        with torch.no_grad():
            adv = returns - self.value(obs)
        if self.normalize and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        return obs, returns, adv

    def surrogate(self, learner: PolicyLearner, state: LearnerState, episodes: Episodes, advantages: Tensor) -> Tensor:
        """The differentiable meta-loss of `state` on episodes already played (advantages fixed)."""
        alive = episodes.alive
        obs = episodes.obs[alive].to(advantages.device)
        return policy_gradient_loss(learner.log_probs(state, obs), episodes.actions[alive], advantages)

    def fit_value(self, obs: Tensor, returns: Tensor) -> float:
        """`value_steps` Adam steps of the critic on $(V(s) - R)^2$; returns the last loss (nan if none)."""
        loss = torch.tensor(float("nan"))
        with torch.enable_grad():
            for _ in range(self.value_steps):
                loss = (self.value(obs) - returns).square().mean()
                self.value_opt.zero_grad(set_to_none=True)
                loss.backward()
                self.value_opt.step()
        return float(loss.detach())

    def forward(self, learner: PolicyLearner, states: Sequence[LearnerState],
                rng: torch.Generator | None = None) -> tuple[Tensor, dict[str, float]]:
        """Mean surrogate over the scored states, each playing its own episodes; then the critic learns.

        Logs `return` (mean episode length of the last state's episodes), `value_loss` and
        `env_steps` (all environment steps this objective has played so far).
        """
        losses, played = [], []
        for state in states:
            episodes = self.collect(learner, state, rng)
            obs, returns, adv = self.advantages(episodes)
            losses.append(self.surrogate(learner, state, episodes, adv))
            played.append((obs, returns))
            self.env_steps += episodes.steps
        value_loss = self.fit_value(torch.cat([o for o, _ in played]), torch.cat([r for _, r in played]))
        return torch.stack(losses).mean(), {"return": float(episodes.lengths.float().mean()),
                                            "value_loss": value_loss, "env_steps": int(self.env_steps)}

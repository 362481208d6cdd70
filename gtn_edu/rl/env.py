r"""CartPole episodes, played by any policy in a batch of gymnasium environments.

The outer loop of the CartPole GTN (appendix H) needs real episodes: the simulator is not
differentiable, so the trained policy *plays*, and the meta-gradient comes from the
policy-gradient surrogate of what it played (`objective.py`). This module plays them.

* `make_envs(n)`: gymnasium's vectorised CartPole-v1 (`CartPoleVectorEnv`, numpy-batched),
  episodes cut at `max_steps` (200, the paper's cap; v1's own cap is 500).
* `play(act, n, seed=...)`: one episode in each of n environments; returns an `Episodes`
  batch (observations, actions, which steps were alive, episode lengths). The reward of
  CartPole is 1 for every step the pole stays up, so an episode's return is its length:
  "frames out of 200 for which the pole is elevated", the paper's score.

gymnasium is an optional dependency (the `rl` extra); `require_gymnasium()` names the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Episodes", "play", "make_envs", "require_gymnasium", "MAX_STEPS", "STATE_NAMES"]

MAX_STEPS = 200
"""The paper's episode cap ("frames out of 200"); CartPole-v1's own is 500."""
STATE_NAMES = ("cart position", "cart velocity", "pole angle", "pole angular velocity")


def require_gymnasium():
    """Import gymnasium, or raise an ImportError that says how to install it."""
    try:
        import gymnasium
    except ImportError as err:
        raise ImportError("the CartPole task needs gymnasium, which is not installed. Install the `rl` extra: "
                          'pip install -e ".[rl]"  (or: pip install "gymnasium>=1.0")') from err
    return gymnasium


def make_envs(num_envs: int, max_steps: int = MAX_STEPS):
    """`num_envs` CartPole-v1 environments stepped together, episodes cut after `max_steps` steps."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be a positive number of environments, got {num_envs}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be a positive episode cap (the paper: 200), got {max_steps}")
    require_gymnasium()
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    return CartPoleVectorEnv(num_envs=num_envs, max_episode_steps=max_steps)


@dataclass
class Episodes:
    """One episode from each of N environments, padded to the longest (S steps).

    Attributes:
        obs: (S, N, 4) observations $s_t$ (padding after an episode ends holds zeros).
        actions: (S, N) actions $a_t$ taken (0: push left, 1: push right).
        alive: (S, N) True where step t belongs to the episode (the pole was up before it).
        lengths: (N,) episode lengths = returns (reward 1 per step).
        max_steps: the episode cap the episodes were played with.
    """

    obs: Tensor
    actions: Tensor
    alive: Tensor
    lengths: Tensor
    max_steps: int

    @property
    def steps(self) -> int:
        """Environment steps spent: the sum of the episode lengths."""
        return int(self.lengths.sum())

    def returns_to_go(self, gamma: float = 0.99) -> Tensor:
        r"""(S, N) discounted returns $R_t = \sum_{k \ge t} \gamma^{k-t} r_k$, zero on padding.

        Episodes cut by the cap are not bootstrapped: their last steps see a shorter future
        than the policy would have (the usual choice for CartPole at this scale).
        """
        r = self.alive.to(self.obs.dtype)  # reward 1 on every step of the episode
        out, acc = torch.zeros_like(r), torch.zeros_like(r[0])
        for t in range(r.shape[0] - 1, -1, -1):
            acc = r[t] + gamma * acc  # padding holds r = 0 and comes only after the episode
            out[t] = acc
        return out


def play(act: Callable[[Tensor], Tensor], num_envs: int, *, seed: int, max_steps: int = MAX_STEPS,
         envs=None) -> Episodes:
    """Play one episode in each of `num_envs` environments with `act(obs (N, 4)) -> actions (N,)`.

    Args:
        act: the policy: a batch of float32 observations to integer actions (no gradient
            needed; `objective.py` recomputes log-probabilities with one batched pass).
        num_envs: episodes to play at once.
        seed: seeds the environments' start states (same seed and policy: same episodes).
        max_steps: episode cap (200: the paper's).
        envs (gymnasium.vector.VectorEnv | None): environments from `make_envs(num_envs, max_steps)` to
            reuse (None: new ones).
    """
    envs = make_envs(num_envs, max_steps) if envs is None else envs
    if envs.num_envs != num_envs:
        raise ValueError(f"envs holds {envs.num_envs} environments, not num_envs={num_envs}")
    obs, _ = envs.reset(seed=int(seed))
    alive = torch.ones(num_envs, dtype=torch.bool)
    all_obs, all_actions, all_alive = [], [], []
    for _ in range(max_steps):
        o = torch.as_tensor(obs, dtype=torch.float32)
        with torch.no_grad():
            a = act(o).to("cpu", torch.long)
        all_obs.append(torch.where(alive[:, None], o, 0.0))
        all_actions.append(a)
        all_alive.append(alive.clone())
        obs, _, terminated, truncated, _ = envs.step(a.numpy())
        alive &= ~torch.as_tensor(terminated | truncated)
        if not alive.any():
            break
    alive_steps = torch.stack(all_alive)
    return Episodes(torch.stack(all_obs), torch.stack(all_actions), alive_steps, alive_steps.sum(0), max_steps)

r"""The control of Figure 8: one policy trained from scratch by advantage actor-critic.

The paper compares the GTN with an A2C learner (Mnih et al., 2016) by the number of
simulator steps each spends. This control uses the *same* objective as the GTN's outer
loop (`A2CObjective`: the same episodes, returns, critic and surrogate), but its gradient
goes straight into the policy's own weights, updated by Adam, instead of through an inner
SGD step into a teacher. It is the episodic (batch-of-whole-episodes) form of A2C; the
original runs n-step rollouts with bootstrapped returns.

Every `eval_every` updates the greedy policy plays `eval_episodes` episodes (not counted in
the environment steps, as the GTN's evaluations are not), which gives the curve of return
against environment steps spent.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..seeding import make_rng, seeded
from .env import MAX_STEPS, make_envs, play
from .objective import A2CObjective
from .policy import PolicySpace

__all__ = ["train_a2c"]


def train_a2c(env_steps: int, *, num_envs: int = 16, lr: float = 1e-2, hidden: int = 64, gamma: float = 0.99,
              value_lr: float = 1e-2, value_steps: int = 5, max_steps: int = MAX_STEPS, eval_every: int = 5,
              eval_episodes: int = 10, seed: int = 0, progress: bool = True) -> list[dict]:
    """Train one fresh policy by A2C until it has played `env_steps` environment steps.

    Args:
        env_steps: budget of environment steps for training.
        num_envs: episodes per update.
        lr: Adam learning rate of the policy.
        hidden: policy and critic hidden width (the paper: 64).
        gamma: discount of the returns.
        value_lr: Adam learning rate of the critic.
        value_steps: critic steps per update.
        max_steps: episode cap (the paper: 200).
        eval_every: updates between greedy evaluations.
        eval_episodes: episodes per greedy evaluation.
        seed: seeds the policy ("a2c/init"), its actions and episodes ("a2c/data") and the evaluations ("a2c/eval").

    Returns:
        One record per evaluation: `update`, `env_steps` (spent training so far), `return`
        (mean greedy return), `train_return` (mean return of the last update's sampled episodes; None before the first).
    """
    if env_steps < 1 or eval_every < 1:
        raise ValueError(f"env_steps and eval_every must be positive, got {env_steps} and {eval_every}")
    learner = PolicySpace((hidden, hidden)).sample(make_rng(seed, "a2c/init"))
    state = learner.init_state()
    params = list(state.params.values())
    for p in params:
        p.requires_grad_()
    optimizer = torch.optim.Adam(params, lr=lr)
    with seeded(seed, "a2c/value"):  # the critic's initialisation, from its own stream
        objective = A2CObjective(num_envs, max_steps, gamma=gamma, value_hidden=hidden, value_lr=value_lr,
                                 value_steps=value_steps)
    data_rng, eval_rng = make_rng(seed, "a2c/data"), make_rng(seed, "a2c/eval")
    eval_envs, records, update, train_return = make_envs(eval_episodes, max_steps), [], 0, None

    def evaluate() -> None:
        start = int(torch.randint(2**31 - 1, (1,), generator=eval_rng))
        played = play(lambda o: learner.act(state, o, greedy=True), eval_episodes, seed=start,
                      max_steps=max_steps, envs=eval_envs)
        records.append({"update": update, "env_steps": int(objective.env_steps),
                        "return": float(played.lengths.float().mean()), "train_return": train_return})

    bar = tqdm(total=env_steps, desc="A2C control", disable=not progress, dynamic_ncols=True, unit="step")
    evaluate()
    while int(objective.env_steps) < env_steps:
        before = int(objective.env_steps)
        loss, logs = objective(learner, [state], data_rng)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        update, train_return = update + 1, logs["return"]
        bar.update(int(objective.env_steps) - before)
        bar.set_postfix({"return": f"{train_return:.1f}"})
        if update % eval_every == 0:
            evaluate()
    bar.close()
    if records[-1]["update"] != update:
        evaluate()
    return records

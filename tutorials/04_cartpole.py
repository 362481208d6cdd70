# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Tutorial 4: a GTN that teaches CartPole in one SGD step
#
# The first three tutorials generated *images*. Appendix H of the paper asks whether a GTN
# can teach a reinforcement-learning agent. The task is CartPole: push a cart left or right
# to keep a pole upright, scoring 1 for every frame it stays up, at most 200. The GTN
# generates 512 (state, target action) pairs. A freshly initialised policy (4 inputs, 64
# tanh units, 2 outputs) takes **one** SGD step on them, regressing its outputs on the
# targets (mean squared error). Then it plays real episodes. The simulator is not
# differentiable, so the meta-loss is the advantage actor-critic surrogate of those
# episodes, $-\log \pi(a|s)\,(R - V(s))$. Its gradient still flows back through the one
# inner step into the generator.
#
# You will
#
# 1. play CartPole with a random and with a hand-written policy;
# 2. build the pieces: the pair generator, the policy, one inner step, the meta-objective;
# 3. meta-train with a progress bar and watch fresh one-step policies improve;
# 4. score 20 fresh policies, 10 episodes each (the paper: about 190 of 200);
# 5. compare the environment steps spent with an A2C control (Figure 8);
# 6. look at what the GTN generates, and at one episode of a one-step policy.
#
# **Size switch.** The environment variable `GTN_EDU_TUTORIAL_SIZE` picks the scale:
#
# | size | what it runs | where, how long |
# |---|---|---|
# | `tiny` | 3 outer iterations, 4 short episodes each | any CPU, seconds (tests, CI) |
# | `quick` (default) | 200 outer iterations of 32 episodes; A2C control: 300k steps | 2-core CPU: about 2 minutes |
# | `paper` | 1000 outer iterations of 64 episodes, no weight norm; A2C: 1M steps | CPU or GPU; not timed yet |
#
# (`CartPoleConfig.sized(SIZE)` holds the settings; the episodes run on the CPU at every size.)
#
# CartPole comes from gymnasium, the `rl` extra: `pip install -e ".[rl]"`. Nothing is downloaded.

# %%
import datetime
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import gtn_edu
from gtn_edu.rl import (
    CartPoleConfig,
    build_cartpole,
    play,
    require_gymnasium,
    train_a2c,
)
from gtn_edu.rl.experiment import CurveCallback, first_reaching, learning_curve
from gtn_edu.rl.plots import ANGLE_LIMIT, CART_LIMIT, plot_episode, plot_figure8, plot_pairs

# %%
SIZE = os.environ.get("GTN_EDU_TUTORIAL_SIZE", "quick")
if SIZE not in ("tiny", "quick", "paper"):
    raise ValueError(f"GTN_EDU_TUTORIAL_SIZE must be tiny, quick or paper, got {SIZE!r}")
device = "cuda" if SIZE == "paper" and torch.cuda.is_available() else "cpu"
cfg = CartPoleConfig.sized(SIZE, device=device)
gym = require_gymnasium()  # a clear ImportError naming the `rl` extra if gymnasium is missing

OUT = Path(os.environ.get("GTN_EDU_TUTORIAL_OUT", "runs/tutorials")) / "04_cartpole" / SIZE
OUT.mkdir(parents=True, exist_ok=True)
print(f"size {SIZE!r} on {device}: {cfg.outer_steps} outer iterations of {cfg.num_envs} episodes (cap "
      f"{cfg.max_steps}), {cfg.inner_steps} inner step on {cfg.inner_batch} generated pairs; files go to {OUT}/")
print(f"gtn_edu {gtn_edu.__version__}, torch {torch.__version__}, gymnasium {gym.__version__}, "
      f"{torch.get_num_threads()} CPU threads, {datetime.date.today()}")

# %% [markdown]
# ## 1. CartPole, played by hand
#
# A state is four numbers: cart position, cart velocity, pole angle (radians) and pole
# angular velocity. An episode ends when the pole tilts past 0.21 rad (12 degrees), when the
# cart leaves the track (|x| > 2.4), or after `max_steps` frames. `play` runs one episode in
# each of a batch of environments with any function from observations to actions. Its
# `Episodes` hold the observations, the actions, a mask of the steps that belong to each
# episode, and the lengths, which are the returns.

# %%
coin = torch.Generator().manual_seed(0)
random_policy = play(lambda obs: torch.randint(2, (len(obs),), generator=coin), 20, seed=0, max_steps=cfg.max_steps)
# Push towards the side the pole is falling to: a one-line controller.
by_hand = play(lambda obs: (obs[:, 2] + 0.5 * obs[:, 3] > 0).long(), 20, seed=0, max_steps=cfg.max_steps)
print(f"random actions: {random_policy.lengths.float().mean():.1f} frames on average; "
      f"a hand-written rule: {by_hand.lengths.float().mean():.1f} of {cfg.max_steps}")

# %% [markdown]
# ## 2. The pieces
#
# `build_cartpole(cfg)` assembles the run. Every piece is a class you can subclass:
#
# * `PairTeacher`: an MLP from a learned code $z$ to a state (4 numbers) and a target
#   (2 action scores). Its codes are a `Curriculum` of 512 learned vectors.
# * `PolicySpace`: a fresh `PolicyLearner` (4 -> 64 tanh -> 2) every outer iteration. Its
#   `inner_loss` is the mean squared error to the targets. Its policy is the softmax of its
#   outputs.
# * `UnrolledSGD`: the inner step, $\theta_1 = \theta_0 - \alpha \nabla_\theta
#   \tfrac{1}{B}\sum \lVert f_\theta(s_i) - \hat y_i\rVert^2$, with $\alpha$ learned.
# * `A2CObjective`: plays `num_envs` episodes with $\theta_1$ and returns the surrogate
#   $-\frac1M\sum \log\pi_{\theta_1}(a_t|s_t)(R_t - V(s_t))$. It then fits its critic $V$ to
#   the returns it saw.
#
# One outer iteration, by hand: the meta-gradient reaches the generator through the inner step.

# %%
run = build_cartpole(cfg)
learner = run.space.sample(torch.Generator().manual_seed(0)).to(device)
batches = run.teacher.batches(run.curriculum)
states, targets = batches.batch(0, batches.tensors)
print(f"one inner batch: states {tuple(states.shape)}, targets {tuple(targets.shape)}")
theta_1 = run.sgd.unroll(learner, batches)                      # one differentiable SGD step
loss, logs = run.objective(learner, [theta_1], torch.Generator().manual_seed(0))
loss.backward()
grad = run.teacher.out.bias.grad
print(f"surrogate {loss.item():.3f} after episodes of mean length {logs['return']:.1f}; "
      f"d loss / d (generator output bias) = {grad.tolist()}")
run.teacher.zero_grad()
run.curriculum.zero_grad()
run.sgd.zero_grad()

# %% [markdown]
# ## 3. Meta-train
#
# `MetaTrainer` runs the outer loop. It samples a policy, takes the inner step, calls the
# objective and takes an Adam step, with a progress bar. `CurveCallback` scores a few fresh
# one-step policies (greedy actions) every `eval_every` iterations. The trainer keeps those
# scores in its history, next to the environment steps spent so far.

# %%
run = build_cartpole(cfg)  # a fresh run (the cell above spent some episodes)
run.trainer.callbacks.append(CurveCallback(run, cfg.eval_every, cfg.curve_policies, cfg.eval_episodes))
start = time.perf_counter()
run.trainer.fit(cfg.outer_steps, desc="CartPole GTN", checkpoint=OUT / "checkpoint.pt", checkpoint_every=50)
gtn_curve = learning_curve(run.trainer.history)  # the points CurveCallback scored
seconds = sum(r["seconds"] for r in run.trainer.history)
print(f"{run.trainer.iteration} outer iterations: {seconds:.0f} s of meta-training, "
      f"{time.perf_counter() - start:.0f} s with the learning-curve scoring; environment steps played: "
      f"{int(run.objective.env_steps)}; learned inner lr {run.sgd.lr.item():.3f}")

# %% [markdown]
# ## 4. The paper's measure: fresh policies, one SGD step each
#
# `run.score()` trains `eval_learners` fresh policies (new initialisations, which the
# teacher never saw) by one step on the teacher's batch. Each then plays `eval_episodes`
# greedy episodes.

# %%
final = run.score()
print(f"fresh one-step policies: {final}")
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.hist(final.policy_means.numpy(), bins=20, range=(0, cfg.max_steps))
ax.set_xlabel(f"mean return of one policy over {cfg.eval_episodes} episodes")
ax.set_ylabel("policies")
ax.set_title(f"{cfg.eval_learners} fresh policies after one SGD step on GTN data")
plt.show()

# %% [markdown]
# ## 5. Figure 8: environment steps, GTN against an A2C control
#
# The control trains *one* policy from scratch with the same objective and the same
# critic. The gradient goes straight into the policy's weights instead of through a
# teacher. Its steps count the episodes it trained on. The GTN's steps count the episodes
# meta-training played.

# %%
a2c = train_a2c(cfg.a2c_env_steps, num_envs=cfg.num_envs, lr=cfg.a2c_lr, hidden=cfg.policy_hidden,
                max_steps=cfg.max_steps, eval_episodes=cfg.eval_episodes, seed=cfg.seed)
summary = {"gtn_curve": gtn_curve, "a2c_curve": a2c, "final": {"max_steps": cfg.max_steps}}
target = 0.95 * cfg.max_steps
gtn_at = first_reaching([(p["env_steps"], p["return"]) for p in gtn_curve], target)
a2c_at = first_reaching([(p["env_steps"], p["return"]) for p in a2c], target)
for name, at in (("GTN", gtn_at), ("A2C", a2c_at)):
    print(f"{name}: " + (f"first curve point at >= {target:.0f} after {at:,} environment steps" if at is not None
                         else f"no point of its curve reached {target:.0f}"))
plot_figure8(summary)
plt.show()

# %% [markdown]
# ## 6. What does the GTN generate?
#
# Each dot is one of the generated states, coloured by which action its target prefers
# (red: push right). The dotted lines mark where a real episode fails. A human teacher
# would show states inside those lines and say "push right when the pole leans or swings
# right", the hand-written rule of section 1. The GTN is under no obligation to do
# either: only what a policy learns from its pairs in one step is scored. Look at where
# its states lie, and at how many of them a real episode could ever visit.

# %%
plot_pairs(run.teacher, run.curriculum)
plt.show()
with torch.no_grad():
    batches = run.teacher.batches(run.curriculum)
    s, y = batches.batch(0, batches.tensors)
    right = (y[:, 1] > y[:, 0]).float()
    agree = ((s[:, 2] + 0.5 * s[:, 3] > 0).float() == right).float().mean()
    inside = ((s[:, 0].abs() < CART_LIMIT) & (s[:, 2].abs() < ANGLE_LIMIT)).float().mean()
print(f"{100 * inside:.0f}% of the generated states lie where a real episode can be (|x| < 2.4, |angle| < 0.21)")
print("generated states, mean and sd per coordinate (cart x, cart v, angle, angular v):",
      [f"{m:.2f} +- {d:.2f}" for m, d in zip(s.mean(0).tolist(), s.std(0).tolist())])
print(f"{100 * right.mean():.0f}% of the targets prefer 'right'; the hand-written rule agrees with "
      f"{100 * agree:.0f}% of them")

# %% [markdown]
# ## 7. One episode of a one-step policy
#
# A new policy, a single SGD step on the teacher's 512 pairs, then one greedy episode:

# %%
plot_episode(run, seed=cfg.seed)
plt.show()

# %% [markdown]
# ## 8. Reading this honestly
#
# * CartPole is an easy task. A one-line controller balances it (section 1), and so does a
#   policy trained from scratch by A2C within a few thousand episodes. What is remarkable is
#   only that *one* gradient step on 512 generated pairs does it from a random
#   initialisation.
# * Environment steps: the paper found meta-training a GTN costs about as many simulator
#   steps as training one A2C learner. This run's Figure 8 shows the number for this size.
#   Compare the first crossing of 95% of the cap above. The control here is episodic
#   (whole episodes, no bootstrapping), not the original n-step A2C.
# * Policies differ: some initialisations stay below the cap after their one step (the
#   histogram in section 4). The score is a mean over policies *and* episodes.
# * The GTN's data is not a demonstration. In section 6 the generated states lie
#   where no episode goes (in the stored run: poles tilted by several radians, spinning
#   tens of radians a second), and the targets do not read as "the right action here".
#   The pairs are chosen for what one gradient step on them does to a random network
#   near the upright pole, like the paper's unrealistic GTN images (its Figure 3b).
# * Other architectures: the paper says its RL data "has not yet been shown to work with
#   different architectures". `benchmarks/cartpole_architectures.py --quick` gives this
#   quick GTN's pairs (meta-trained on 64-unit policies, seed 0) to fresh policies of other
#   shapes, one SGD step each (20 policies x 10 greedy episodes, 2026-12-03, AMD CPU):
#   64 units 185.6, 128 units 197.1, 256 units 199.8, 32 units 165.6, 16 units 138.0; two
#   64-unit layers 181.7, three 142.6; two 16-unit layers 101.1. Wider policies learn more
#   from the same step, narrower and deeper ones less: the data carries over, not evenly
#   (the benchmarks page, "E. CartPole", has the table and the spread).
#
# **Exercises.**
#
# 1. Take two inner steps instead of one: `CartPoleConfig.sized("quick", inner_steps=2)`.
#    Does the teacher need fewer outer iterations? Does the learned lr change?
# 2. Shrink the batch: `inner_batch=32`. How few generated pairs can still teach a policy?
# 3. Turn off advantage normalisation (`normalize=False`) and compare the learning curves.
# 4. Give the learners other widths: `PolicySpace((16, 128))` in `build_cartpole`'s place
#    (set `run.space` and `run.trainer.arch_space`). Does one teacher teach them all?

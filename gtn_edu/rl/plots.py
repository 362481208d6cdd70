"""Figures of a CartPole GTN run (matplotlib, imported when a figure is drawn).

* `plot_figure8(summary)`: the paper's Figure 8: return of fresh one-step policies against
  the environment steps meta-training has spent, beside the A2C control's return against
  its own steps; and the same GTN curve against outer iterations.
* `plot_pairs(teacher, curriculum)`: what the teacher generates: its states in the
  (pole angle, angular velocity) and (cart position, velocity) planes, coloured by which
  action the target prefers.
* `plot_episode(run)`: one greedy episode of a freshly initialised policy after its one step.
"""

from __future__ import annotations

import torch

from ..seeding import make_rng
from .env import play
from .policy import STATE_DIM

__all__ = ["plot_figure8", "plot_pairs", "plot_episode", "one_step_episode"]

CART_LIMIT, ANGLE_LIMIT = 2.4, 0.2095  # CartPole fails beyond these (position, radians)


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError('the figures need matplotlib: pip install -e ".[plot]"') from err
    return plt


def plot_figure8(summary: dict | list[dict]):
    """Return vs environment steps (GTN meta-training and the A2C control) and vs outer iterations.

    `summary` is what `run_cartpole` returns, or a list of them (several seeds, overlaid).
    """
    plt = _plt()
    runs = summary if isinstance(summary, list) else [summary]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    cap = runs[0]["final"]["max_steps"]
    for i, run in enumerate(runs):
        gtn, a2c = run["gtn_curve"], run["a2c_curve"]
        first = i == 0
        if gtn:
            ax.plot([p["env_steps"] for p in gtn], [p["return"] for p in gtn], "o-", ms=3, color="C0", alpha=0.8,
                    label="GTN: fresh policies after 1 SGD step on its data" if first else None)
            ax2.errorbar([p["iteration"] for p in gtn], [p["return"] for p in gtn], [p["std"] for p in gtn],
                         fmt="o-", ms=3, capsize=2, color="C0", alpha=0.8)
        if a2c:
            ax.plot([p["env_steps"] for p in a2c], [p["return"] for p in a2c], "s-", ms=3, color="C1", alpha=0.8,
                    label="A2C control: one policy trained from scratch" if first else None)
    for a in (ax, ax2):
        a.axhline(cap, color="grey", lw=0.8, ls=":")
        a.set_ylim(0, cap * 1.05)
        a.set_ylabel(f"return (frames balanced, of {cap})")
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_xlim(left=0)
    ax.set_xlabel("environment steps spent training (symlog)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Figure 8: return against simulator steps")
    ax2.set_xlabel("outer iteration")
    ax2.set_title("fresh one-step policies (mean +- sd over policies)")
    fig.tight_layout()
    return fig


@torch.no_grad()
def plot_pairs(teacher, curriculum, step: int = 0):
    """Scatter of the generated states of inner step `step`, coloured by target[right] - target[left]."""
    plt = _plt()
    batches = teacher.batches(curriculum)
    states, targets = batches.batch(step, batches.tensors)
    s, pref = states.cpu().float(), (targets[:, 1] - targets[:, 0]).cpu().float()
    lim = float(pref.abs().max().clamp_min(1e-6))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (i, j), (xl, yl), bound in zip(axes, ((2, 3), (0, 1)), (("pole angle (rad)", "pole angular velocity"),
                                                                    ("cart position", "cart velocity")),
                                           (ANGLE_LIMIT, CART_LIMIT)):
        sc = ax.scatter(s[:, i], s[:, j], c=pref, cmap="coolwarm", vmin=-lim, vmax=lim, s=10)
        for x in (-bound, bound):
            ax.axvline(x, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    axes[0].set_title(f"{len(s)} generated states (dotted: where an episode fails)")
    fig.colorbar(sc, ax=axes, label="target: push right minus push left")
    return fig


def one_step_episode(run, seed: int = 0):
    """A fresh policy trained by the inner loop on the teacher's data, and one greedy episode it plays."""
    learner = run.space.sample(make_rng(seed, "plot/policy")).to(run.config.device)
    state = run.sgd.unroll(learner, run.teacher.batches(run.curriculum), differentiable=False)
    episode = play(lambda o: learner.act(state, o, greedy=True), 1, seed=seed, max_steps=run.config.max_steps)
    return learner, state, episode


def plot_episode(run, seed: int = 0):
    """The pole angle, cart position and actions of one greedy episode of a fresh one-step policy."""
    plt = _plt()
    _, _, ep = one_step_episode(run, seed)
    n = int(ep.lengths[0])
    obs, actions = ep.obs[:n, 0].reshape(n, STATE_DIM), ep.actions[:n, 0]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    ax.plot(obs[:, 2], label="pole angle (rad)")
    ax.axhline(ANGLE_LIMIT, color="grey", lw=0.8, ls=":")
    ax.axhline(-ANGLE_LIMIT, color="grey", lw=0.8, ls=":")
    ax.plot(obs[:, 0] * (ANGLE_LIMIT / CART_LIMIT), label=f"cart position x {ANGLE_LIMIT / CART_LIMIT:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"one episode of a fresh policy after one SGD step: {n} of {ep.max_steps} steps balanced")
    ax2.step(range(n), actions, where="post")
    ax2.set_yticks([0, 1], ["left", "right"])
    ax2.set_xlabel("time step")
    fig.tight_layout()
    return fig

"""A whole CartPole GTN run: build it from a config, meta-train, score, run the A2C control, save.

    cfg = CartPoleConfig.sized("quick")
    summary = run_cartpole(cfg, "runs/cartpole")      # resumable: run it again to continue

`build_cartpole(cfg)` gives the pieces (teacher, curriculum, inner SGD, policy space,
objective, `MetaTrainer`) for anyone who wants to drive the loop themselves. The run
folder holds `checkpoint.pt` (rewritten every `checkpoint_every` iterations and on
Ctrl-C), `log.jsonl` (one line per outer iteration), `summary.json` and the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint_io import read_checkpoint
from ..fast import FusedSGD
from ..meta import Callback, MetaTrainer, OuterAdam
from ..seeding import seeded
from ..unrolled import UnrolledSGD
from .a2c import train_a2c
from .config import CartPoleConfig, new_names
from .evaluate import one_step_returns
from .objective import A2CObjective
from .policy import PolicySpace
from .teacher import PairTeacher

__all__ = ["CartPoleRun", "build_cartpole", "run_cartpole", "first_reaching", "learning_curve", "CurveCallback"]


@dataclass
class CartPoleRun:
    """The pieces of one CartPole GTN run, built by `build_cartpole`."""

    config: CartPoleConfig
    teacher: PairTeacher
    curriculum: torch.nn.Module
    sgd: UnrolledSGD
    space: PolicySpace
    objective: A2CObjective
    trainer: MetaTrainer

    def score(self, policies: int | None = None, episodes: int | None = None):
        """`one_step_returns` of the teacher now (defaults: the config's final-score sizes)."""
        c = self.config
        return one_step_returns(self.teacher, self.curriculum, self.sgd, self.space,
                                policies=policies or c.eval_learners, episodes=episodes or c.eval_episodes,
                                seed=c.seed, max_steps=c.max_steps)

    def load(self, path: str | Path) -> None:
        """`trainer.load(path)`, for checkpoints written before the config's renames (issue 24) too.

        The checkpoint's config is compared with this run's after its old field names
        (`config.RENAMED`) are mapped to the new ones, so an old run resumes; its next
        checkpoint stores the new names.
        """
        ckpt = read_checkpoint(path)
        if isinstance(ckpt["config"], dict):
            ckpt["config"] = new_names(ckpt["config"], warn=False)
        self.trainer.check_checkpoint(ckpt, path)
        self.trainer.load_state_dict(ckpt)


class CurveCallback(Callback):
    """Every `every` outer iterations, score fresh one-step policies and add it to the iteration's record.

    The numbers land in the record that `MetaTrainer.history` keeps (and checkpoints), as
    `curve_return` and `curve_std`, so a resumed run keeps its learning curve.
    """

    def __init__(self, run: CartPoleRun, every: int, policies: int, episodes: int) -> None:
        self.run, self.every, self.policies, self.episodes = run, every, policies, episodes

    def on_outer_step(self, trainer: MetaTrainer, record: dict) -> None:
        i = trainer.iteration  # iterations done, this one included
        if i % self.every == 0 or i in (1, self.run.config.outer_steps):
            scores = self.run.score(self.policies, self.episodes)
            record.update(curve_return=scores.mean, curve_std=scores.std)


def build_cartpole(cfg: CartPoleConfig, *, log_path: str | Path | None = None, progress: bool = True) -> CartPoleRun:
    """Teacher, curriculum, inner SGD, policy space, A2C objective and trainer of `cfg`, seeded from `cfg.seed`."""
    device = torch.device(cfg.device)
    with seeded(cfg.seed, "init/teacher"):  # teacher, codes and critic start from the run's own stream
        teacher = PairTeacher(cfg.latent_dim, (cfg.teacher_hidden, cfg.teacher_hidden), weight_norm=cfg.weight_norm)
        curriculum = teacher.curriculum(cfg.inner_batch, cfg.inner_steps)
        objective = A2CObjective(cfg.num_envs, cfg.max_steps, gamma=cfg.gamma, normalize=cfg.normalize,
                                 value_hidden=cfg.policy_hidden, value_lr=cfg.value_lr, value_steps=cfg.value_steps)
    teacher, curriculum, objective = teacher.to(device), curriculum.to(device), objective.to(device)
    sgd = FusedSGD(cfg.init_lr, cfg.init_momentum, mode="full").to(device)  # eq. (1) on concatenated vectors
    space = PolicySpace((cfg.policy_hidden, cfg.policy_hidden))
    outer = OuterAdam(cfg.outer_lr, lr_schedule=cfg.outer_lr_schedule, total_steps=cfg.outer_steps)
    trainer = MetaTrainer(teacher, curriculum, sgd, space, objective, outer=outer, seed=cfg.seed,
                          learners_per_step=cfg.learners_per_step, log_path=log_path, config=cfg.to_dict(),
                          progress=progress)
    return CartPoleRun(cfg, teacher, curriculum, sgd, space, objective, trainer)


def learning_curve(history: list[dict]) -> list[dict]:
    """The points `CurveCallback` added to a trainer's history: iterations done, environment steps, return, spread."""
    return [{"iteration": r["iteration"] + 1, "env_steps": int(r["env_steps"]), "return": r["curve_return"],
             "std": r["curve_std"]} for r in history if "curve_return" in r]


def first_reaching(points: list[tuple[float, float]], target: float) -> float | None:
    """The first x of (x, y) points whose y reaches `target` (None if none does)."""
    return next((x for x, y in points if y >= target), None)


def run_cartpole(cfg: CartPoleConfig, out: str | Path, *, resume: bool = True, checkpoint_every: int = 25,
                 target: float = 190.0, progress: bool = True, figures: bool = True,
                 callbacks: list[Callback] | tuple = ()) -> dict:
    """Meta-train, score K fresh one-step policies, run the A2C control, write `summary.json` and figures.

    Args:
        cfg: the run's settings.
        out: the run folder.
        resume: continue from `out/checkpoint.pt` when it exists (it must hold the same config).
        checkpoint_every: outer iterations between checkpoints.
        target: the return whose first crossing (in environment steps) the summary reports.
        progress: progress bars.
        figures: write `figure8.png`, `pairs.png` and `episode.png` (needs matplotlib).
        callbacks: more `Callback`s for the meta-training loop (the CLI's `StopOnSignal`).

    Returns:
        The summary written to `out/summary.json`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, log = out / "checkpoint.pt", out / "log.jsonl"
    run = build_cartpole(cfg, log_path=log, progress=progress)
    if resume and ckpt.exists():
        run.load(ckpt)  # refuses a damaged file, or another run's (naming the differing settings)
        # The log again holds exactly the checkpoint's iterations (an interrupted run may have logged more).
        log.write_text("".join(json.dumps(r) + "\n" for r in run.trainer.history))
    elif log.exists():
        log.unlink()  # a fresh run: no lines of an older one
    run.trainer.callbacks += [CurveCallback(run, cfg.eval_every, cfg.curve_policies, cfg.eval_episodes), *callbacks]
    run.trainer.fit(cfg.outer_steps - run.trainer.iteration, desc="CartPole GTN", checkpoint=ckpt,
                    checkpoint_every=checkpoint_every)
    final = run.score()
    a2c = train_a2c(cfg.a2c_env_steps, num_envs=cfg.num_envs, lr=cfg.a2c_lr, hidden=cfg.policy_hidden,
                    gamma=cfg.gamma, value_lr=cfg.value_lr, value_steps=cfg.value_steps, max_steps=cfg.max_steps,
                    eval_episodes=cfg.eval_episodes, seed=cfg.seed, progress=progress) if cfg.a2c_env_steps else []
    curve = learning_curve(run.trainer.history)
    summary = {
        "config": cfg.to_dict(),
        "final": {"mean": final.mean, "std": final.std, "solved": final.solved,
                  "policy_means": final.policy_means.tolist(), "policies": cfg.eval_learners,
                  "episodes": cfg.eval_episodes, "max_steps": cfg.max_steps},
        "meta_env_steps": int(run.objective.env_steps),
        "inner_lr": run.sgd.lr.detach().mean().item(),
        "meta_seconds": sum(r["seconds"] for r in run.trainer.history),  # outer iterations only, resumes included
        "gtn_curve": curve,
        "a2c_curve": a2c,
        "target": target,
        "gtn_steps_to_target": first_reaching([(p["env_steps"], p["return"]) for p in curve], target),
        "a2c_steps_to_target": first_reaching([(p["env_steps"], p["return"]) for p in a2c], target),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if figures:
        from .plots import plot_episode, plot_figure8, plot_pairs

        plot_figure8(summary).savefig(out / "figure8.png", dpi=120, bbox_inches="tight")
        plot_pairs(run.teacher, run.curriculum).savefig(out / "pairs.png", dpi=120, bbox_inches="tight")
        plot_episode(run, seed=cfg.seed).savefig(out / "episode.png", dpi=120, bbox_inches="tight")
    return summary

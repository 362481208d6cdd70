"""Saving and resuming a `MetaTrainer`: checkpoints as plain dicts of tensors.

A checkpoint holds everything a run depends on (weights, Adam, random-number streams of
every learner on every rank, the objective's state, the schedule, the history), so a
resumed run continues bit for bit. It loads with `torch.load(weights_only=True)`.
`MetaTrainer` gets these methods from `TrainerCheckpoints`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor

from .distributed import all_gather_objects

__all__ = ["TrainerCheckpoints", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2
"""2: adds history, schedule and objective state (version-1 checkpoints still load)."""


class TrainerCheckpoints:
    """`state_dict`, `load_state_dict`, `save` and `load` for `MetaTrainer` (a mixin: it reads the
    trainer's teacher, curriculum, sgd, optimizer, objective, random streams and schedule)."""

    # ---- checkpoints: a plain dict, loadable with torch.load(weights_only=True) ----
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: weights, optimiser, random-number streams,
        the objective's state, the schedule, the history, the config and the iteration."""
        return {"version": CHECKPOINT_VERSION, "config": self.config, "iteration": self.iteration,
                "state_dict": {"teacher": self.teacher.state_dict(), "curriculum": self.curriculum.state_dict(),
                               "sgd": self.sgd.state_dict(), "optimizer": self.optimizer.state_dict(),
                               "objective": self.objective.state_dict()},
                "rng": {"data": self.rng.get_state(), "arch": self.arch_rng.get_state(),
                        "learners": self._gathered_streams()},
                "schedule": {"lr_schedule": self.lr_schedule, "total_steps": self.total_steps,
                             "base_lrs": list(self.base_lrs)},
                "history": list(self.history)}

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore from `state_dict()` output (tensors may be on any device: each goes where it belongs)."""
        version = ckpt.get("version")
        if version not in (1, CHECKPOINT_VERSION):
            raise ValueError(f"checkpoint version {version} is not one this gtn_edu reads (1 or {CHECKPOINT_VERSION})")
        sd = ckpt["state_dict"]
        self.teacher.load_state_dict(sd["teacher"])
        self.curriculum.load_state_dict(sd["curriculum"])
        self.sgd.load_state_dict(sd["sgd"])
        self.optimizer.load_state_dict(sd["optimizer"])  # moves Adam's moments to the parameters' device
        self.objective.load_state_dict(sd.get("objective", {}))
        # Generator states must be CPU byte tensors, whatever device the checkpoint was mapped to.
        rng = ckpt["rng"]
        saved = dict(rng.get("learners", {}))
        saved.setdefault(0, {"data": rng.get("data", rng.get("generator")), "arch": rng["arch"]})
        if sorted(saved) != list(range(self.world * self.learners_per_step)):
            total = self.world * self.learners_per_step
            raise ValueError(f"the checkpoint holds the random streams of {len(saved)} learners per outer iteration, "
                             f"but this run has {total} ({self.world} process(es) x learners_per_step="
                             f"{self.learners_per_step}); resume with the learners_per_step and number of processes "
                             "it was written with")
        for j, arch_rng, data_rng in zip(self.learner_indices, self.arch_rngs, self.rngs):
            data_rng.set_state(saved[j]["data"].cpu())
            arch_rng.set_state(saved[j]["arch"].cpu())
        if "schedule" in ckpt:
            sched = ckpt["schedule"]
            self.lr_schedule, self.total_steps = sched["lr_schedule"], sched["total_steps"]
            self.base_lrs = list(sched["base_lrs"])
        self.history = list(ckpt.get("history", []))
        self.iteration = ckpt["iteration"]

    def _gathered_streams(self) -> dict[int, dict[str, Tensor]]:
        """The random-stream states of every learner of every rank, by global learner index."""
        mine = {j: {"data": d.get_state(), "arch": a.get_state()}
                for j, a, d in zip(self.learner_indices, self.arch_rngs, self.rngs)}
        return {j: st for part in all_gather_objects(mine) for j, st in part.items()}

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint to `path` (atomically: an interrupted write leaves the old file).

        Under torch.distributed every rank must call it (it gathers each rank's random
        streams); rank 0 writes the file.
        """
        path = Path(path)
        ckpt = self.state_dict()
        if self.rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            torch.save(ckpt, tmp)
            os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> None:
        """Resume from a checkpoint written by `save`, on whatever device this trainer lives.

        The file is read onto the CPU; `load_state_dict` then copies each tensor to where
        it belongs (weights and Adam state to the parameters' device; random-number
        generator states stay on the CPU, where `torch.Generator.set_state` needs them).
        """
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

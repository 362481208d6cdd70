"""Saving and resuming a `MetaTrainer`: checkpoints as plain dicts of tensors.

A checkpoint holds everything a run depends on (weights, Adam, random-number streams of
every learner on every rank, the objective's state, the schedule, the history), so a
resumed run continues bit for bit. It loads with `torch.load(weights_only=True)`, which
runs no code from the file. `MetaTrainer` gets these methods from `TrainerCheckpoints`.

`load` refuses a checkpoint of another run: one whose config (or `run_info`: the arm and
the dataset's fingerprint, set by the CLI) differs from the trainer's, naming the file and
the fields. A damaged file (cut short, empty, not a checkpoint) is a `CheckpointError`
naming the file, never a raw unpickling traceback. `save` writes a temporary file, syncs
it to the disk and renames it, so a crash leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .checks import upgraded_config

__all__ = ["TrainerCheckpoints", "CHECKPOINT_VERSION", "CheckpointError", "read_checkpoint", "atomic_save"]

CHECKPOINT_VERSION = 2
"""The layout `state_dict` writes and `load_state_dict` reads (2: with history, schedule and objective state)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to another run."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint at `path` as a dict (on the CPU, no code run); CheckpointError naming the file if damaged."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as err:  # noqa: BLE001 - cut-short or foreign files fail in many ways (EOF, unpickling, zip)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(f"{path} is damaged or not a gtn_edu checkpoint ({type(err).__name__}: {first}); "
                              "restore it from a copy, or delete it to start that run over") from None
    if not isinstance(ckpt, dict) or not {"version", "config", "iteration", "state_dict"} <= set(ckpt):
        raise CheckpointError(f"{path} is not a gtn_edu checkpoint (it lacks version, config, iteration or "
                              "state_dict); restore it from a copy, or delete it to start that run over")
    return ckpt


def atomic_save(obj, path: str | Path) -> Path:
    """`torch.save(obj, path)` through a synced temporary file and a rename: the old file stays until then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # the rename itself reaches the disk
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # some file systems cannot sync a folder; the file itself is synced
        pass
    return path


def _plain(value):
    """`value` as JSON would give it back (tuples as lists), to compare saved with current settings."""
    return json.loads(json.dumps(value, default=str))


class TrainerCheckpoints:
    """`state_dict`, `load_state_dict`, `save` and `load` for `MetaTrainer` (a mixin).

    What it reads of the trainer is this short list, each part saving and restoring itself:
    `checkpoint_parts()` (the modules and the objective, by name), `outer` (`OuterAdam`:
    Adam's state and the schedule), `streams` (`LearnerStreams`: every learner's random
    streams), and the run's record: `config`, `run_info`, `iteration`, `history`.
    """

    # ---- checkpoints: a plain dict, loadable with torch.load(weights_only=True) ----
    def state_dict(self) -> dict:
        """Everything needed to resume exactly: weights, optimiser, random-number streams,
        the objective's state, the schedule, the history, the config and the iteration."""
        outer = self.outer.state_dict()
        return {"version": CHECKPOINT_VERSION, "config": self.config, "run_info": self.run_info,
                "iteration": self.iteration,
                "state_dict": {**{name: part.state_dict() for name, part in self.checkpoint_parts().items()},
                               "optimizer": outer["optimizer"]},
                "rng": {"data": self.rng.get_state(), "arch": self.arch_rng.get_state(),
                        "learners": self.streams.state_dict()},
                "schedule": outer["schedule"], "history": list(self.history)}

    def load_state_dict(self, ckpt: dict) -> None:
        """Restore from `state_dict()` output (tensors may be on any device: each goes where it belongs)."""
        version = ckpt.get("version")
        if version != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {version} is not one this gtn_edu reads ({CHECKPOINT_VERSION}); "
                             "start the run over")
        sd = ckpt["state_dict"]
        for name, part in self.checkpoint_parts().items():
            part.load_state_dict(sd[name])
        self.outer.load_state_dict({"optimizer": sd["optimizer"], "schedule": ckpt["schedule"]})
        rng = ckpt["rng"]  # files from before several learners per step (issue 13) hold learner 0's only
        self.streams.load_state_dict(rng.get("learners") or {0: {"data": rng["data"], "arch": rng["arch"]}})
        self.history = list(ckpt["history"])
        self.iteration = ckpt["iteration"]

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint to `path` (atomically: an interrupted write leaves the old file).

        Under torch.distributed every rank must call it (it gathers each rank's random
        streams); rank 0 writes the file.
        """
        path = Path(path)
        ckpt = self.state_dict()
        if self.rank == 0:
            atomic_save(ckpt, path)
        return path

    def check_checkpoint(self, ckpt: dict, path: str | Path) -> None:
        """Raise CheckpointError if `ckpt` (read from `path`) is another run's: its config or run_info differ.

        A trainer built without a config (`config=None`) or `run_info` checks nothing for it.
        """
        for what, mine in (("config", self.config), ("run_info", self.run_info)):
            if not mine:
                continue
            saved = upgraded_config(ckpt.get(what) or {})  # old value names (mode "checkpoint") mapped
            differ = [f"{k} (checkpoint {_plain(saved.get(k))!r}, this run {_plain(mine.get(k))!r})"
                      for k in sorted(set(saved) | set(mine)) if _plain(saved.get(k)) != _plain(mine.get(k))]
            if differ:
                raise CheckpointError(f"{path} belongs to another run: its {what} differs in " + "; ".join(differ)
                                      + ". Resume it with the settings it was written with, or start a new run "
                                      "in another folder")

    def load(self, path: str | Path) -> None:
        """Resume from a checkpoint written by `save`, on whatever device this trainer lives.

        The file is read onto the CPU (`read_checkpoint`) and checked against this trainer's
        config and run_info (`check_checkpoint`); `load_state_dict` then copies each tensor to
        where it belongs (weights and Adam state to the parameters' device; random-number
        generator states stay on the CPU, where `torch.Generator.set_state` needs them).
        """
        ckpt = read_checkpoint(path)
        self.check_checkpoint(ckpt, path)
        self.load_state_dict(ckpt)

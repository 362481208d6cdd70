r"""The outer loop: meta-train a teacher (and curriculum, lr, momentum) by meta-gradients.

One outer iteration (paper, Figure 1a):

1. sample a fresh learner from the architecture space;
2. unroll T steps of SGD on the teacher's batches: $\theta_T(\phi)$;
3. score it on a batch of real training data: $L(\phi) = \ell(\theta_T(\phi); x, y)$,
   optionally averaged with the scores after intermediate steps;
4. back-propagate through the whole inner loop and take an Adam step on $\phi$
   (teacher weights, curriculum codes, $\alpha$, $\beta$): `OuterAdam` (`outer.py`).

A meta-loss or meta-gradient that is NaN or infinite stops training with
`MetaLossDivergedError` *before* the optimiser touches the teacher.

Step 3 is a `MetaObjective` (`objective.py`); `RealBatchLoss` is the supervised one.
Checkpoints hold everything a run depends on (weights, Adam, random-number streams, the
objective's state, the schedule, the history), so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .arch_space import ArchSpace
from .callbacks import Callback, MetaLossDivergedError, diverged
from .checkpoint_io import CHECKPOINT_VERSION, TrainerCheckpoints
from .checks import nonnegative_int, positive_int
from .curriculum import Curriculum
from .fast.distributed import LearnerStreams, all_reduce_mean_, average_gradients_, broadcast_
from .fast.stacked import unroll_learners
from .learner import Learner, LearnerState
from .objective import MetaObjective, RealBatchLoss, as_objective  # noqa: F401 - RealBatchLoss: importable here too
from .outer import OUTER_FIELDS, OuterAdam
from .teacher import BaseTeacher
from .unrolled import UnrolledSGD

__all__ = ["MetaTrainer", "OuterAdam", "Callback", "MetaLossDivergedError", "CHECKPOINT_VERSION"]

MetaLoss = Callable[[Learner, Sequence[LearnerState]], tuple[Tensor, dict]]


class MetaTrainer(TrainerCheckpoints):
    r"""The GTN outer loop, with logs, callbacks, checkpoints and a divergence guard.

    Args:
        teacher: a `Teacher`, `RealData` or `DistilledData`.
        curriculum: gives T, B and (for a `Teacher`) the codes.
        sgd: the unrolled inner optimiser (its lr and momentum are meta-learned).
        arch_space: where fresh learners come from.
        meta_loss: the `MetaObjective` scoring each trained learner, e.g. `RealBatchLoss`
            (a plain `fn(learner, states) -> (loss, logs)` is wrapped into one).
        outer: the outer optimiser, `OuterAdam` (default: the paper's Adam at 0.01, constant).
        seed: the run's seed: learners come from the stream ("train/arch"), curriculum
            shuffles and real batches from ("train/data") (see `seeding.py`).
        meta_loss_every: also score the learner every k inner steps (0: final step only).
        learners_per_step: fresh learners per outer iteration (per process under torchrun);
            the meta-loss and the logs are the means over them. Learner j draws from its own
            streams (`fast/distributed.py`), so k learners here equal k processes of one
            learner each. The paper uses 1.
        stack_learners: train this process's k learners as one when they share an
            architecture (`fast/stacked.py`: the same meta-gradient to rounding; meant for
            GPUs). Callbacks then see step t of every learner, then step t+1.
        callbacks: `Callback` objects (hooks at every inner step and outer iteration).
        log_path: append one JSON line per outer iteration here.
        config: a plain dict stored in checkpoints (a resumed run must match it).
        progress: show a tqdm progress bar in `fit`.
        **outer_settings: `OuterAdam`'s fields given here directly (`outer_lr=...`), the form
            before issue 24: still accepted, with a DeprecationWarning.
    """

    def __init__(self, teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, arch_space: ArchSpace,
                 meta_loss: MetaObjective | MetaLoss, *, outer: OuterAdam | None = None, seed: int = 0,
                 meta_loss_every: int = 0, learners_per_step: int = 1, stack_learners: bool = False,
                 callbacks: Sequence[Callback] = (), log_path: str | Path | None = None, config: dict | None = None,
                 progress: bool = True, **outer_settings: Any) -> None:
        self.outer = _outer(outer, outer_settings)
        positive_int("learners_per_step", learners_per_step)
        nonnegative_int("meta_loss_every", meta_loss_every)
        if stack_learners and sgd.compile_step:
            raise ValueError("stack_learners and the sgd's compile_step cannot be combined; choose one")
        self.learners_per_step, self.stack_learners = learners_per_step, stack_learners
        self.teacher, self.curriculum, self.sgd, self.arch_space = teacher, curriculum, sgd, arch_space
        self.objective = as_objective(meta_loss)
        self.meta_loss_every = meta_loss_every
        self.callbacks, self.config, self.progress = list(callbacks), config or {}, progress
        self.run_info: dict = {}  # what else must match on `load` (the CLI: the arm and the dataset's fingerprint)
        self.log_path = Path(log_path) if log_path else None
        self.device = next((t.device for t in curriculum.buffers()), torch.device("cpu"))
        # Learner j of each iteration has its own streams (architectures on the CPU host; shuffles,
        # real batches, episodes on the device); j counts across ranks under torch.distributed.
        self.streams = LearnerStreams(seed, learners_per_step, self.device)
        self.rank, self.world = self.streams.rank, self.streams.world
        self.log_path, self.progress = (self.log_path, progress) if self.rank == 0 else (None, False)
        self.params = self._meta_parameters()
        if not self.params:
            raise ValueError("nothing to meta-learn: teacher, curriculum and sgd have no trainable parameters")
        broadcast_(self.params)  # every rank starts from rank 0's teacher
        self.outer.build(self.params, hyper=list(sgd.parameters()))  # Adam, kept by `outer`
        self.iteration, self.history = 0, []

    # the outer optimiser's settings and this process's streams, where older code reads and writes them
    lr_schedule = property(lambda self: self.outer.lr_schedule, lambda self, v: setattr(self.outer, "lr_schedule", v))
    total_steps = property(lambda self: self.outer.total_steps, lambda self, v: setattr(self.outer, "total_steps", v))
    grad_clip = property(lambda self: self.outer.grad_clip, lambda self, v: setattr(self.outer, "grad_clip", v))
    base_lrs = property(lambda self: self.outer.base_lrs, lambda self, v: setattr(self.outer, "base_lrs", v))
    optimizer = property(lambda self: self.outer.optimizer)  # the torch.optim.Adam that `outer` built
    arch_rngs = property(lambda self: self.streams.arch)
    rngs = property(lambda self: self.streams.data)
    arch_rng = property(lambda self: self.streams.arch[0])  # this process's first learner's
    rng = property(lambda self: self.streams.data[0])

    def _meta_parameters(self) -> list[nn.Parameter]:
        """phi: the teacher's, curriculum's and optimiser's trainable tensors, each once, in that order."""
        found = {id(p): p for m in (self.teacher, self.curriculum, self.sgd) for p in m.parameters() if p.requires_grad}
        return list(found.values())

    def checkpoint_parts(self) -> dict:
        """What a checkpoint saves by name besides the outer optimiser and the streams (`checkpoint_io`)."""
        return {"teacher": self.teacher, "curriculum": self.curriculum, "sgd": self.sgd, "objective": self.objective}

    def lr_factor(self, iteration: int) -> float:
        """Multiplier of the outer learning rates at `iteration` (`OuterAdam.factor`)."""
        return self.outer.factor(iteration)

    def scored_steps(self) -> list[int]:
        """Inner steps after which the learner is scored on real data."""
        T, k = self.curriculum.steps, self.meta_loss_every
        return sorted(set(range(k, T + 1, k)) | {T}) if k else [T]

    def outer_step(self) -> dict:
        """One outer iteration (Figure 1a); returns its log record."""
        start, inner_losses = time.perf_counter(), []

        def on_inner(t: int, state: LearnerState, loss: Tensor) -> None:
            inner_losses.append(loss.detach())
            for cb in self.callbacks:
                cb.on_inner_step(self, t, state, loss)

        # 1. fresh learners; learner j draws only from its own random-number streams
        learners = [self.arch_space.sample(arch_rng).to(self.device) for arch_rng in self.arch_rngs]
        # 2. T steps of SGD on the teacher's batches: theta_T(phi), and the states at the scored steps
        batches = [self.teacher.batches(self.curriculum, rng) for rng in self.rngs]
        kept = unroll_learners(self.sgd, learners, batches, self.scored_steps(), stack=self.stack_learners,
                               callback=on_inner)
        # 3. L(phi): every trained learner scored on real data; the mean over the learners
        scored = [self.objective(learner, states, rng) for learner, states, rng in zip(learners, kept, self.rngs)]
        losses, extras = [loss for loss, _ in scored], [extra for _, extra in scored]
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        meta_loss, extra = self._logged(loss, extras)
        if not math.isfinite(meta_loss):  # the same value on every process: all stop together
            raise diverged(f"meta-loss is {meta_loss}", self.iteration)
        # 4. dL/dphi back through the whole inner loop, then one Adam step on phi
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients_(self.params)  # over processes under torchrun (fast/distributed.py); else nothing
        grads = [p.grad for p in self.params if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if not torch.isfinite(grad_norm):
            raise diverged("meta-gradient is not finite", self.iteration)
        self.outer.step(self.params, self.iteration)  # clip (if set), this iteration's learning rates, Adam
        return self._log({"iteration": self.iteration, "meta_loss": meta_loss, "grad_norm": grad_norm.item(),
                          "inner_loss_first": inner_losses[0].item(), "inner_loss_last": inner_losses[-1].item(),
                          "lr": self.sgd.lr.detach().mean().item(),
                          "momentum": self.sgd.momentum.detach().mean().item(),
                          **{k: float(v) for k, v in extra.items()}, "seconds": time.perf_counter() - start})

    def _logged(self, loss: Tensor, extras: list[dict]) -> tuple[float, dict]:
        """The meta-loss and the objective's logs, each the mean over every learner of every process."""
        logged = torch.tensor([loss.item(), *[sum(float(e[k]) for e in extras) / len(extras) for k in extras[0]]],
                              dtype=torch.float64)
        all_reduce_mean_([logged])  # one small all-reduce under torchrun; nothing in one process
        return logged[0].item(), dict(zip(extras[0], logged[1:].tolist()))

    def _log(self, record: dict) -> dict:
        """Count the iteration; keep `record` in the history, the log file and the callbacks' hands."""
        self.iteration += 1
        self.history.append(record)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        for cb in self.callbacks:
            cb.on_outer_step(self, record)
        return record

    def fit(self, outer_steps: int, *, desc: str = "meta-training", time_limit: float | None = None,
            position: int | None = None, checkpoint: str | Path | None = None,
            checkpoint_every: int = 0) -> list[dict]:
        """Run `outer_steps` more outer iterations (stop early after `time_limit` seconds).

        Args:
            outer_steps: iterations to add to `self.iteration`.
            desc: the progress bar's label.
            time_limit: stop after the iteration that passes this many seconds.
            position: the progress bar's line, for trainers running side by side.
            checkpoint: where to keep a checkpoint of the run: written every
                `checkpoint_every` iterations, at the end, and when the run is interrupted
                (Ctrl-C); `load` it into a freshly built trainer to continue exactly.
            checkpoint_every: iterations between checkpoints (0: only at the end).
        """
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {checkpoint_every}")
        start, records = time.perf_counter(), []
        fields = {"loss": "meta_loss", **self.objective.progress_fields, "lr": "lr"}
        bar = tqdm(range(outer_steps), desc=desc, disable=not self.progress, dynamic_ncols=True, position=position)
        try:
            for _ in bar:
                rec = self.outer_step()
                records.append(rec)
                bar.set_postfix({label: f"{rec[key]:.3f}" for label, key in fields.items() if key in rec})
                if checkpoint is not None and checkpoint_every and self.iteration % checkpoint_every == 0:
                    self.save(checkpoint)
                if time_limit is not None and time.perf_counter() - start > time_limit:
                    break
        except KeyboardInterrupt:
            if checkpoint is not None:  # between two iterations: a consistent state to resume from
                self.save(checkpoint)
            raise
        finally:
            bar.close()
        if checkpoint is not None:
            self.save(checkpoint)
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return records


def _outer(outer: OuterAdam | None, settings: dict) -> OuterAdam:
    """`outer`, or an `OuterAdam` of the old keywords (`outer_lr=...`; a DeprecationWarning), or the default."""
    unknown = set(settings) - set(OUTER_FIELDS)
    if unknown:
        raise TypeError(f"MetaTrainer got unexpected keyword(s) {sorted(unknown)}")
    if not settings:  # a copy: `load` writes the checkpoint's schedule into the trainer's own
        return replace(outer) if outer is not None else OuterAdam()
    if outer is not None:
        raise ValueError(f"give the outer optimiser's settings in `outer` only, not also {sorted(settings)}")
    warnings.warn(f"MetaTrainer({', '.join(f'{k}=...' for k in settings)}) is now "
                  "MetaTrainer(outer=OuterAdam(...)) (gtn_edu.outer)", DeprecationWarning, stacklevel=3)
    return OuterAdam(**settings)

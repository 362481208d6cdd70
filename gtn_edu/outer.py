r"""The outer optimiser: Adam on the meta-parameters $\phi$ (step 4 of Figure 1a), and its schedule.

$\phi$ is the teacher's weights, the curriculum's codes and the inner optimiser's learned
tensors ($\alpha$, $\beta$). The paper updates them with Adam at a constant learning rate
(Table 2: 0.01); `OuterAdam` holds those settings, validates them when it is made, builds
the `torch.optim.Adam`, takes each outer iteration's step on its schedule, and saves and
restores Adam's state with the schedule.
`MetaTrainer(..., outer=OuterAdam(...))` takes one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .checks import positive_float, unit_interval

__all__ = ["OuterAdam", "OUTER_FIELDS"]


@dataclass
class OuterAdam:
    r"""Adam on $\phi$: the teacher's weights and codes at `outer_lr`, the inner lr and momentum at `hyper_lr`.

    Attributes:
        outer_lr: Adam's learning rate (Table 2: 0.01).
        hyper_lr: Adam's learning rate of the inner optimiser's tensors ($\alpha$, $\beta$,
            the rule's own); None: `outer_lr`. They live in log/logit space, so a larger
            value lets them move further in a short run.
        betas: Adam's betas.
        eps: Adam's epsilon.
        grad_clip: clip the total meta-gradient norm to this (None: off).
        lr_schedule: "constant" (the paper) or "cosine": the learning rates follow
            $\frac12(1 + \cos(\pi i / N))$ of their value over `total_steps` = N iterations,
            which settles a short run's teacher instead of leaving it at full step size.
        total_steps: N, the planned outer iterations (the cosine schedule needs it).
    """

    outer_lr: float = 0.01
    hyper_lr: float | None = None
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float | None = None
    lr_schedule: str = "constant"
    total_steps: int | None = None

    def __post_init__(self) -> None:
        """ValueError naming the setting, the value and the range."""
        for name in ("outer_lr", "hyper_lr", "eps", "grad_clip"):
            if getattr(self, name) is not None:  # grad_clip: 0 freezes training, a negative limit climbs the loss
                positive_float(name, getattr(self, name))
        for i, beta in enumerate(self.betas):
            unit_interval(f"betas[{i}]", beta, low_open=False)
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and not (self.total_steps and self.total_steps > 0):
            raise ValueError("lr_schedule='cosine' needs total_steps, the planned number of outer iterations")

    def build(self, params: Sequence[nn.Parameter], hyper: Sequence[nn.Parameter] = ()) -> torch.optim.Adam:
        """Adam over `params`: those in `hyper` (the inner optimiser's) at `hyper_lr`, the others at `outer_lr`.

        The optimiser and its groups' base learning rates stay here, for `step` and the checkpoints.
        """
        ids = {id(p) for p in hyper}
        groups = [{"params": [p for p in params if id(p) not in ids]},
                  {"params": [p for p in params if id(p) in ids],
                   "lr": self.outer_lr if self.hyper_lr is None else self.hyper_lr}]
        self.optimizer = torch.optim.Adam([g for g in groups if g["params"]], lr=self.outer_lr, betas=self.betas,
                                          eps=self.eps)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        return self.optimizer

    def step(self, params: Sequence[nn.Parameter], iteration: int) -> None:
        r"""$\phi \leftarrow \text{Adam}(\phi, \nabla_\phi L)$ at outer iteration `iteration`: clip, schedule, step."""
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(iteration)
        self.optimizer.step()

    def state_dict(self) -> dict:
        """Adam's state and the schedule, as a checkpoint stores them (`optimizer`, `schedule`)."""
        return {"optimizer": self.optimizer.state_dict(),
                "schedule": {"lr_schedule": self.lr_schedule, "total_steps": self.total_steps,
                             "base_lrs": list(self.base_lrs)}}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output; the checkpoint's schedule replaces this one's."""
        self.optimizer.load_state_dict(state["optimizer"])  # moves Adam's moments to the parameters' device
        sched = state["schedule"]
        self.lr_schedule, self.total_steps = sched["lr_schedule"], sched["total_steps"]
        self.base_lrs = list(sched["base_lrs"])

    def factor(self, iteration: int) -> float:
        """Multiplier of the learning rates at outer iteration `iteration` (1 for the constant schedule)."""
        if self.lr_schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(iteration, self.total_steps) / self.total_steps))


OUTER_FIELDS = ("outer_lr", "hyper_lr", "betas", "eps", "grad_clip", "lr_schedule", "total_steps")
"""`MetaTrainer`'s keywords before `OuterAdam` (issue 24): still accepted, with a DeprecationWarning."""

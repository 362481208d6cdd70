"""What the outer loop tells the world: callbacks after each step, and the error that stops a diverging run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from .learner import LearnerState

if TYPE_CHECKING:
    from .meta import MetaTrainer

__all__ = ["Callback", "MetaLossDivergedError", "diverged"]


class MetaLossDivergedError(RuntimeError):
    """The meta-loss or its gradient became NaN or infinite."""


def diverged(what: str, iteration: int) -> MetaLossDivergedError:
    return MetaLossDivergedError(f"{what} at outer iteration {iteration}; the teacher was not updated. "
                                 "Lower outer_lr or init_lr, keep weight_norm on, or set grad_clip.")


class Callback:
    """Watch the loops without subclassing the trainer; override what you need."""

    def on_inner_step(self, trainer: MetaTrainer, t: int, state: LearnerState, inner_loss: Tensor) -> None:
        """After inner step t of the current outer iteration."""

    def on_outer_step(self, trainer: MetaTrainer, record: dict) -> None:
        """After each outer iteration, with the logged record."""

    def on_fit_end(self, trainer: MetaTrainer) -> None:
        """When `fit` has run all its iterations (or hit its time limit) and written its checkpoint."""

r"""Meta-objectives: how the outer loop scores a learner after its inner training.

For supervised GTNs the objective is the learner's loss on a batch of real data,
$L(\phi) = \ell(\theta_T(\phi); x_\text{real}, y_\text{real})$ (section 2), which
`RealBatchLoss` computes. Other tasks score differently: CartPole plays episodes with the
trained policy and uses a policy-gradient loss whose value baseline is learned alongside.
So an objective is an object with state:

* `forward(learner, states, rng) -> (loss, logs)`: the differentiable meta-loss of the
  scored states (one per scored inner step) and a dict of numbers to log;
* `state_dict()` / `load_state_dict()`: whatever it learns (an `nn.Module`, so
  submodules such as a value network are saved with the trainer's checkpoints);
* `progress_fields`: which logged numbers the progress bar shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .learner import Learner, LearnerState

__all__ = ["MetaObjective", "RealBatchLoss", "as_objective"]


class MetaObjective(nn.Module):
    """Base class of meta-objectives. Subclass and implement `forward`.

    Attributes:
        progress_fields: progress-bar label -> key of the logs `forward` returns, e.g.
            `{"acc": "meta_acc"}`. The trainer always shows the meta-loss and inner lr too.
    """

    progress_fields: dict[str, str] = {}

    def forward(self, learner: Learner, states: Sequence[LearnerState],
                rng: torch.Generator | None = None) -> tuple[Tensor, dict[str, float | Tensor]]:
        """The meta-loss of `learner` at the scored `states`, and numbers to log.

        Args:
            learner: the freshly sampled learner (its module holds the architecture).
            states: its states after each scored inner step (the last one is $\\theta_T$).
            rng: the trainer's data stream, for anything random (real batches, episodes).

        Returns:
            (a differentiable scalar loss, a dict of scalars for the log).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward(learner, states, rng)")


class RealBatchLoss(MetaObjective):
    """The supervised meta-loss: mean loss (`learner.outer_loss`) of the scored states on one real batch.

    Every scored state is scored on the same batch, drawn from `rng` each outer iteration
    and, with `augment`, augmented from the same stream (CIFAR-10, appendix A.2).

    Args:
        split (Split): real training data with `sample(batch_size, rng)` (a `data.Split`).
        batch_size: real examples per meta-loss (Table 2: 128).
        augment (Callable | None): `augment(x, rng) -> x`, e.g. `RandomCropFlip()`; None: none.
        bn_stats: "synthetic": score with the BatchNorm statistics the learner finished
            training with (the last inner batch's); "real": with the real batch's own
            (`Learner.with_batch_stats`), so a teacher is not judged by how well its last
            batch's statistics suit real images.
    """

    progress_fields = {"acc": "meta_acc"}

    def __init__(self, split, batch_size: int,
                 augment: Callable[[Tensor, torch.Generator | None], Tensor] | None = None,
                 bn_stats: str = "synthetic") -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive number of real examples, got {batch_size}")
        if bn_stats not in ("synthetic", "real"):
            raise ValueError(f"bn_stats must be 'synthetic' or 'real', got {bn_stats!r}")
        self.split, self.batch_size, self.augment, self.bn_stats = split, batch_size, augment, bn_stats

    def forward(self, learner: Learner, states: Sequence[LearnerState],
                rng: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean of $\\ell(\\theta_t; x, y)$ over the scored states; logs the last state's batch accuracy."""
        x, y = self.split.sample(self.batch_size, rng)
        if self.augment is not None:
            x = self.augment(x, rng)
        losses = []
        for state in states:
            if self.bn_stats == "real":
                state = learner.with_batch_stats(state, x)
            out = learner.predict(state, x)
            losses.append(learner.outer_loss(out, y))
        acc = (out.argmax(1) == y).float().mean()  # accuracy of the final state
        return torch.stack(losses).mean(), {"meta_acc": acc}


class _FunctionObjective(MetaObjective):
    """A plain `fn(learner, states) -> (loss, logs)` as an objective: no state, no random numbers."""

    def __init__(self, fn: Callable[[Learner, Sequence[LearnerState]], tuple[Tensor, dict]]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, learner, states, rng=None):
        return self.fn(learner, states)


def as_objective(meta_loss: MetaObjective | Callable) -> MetaObjective:
    """`meta_loss` itself if it is a `MetaObjective`, else a plain callable wrapped as one."""
    if isinstance(meta_loss, MetaObjective):
        return meta_loss
    if callable(meta_loss):
        return _FunctionObjective(meta_loss)
    raise TypeError(f"meta_loss must be a MetaObjective (e.g. RealBatchLoss) or a callable "
                    f"fn(learner, states) -> (loss, logs), got {type(meta_loss).__name__}")

r"""Learners: ordinary `nn.Module`s that can also run on a parameter dict you pass in.

Inside the inner loop the learner's weights are not `nn.Parameter`s but tensors that
depend on the teacher: $\theta_{t+1} = \theta_t - \alpha\, m_{t+1}$. A `Learner`
therefore runs *functionally* through `torch.func.functional_call`, with the weights
and BatchNorm statistics held in a `LearnerState`. The same class trains the ordinary
way too (call it like any module).

A subclass defines its layers and `forward`; everything else (state, losses,
statistics) comes from the base class. `learners.py` has the paper's two families,
`ConvLearner` and `MLPLearner`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .nn import LearnerBatchNorm

__all__ = ["LearnerState", "Learner", "ConvLearner", "MLPLearner"]

EVAL_CHUNK = 256
"""Images per forward pass when scoring: 2000-image chunks spill out of cache and run ~1.8x slower on CPU."""


@dataclass
class LearnerState:
    r"""Everything that changes while a learner trains: $(\theta_t, m_t, \text{BN stats})$.

    Attributes:
        params: weights $\theta_t$ by parameter name (what SGD updates).
        opt_state: the inner optimiser's state by name (`UnrolledSGD.init_opt_state`):
            for SGD the momentum buffer $m_t$, one tensor per parameter (not to be confused
            with the momentum *coefficient* $\beta$, `UnrolledSGD.momentum`); for Adam its
            two moments and step count (`gtn_edu.rules.InnerAdam`). `momentum_buffer` is
            the same dict under its earlier name.
        buffers: BatchNorm statistics by buffer name (the last batch's, after training).
    """

    params: dict[str, Tensor]
    opt_state: dict[str, Tensor]
    buffers: dict[str, Tensor] = field(default_factory=dict)

    @property
    def momentum_buffer(self) -> dict[str, Tensor]:
        """`opt_state` under its name before inner rules could keep other state (SGD's momentum buffers)."""
        return self.opt_state

    def tensors(self) -> list[Tensor]:
        """All tensors in a fixed order: params, momentum buffer, BN buffers."""
        return [*self.params.values(), *self.opt_state.values(), *self.buffers.values()]

    def with_tensors(self, tensors: list[Tensor] | tuple[Tensor, ...]) -> LearnerState:
        """A state of the same layout holding `tensors` (the inverse of `tensors()`)."""
        n_p, n_b = len(self.params), len(self.buffers)
        it = iter(tensors)
        params = {k: next(it) for k in self.params}
        opt_state = {k: next(it) for k in self.opt_state}
        buffers = {k: next(it) for k in self.buffers}
        assert len(params) == n_p and len(buffers) == n_b
        return LearnerState(params, opt_state, buffers)

    def detach(self) -> LearnerState:
        """A copy cut off from the autograd graph."""
        return self.with_tensors([t.detach() for t in self.tensors()])

    def num_bytes(self) -> int:
        """Bytes of all tensors in the state (what mode="recompute" stores per inner step)."""
        return sum(t.numel() * t.element_size() for t in self.tensors())


class Learner(nn.Module):
    """Base class for learners trained by `UnrolledSGD`.

    Subclasses build layers in `__init__` and implement `forward(x) -> logits`. Use
    `LearnerBatchNorm` for batch normalisation so statistics become part of the state.

    Args:
        input_shape: shape of one input sample, e.g. `(1, 28, 28)`.
        num_classes: number of outputs.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.input_shape, self.num_classes = tuple(input_shape), num_classes

    # ---- the two criteria a researcher may override besides forward ----
    def outer_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The criterion on real data (what `meta_loss` and `RealBatchLoss` score); cross-entropy (appendix A)."""
        return F.cross_entropy(output, target)

    def inner_loss(self, output: Tensor, target: Tensor) -> Tensor:
        """The criterion the learner trains on in the inner loop; `outer_loss` unless overridden.

        `target` is whatever the teacher's batches hold: integer labels, or learned soft
        targets (class probabilities, which cross-entropy accepts as they are; appendix F).
        A policy trained by regression on a teacher's action targets overrides this with MSE
        while its outer objective stays something else entirely.
        """
        return self.outer_loss(output, target)

    def check_functional(self) -> None:
        """Raise TypeError if a submodule would break functional training (running statistics).

        `torch.nn.BatchNorm*` (SyncBatchNorm and the lazy ones too), and any layer with
        `track_running_stats=True` (e.g. `InstanceNorm*d`), updates its running averages in
        place under `functional_call`, and recompute mode replays that update: the
        statistics a trained learner is scored with would silently differ from the method's.
        The error names the module's path; `LearnerBatchNorm` is the supported BatchNorm.
        """
        for name, m in self.named_modules():
            path, kind = f"{type(self).__name__}.{name}", type(m).__name__
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                raise TypeError(
                    f"{path} is a torch {kind}, which updates running averages "
                    "in place and so changes what the unrolled training computes. Use gtn_edu.LearnerBatchNorm "
                    f"({kind}(n) -> LearnerBatchNorm(n)): its batch statistics are part of the "
                    "learner's state and meta-gradients flow through them.")
            if getattr(m, "track_running_stats", False) is True:  # InstanceNorm*d, or a layer of that convention
                raise TypeError(
                    f"{path} ({kind}) has track_running_stats=True: it updates running averages in place "
                    "and so changes what the unrolled training computes. Build it with track_running_stats=False "
                    "(each sample normalised by its own statistics, in training and scoring alike), or use "
                    "gtn_edu.LearnerBatchNorm for batch statistics that are part of the learner's state.")

    # ---- state ----
    def init_state(self) -> LearnerState:
        """The module's current weights as a fresh `LearnerState` (momentum zero)."""
        params = {k: p.detach().clone() for k, p in self.named_parameters()}
        momentum = {k: torch.zeros_like(p) for k, p in params.items()}
        buffers = {k: b.detach().clone() for k, b in self.named_buffers()}
        return LearnerState(params, momentum, buffers)

    def load_state(self, state: LearnerState) -> None:
        """Copy a trained state's weights and statistics into the module's own tensors."""
        with torch.no_grad():
            for k, p in self.named_parameters():
                p.copy_(state.params[k])
            for k, b in self.named_buffers():
                b.copy_(state.buffers[k])

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error when `x` is not a batch of `input_shape` samples."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{type(self).__name__} expects inputs of shape (batch, {', '.join(map(str, self.input_shape))}) "
                f"but got {tuple(x.shape)}. Build the learner (or its ArchSpace) with "
                f"input_shape={tuple(x.shape[1:])}, or feed data of the shape it was built for.")

    # ---- functional use ----
    def inner_batch_loss(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor,
                         y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """`inner_loss` of weights `params` on a training batch, with batch statistics; (loss, new BN statistics)."""
        out, stats = self._batch_forward(params, buffers, x)
        return self.inner_loss(out, y), stats

    def _batch_forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor],
                       x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Outputs in training mode (batch statistics) and the statistics each `LearnerBatchNorm` saw."""
        self.check_input(x)
        self.train()
        out = functional_call(self, {**params, **buffers}, (x,))
        stats = {}
        for name, m in self.named_modules():
            if isinstance(m, LearnerBatchNorm):
                prefix = f"{name}." if name else ""
                stats[prefix + "running_mean"], stats[prefix + "running_var"] = m.last_stats
                m.last_stats = None
        return out, stats

    def with_batch_stats(self, state: LearnerState, x: Tensor) -> LearnerState:
        """`state` with its BatchNorm statistics replaced by those of the batch `x`.

        One forward pass in training mode over `x` (e.g. real images) collects each
        `LearnerBatchNorm`'s batch mean and variance; weights and momentum stay. Scoring
        with these statistics instead of the last inner batch's (`bn_stats="real"` in
        `GTNConfig`) normalises real images with real statistics. Differentiable: under
        autograd the statistics depend on the weights as the scored outputs do.
        """
        if not state.buffers:
            return state
        _, stats = self._batch_forward(state.params, state.buffers, x)
        return LearnerState(state.params, state.opt_state, {**state.buffers, **stats})

    def predict(self, state: LearnerState, x: Tensor) -> Tensor:
        """Outputs of the trained learner (eval mode: BN uses the state's statistics)."""
        self.check_input(x)
        self.eval()
        return functional_call(self, {**state.params, **state.buffers}, (x,))

    def meta_loss(self, state: LearnerState, x: Tensor, y: Tensor) -> Tensor:
        r"""Meta-loss of a trained state on real data, $\ell(\theta_T; x_\text{real}, y_\text{real})$ (`outer_loss`)."""
        return self.outer_loss(self.predict(state, x), y)

    # ---- the names before issue 24, kept working (a subclass overriding one overrides the new name) ----
    RENAMED = {"loss_fn": "outer_loss", "train_loss": "inner_batch_loss", "loss": "meta_loss"}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for old, new in Learner.RENAMED.items():
            if old in cls.__dict__ and new not in cls.__dict__:
                warnings.warn(f"{cls.__name__}.{old} overrides a renamed method of Learner: call it {new}",
                              DeprecationWarning, stacklevel=2)
                setattr(cls, new, cls.__dict__[old])

    def loss_fn(self, output: Tensor, target: Tensor) -> Tensor:
        """Deprecated name of `outer_loss`."""
        _renamed("loss_fn")
        return self.outer_loss(output, target)

    def train_loss(self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor,
                   y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Deprecated name of `inner_batch_loss`."""
        _renamed("train_loss")
        return self.inner_batch_loss(params, buffers, x, y)

    def loss(self, state: LearnerState, x: Tensor, y: Tensor) -> Tensor:
        """Deprecated name of `meta_loss`."""
        _renamed("loss")
        return self.meta_loss(state, x, y)

    @torch.no_grad()
    def accuracy(self, state: LearnerState, x: Tensor, y: Tensor, chunk: int = EVAL_CHUNK) -> float:
        """Classification accuracy of a trained state on (x, y), in chunks (small ones stay in cache)."""
        correct = sum((self.predict(state, xb).argmax(1) == yb).sum()
                      for xb, yb in zip(x.split(chunk), y.split(chunk)))
        return float(correct) / len(y)


def _renamed(old: str) -> None:
    warnings.warn(f"Learner.{old} is now Learner.{Learner.RENAMED[old]}", DeprecationWarning, stacklevel=3)


# The two learner families of appendix A live in learners.py; importing them from here keeps working.
from .learners import ConvLearner, MLPLearner  # noqa: E402

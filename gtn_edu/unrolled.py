r"""Differentiable SGD with momentum, unrolled through T inner steps.

The inner loop of GTN (paper, eq. 1) trains a learner on the teacher's batches
$(x_t, y_t)$:

$$ \theta_{t+1} = \theta_t - \alpha \sum_{t' \le t} \beta^{\,t-t'}
   \nabla_\theta \ell_\text{inner}(x_{t'}, y_{t'}; \theta_{t'}) $$

or, with a momentum buffer, $m_{t+1} = \beta m_t + g_t$ and
$\theta_{t+1} = \theta_t - \alpha m_{t+1}$. Every step stays in the autograd graph,
so a meta-loss on $\theta_T$ has gradients with respect to the teacher, its input codes,
and $\alpha, \beta$ (kept positive, and $\beta < 1$, by $\alpha = e^{a}$,
$\beta = \sigma(b)$).

Two modes give the same gradient:

* `"full"`: one autograd graph over all T steps; memory grows with T x activations.
* `"recompute"`: the forward pass keeps only the learner state after each step
  (weights, momentum, BN statistics); the backward pass walks the steps in reverse,
  recomputes step t from its stored state, and back-propagates through that step alone
  (appendix D; known as gradient checkpointing). Memory grows with T x parameters; the
  price is a second forward pass. (Its old name "checkpoint" still works, with a warning.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .checks import positive_float, positive_int, renamed, unit_interval, unroll_mode
from .learner import Learner, LearnerState
from .recompute import RecomputedUnroll

__all__ = ["Batches", "UnrolledSGD", "InnerStepCallback"]


class Batches(Protocol):
    """The T training batches of one inner loop, as a pure function of some tensors.

    `tensors` are what meta-gradients flow to (teacher weights, codes, distilled images);
    `batch(t, tensors)` rebuilds batch t from them, so the recomputing backward pass can
    recompute it. `Teacher.batches(curriculum)` returns one.
    """

    steps: int
    tensors: tuple[Tensor, ...]

    def batch(self, t: int, tensors: Sequence[Tensor]) -> tuple[Tensor, Tensor]: ...


InnerStepCallback = Callable[[int, LearnerState, Tensor], None]
"""Called after inner step t as `callback(t, state_after_step, inner_loss)`."""


class UnrolledSGD(nn.Module):
    r"""SGD with momentum whose T steps are differentiable, with learnable $\alpha$ and $\beta$.

    Subclass and override `update` to try another inner update rule; `unroll` handles
    the graph, the recomputation and the callbacks. Faster execution of the same method
    (the update on concatenated vectors, a compiled step, k learners stacked into one) lives
    in `gtn_edu.fast`, as subclasses chosen when the optimiser is built.

    Args:
        lr: initial learning rate $\alpha$ (Table 2: 0.02).
        momentum: initial momentum $\beta$ in (0, 1) (Table 2: 0.5).
        per_step: T to learn one $\alpha_t, \beta_t$ for each of T inner steps; None (default):
            one shared pair. (Before issue 24 this was `steps=`, which still works with a warning.)
        mode: "recompute" (memory ~ T x parameters) or "full" (one autograd graph).
        learn: make $\alpha, \beta$ learnable parameters (else fixed buffers).
        compile_step: deprecated; build `gtn_edu.fast.CompiledSGD` instead.

    Examples:
        >>> sgd = UnrolledSGD(lr=0.02, momentum=0.5, mode="recompute")
        >>> state = sgd.unroll(learner, teacher.batches(curriculum))  # doctest: +SKIP
        >>> learner.meta_loss(state, x_real, y_real).backward()        # doctest: +SKIP
    """

    compile_step = False
    """Whether the learner's half of each step runs through `torch.compile` (`gtn_edu.fast.CompiledSGD`)."""

    def __init__(self, lr: float = 0.02, momentum: float = 0.5, *, per_step: int | None = None,
                 mode: str = "recompute", learn: bool = True, compile_step: bool = False,
                 steps: int | None = None) -> None:
        super().__init__()
        positive_float("lr", float(lr))
        unit_interval("momentum (a sigmoid of a learned number)", float(momentum))
        per_step = renamed("UnrolledSGD", "steps", steps, "per_step", per_step)  # `steps` is T everywhere else
        if per_step is not None:
            positive_int("per_step", per_step)
        self.mode, self.per_step = unroll_mode(mode), per_step is not None
        n = per_step or 1
        raw_lr = torch.full((n,), float(torch.tensor(lr).log()))
        raw_mom = torch.full((n,), float(torch.tensor(momentum).logit()))
        if learn:
            self.raw_lr, self.raw_momentum = nn.Parameter(raw_lr), nn.Parameter(raw_mom)
        else:
            self.register_buffer("raw_lr", raw_lr)
            self.register_buffer("raw_momentum", raw_mom)
        if compile_step:  # the old spelling of gtn_edu.fast.CompiledSGD
            from .fast.compiled import compile_steps

            compile_steps(self, deprecated_switch=True)

    @property
    def lr(self) -> Tensor:
        r"""$\alpha = e^{a}$, one value or one per step."""
        return self.raw_lr.exp()

    @property
    def momentum(self) -> Tensor:
        r"""$\beta = \sigma(b)$, one value or one per step."""
        return self.raw_momentum.sigmoid()

    # ---- the rule a subclass may replace: its state, and one step ----
    def init_opt_state(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """The optimiser's state before the first step, by name: $m_0 = 0$, one buffer per weight.

        A rule that keeps other state (Adam's two moments, a step count) returns it here, under
        names of its choosing; `update` receives it and returns its next value. The state is
        stored and recomputed with the weights by the recomputing backward pass.
        """
        return {k: torch.zeros_like(p) for k, p in params.items()}

    def start_state(self, learner: Learner) -> LearnerState:
        """The learner's current weights and BN statistics, with this optimiser's initial state."""
        state = learner.init_state()
        return LearnerState(state.params, self.init_opt_state(state.params), state.buffers)

    def update(self, params: dict[str, Tensor], grads: dict[str, Tensor], opt_state: dict[str, Tensor],
               lr: Tensor, beta: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        r"""One step of eq. (1): $m \leftarrow \beta m + g$, $\theta \leftarrow \theta - \alpha m$.

        Args:
            params: weights $\theta_t$ by name.
            grads: inner-loss gradients $g_t$ by name.
            opt_state: the optimiser's state by name (`init_opt_state`): here the momentum buffers $m_t$.
            lr: this step's learning rate $\alpha$ (a 0-d tensor).
            beta: this step's momentum coefficient $\beta$ (a 0-d tensor).

        Returns:
            The new weights and the new optimiser state (dicts with the same keys).
        """
        new_m = {k: beta * opt_state[k] + grads[k] for k in params}  # eq. (1), momentum buffer
        new_p = {k: params[k] - lr * new_m[k] for k in params}              # eq. (1), weight update
        return new_p, new_m

    # ---- one inner step as a pure function of its inputs ----
    def meta_tensors(self) -> dict[str, Tensor]:
        """This optimiser's meta-learned tensors by name: every parameter that requires grad.

        `raw_lr`, `raw_momentum` and whatever a subclass adds (a learned weight decay, say): the
        recomputing backward pass rebuilds each step with these as inputs (`step`), so each gets
        its meta-gradient in both modes.
        """
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def step(self, learner: Learner, batches: Batches, t: int, state: LearnerState,
             hyper: dict[str, Tensor] | Sequence[Tensor], batch_tensors: Sequence[Tensor], differentiable: bool
             ) -> tuple[LearnerState, Tensor]:
        """Inner step t (`forward`) with this optimiser's meta-learned tensors replaced by `hyper`.

        `hyper` maps names of `meta_tensors()` to the tensors to use in their place (a
        sequence: in that order); the recomputing backward pass passes fresh leaves, so
        the gradient with respect to each is the step's contribution to its meta-gradient.
        """
        names = list(self.meta_tensors())
        hyper = hyper if isinstance(hyper, dict) else dict(zip(names, hyper))
        return functional_call(self, hyper, (learner, batches, t, state, batch_tensors),
                               {"differentiable": differentiable}, strict=False)

    def hyper(self, t: int) -> tuple[Tensor, Tensor]:
        r"""$(\alpha_t, \beta_t) = (e^{a_t}, \sigma(b_t))$, or the shared pair without per-step values."""
        i = t if self.per_step else 0
        return self.raw_lr[i].exp(), self.raw_momentum[i].sigmoid()

    def forward(self, learner: Learner, batches: Batches, t: int, state: LearnerState,
                batch_tensors: Sequence[Tensor], differentiable: bool) -> tuple[LearnerState, Tensor]:
        """Inner step t: batch t, then `learner_step` on it. Returns (state after the step, inner loss)."""
        lr, beta = self.hyper(t)
        with torch.set_grad_enabled(differentiable):
            x, y = batches.batch(t, batch_tensors)  # (x_t, y_t), e.g. G(z_t, y_t)
        return self.learner_step(learner, state, x, y, lr, beta, differentiable)

    def learner_step(self, learner: Learner, state: LearnerState, x: Tensor, y: Tensor, lr: Tensor, beta: Tensor,
                     differentiable: bool) -> tuple[LearnerState, Tensor]:
        r"""$g_t = \nabla_\theta \ell_\text{inner}(x_t, y_t; \theta_t)$, then `update`: the learner's half of a step."""
        with torch.enable_grad():
            params = {k: p if p.requires_grad else p.detach().requires_grad_() for k, p in state.params.items()}
            loss, stats = learner.inner_batch_loss(params, state.buffers, x, y)  # also the BN statistics of x_t
            names = list(params)
            grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=differentiable)
        if not differentiable:
            params = {k: p.detach() for k, p in params.items()}
            stats = {k: s.detach() for k, s in stats.items()}
            loss = loss.detach()
        with torch.set_grad_enabled(differentiable):
            new_p, new_m = self.update(params, dict(zip(names, grads)), state.opt_state, lr, beta)
        return LearnerState(new_p, new_m, {**state.buffers, **stats}), loss

    # ---- the whole inner loop ----
    def unroll(self, learner: Learner, batches: Batches, state: LearnerState | None = None, *,
               at: Sequence[int] | None = None, differentiable: bool = True,
               callback: InnerStepCallback | None = None) -> LearnerState | list[LearnerState]:
        r"""Train `learner` for `batches.steps` steps and return $\theta_T$ (as a `LearnerState`).

        Args:
            learner: the learner to train (its module weights are the initial state).
            batches: the T inner batches (from `Teacher.batches`, `RealData.batches`, ...).
            state: initial state; default `start_state(learner)`.
            at: return the states after these steps (1..T) instead of only the last,
                e.g. for real-data losses at intermediate inner steps.
            differentiable: keep the meta-gradient path (False: plain, graph-free training).
            callback: called after every inner step as `callback(t, state, inner_loss)`.

        Returns:
            The final `LearnerState`, or a list of states at the steps in `at`.
        """
        T = batches.steps
        if T < 1:
            raise ValueError(f"the inner loop needs at least 1 step, got steps={T}")
        if self.per_step and self.raw_lr.numel() != T:
            raise ValueError(f"this UnrolledSGD learns {self.raw_lr.numel()} per-step values but the batches "
                             f"have {T} steps; build it with per_step={T}")
        keep = sorted(set(at)) if at is not None else [T]
        if keep[0] < 1 or keep[-1] > T:
            raise ValueError(f"`at` must name steps in 1..{T}, got {list(at)}")
        learner.check_functional()
        state = self.start_state(learner) if state is None else state
        if differentiable and self.mode == "recompute":
            template, hyper = state, self.meta_tensors()
            flat = RecomputedUnroll.apply(self, learner, batches, state, keep, callback,
                                           tuple(hyper), *hyper.values(), *batches.tensors, *state.tensors())
            n = len(template.tensors())
            kept = [template.with_tensors(flat[i * n:(i + 1) * n]) for i in range(len(keep))]
        else:
            kept = []
            for t in range(T):
                state, loss = self(learner, batches, t, state, batches.tensors, differentiable)
                if callback is not None:
                    callback(t, state, loss)
                if t + 1 in keep:
                    kept.append(state)
        return kept if at is not None else kept[-1]


r"""Several learners in one outer iteration: batches they share computed once, one architecture stacked.

With `MetaTrainer(learners_per_step=k)` every outer iteration trains k fresh learners on
the teacher's batches. Two things make that cheaper than k separate inner loops.

**Shared batches.** With the `full` curriculum every learner trains on the same T batches
(fixed codes, fixed order), whatever its architecture. `BatchesOnce` computes each batch once
and hands it to every learner; in `full` mode the teacher's backward pass then also runs once,
on the summed adjoints. `unroll_learners` uses it whenever `same_batches` says so.

**Stacked learners.** Learners of one architecture (a fixed-width space, MLP spaces drawn
alike) differ in their weights, not in their computation, so their k inner loops can run as
one: learner j's tensors become row j of stacked tensors
$\Theta_t = [\theta^{(1)}_t; \dots; \theta^{(k)}_t]$, and one inner step is

$$ \Theta_{t+1} = \operatorname{vmap}_j\big(\text{step}(\theta^{(j)}_t, m^{(j)}_t, x^{(j)}_t, y^{(j)}_t;
   \alpha_t, \beta_t)\big), $$

eq. (1) for each learner, with `torch.func.vmap` turning k small computations into one of
k-fold width (a k-group convolution, a batched matrix product). `StackedSGD(sgd)` is the
same optimiser (the same meta-learned tensors, the same `update`) stepping a
`StackedLearners` on a `StackedBatches` this way; its `unroll` is `UnrolledSGD.unroll`
(recompute mode included: a stored state is the stacked state).
`MetaTrainer(stack_learners=True)` stacks when the k learners match.

Neither changes the meta-gradient beyond rounding (`tests/test_stacked.py`, float64, both
unroll modes). On a 2-core CPU with k=4 quick-size learners (`benchmarks/stack_cost.py`):
shared batches took an outer iteration to 0.43x (MLP) and 0.83x (conv) of its time in `full`
mode; stacking paid for the MLP in recompute mode (0.46x) and was within about 10% either way
otherwise. It is meant for GPUs, where k stacked learners launch the kernels of one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.func import vmap

from ..learner import Learner, LearnerState
from ..unrolled import UnrolledSGD
from .compiled import functional_step

__all__ = ["StackedLearners", "StackedBatches", "StackedSGD", "BatchesOnce", "same_architecture", "same_batches",
           "unroll_learners"]


def _signature(learner: Learner) -> tuple:
    shapes = tuple((k, tuple(t.shape), t.dtype) for k, t in (*learner.named_parameters(), *learner.named_buffers()))
    return type(learner), repr(learner), shapes


def same_architecture(learners: Sequence[Learner]) -> bool:
    """Whether the learners compute the same function of their weights: class, modules and tensor shapes agree."""
    first = _signature(learners[0])
    return all(_signature(m) == first for m in learners[1:])


class StackedLearners:
    """k learners of one architecture as one learner whose state tensors have a leading learner axis.

    Args:
        learners: two or more learners with the same architecture (`same_architecture`);
            learner j's initial weights become row j of the stacked state.

    Row j of every state `unroll` returns belongs to learner j; `unstack` splits a state.
    """

    def __init__(self, learners: Sequence[Learner]) -> None:
        if len(learners) < 2:
            raise ValueError(f"stacking needs at least 2 learners, got {len(learners)}")
        if not same_architecture(learners):
            raise ValueError("StackedLearners needs learners of one architecture (same class, modules and "
                             "weight shapes); train learners of different architectures one at a time")
        self.learners, self.template = list(learners), learners[0]

    def __len__(self) -> int:
        return len(self.learners)

    def check_functional(self) -> None:
        """As `Learner.check_functional`, for the shared architecture."""
        self.template.check_functional()

    def init_state(self, start: Callable[[Learner], LearnerState] | None = None) -> LearnerState:
        """Each learner's `init_state()` (or `start(learner)`), stacked along a new leading axis."""
        states = [start(m) if start is not None else m.init_state() for m in self.learners]
        return states[0].with_tensors([torch.stack(ts) for ts in zip(*(s.tensors() for s in states))])

    def inner_batch_loss(self, *args):
        """Refused: k stacked learners step through `StackedSGD(sgd)`, never a plain `UnrolledSGD`."""
        raise TypeError("stacked learners train with gtn_edu.fast.StackedSGD(sgd).unroll(...), not sgd.unroll(...)")

    def unstack(self, state: LearnerState) -> list[LearnerState]:
        """The k learners' own states (views into the stacked tensors, differentiable)."""
        return [state.with_tensors([t[j] for t in state.tensors()]) for j in range(len(self))]

    def step(self, sgd, state: LearnerState, x: Tensor, y: Tensor, lr: Tensor, beta: Tensor, shared: bool = False
             ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor], Tensor]:
        r"""One inner step of every learner: `functional_step` vmapped over the learner axis.

        Returns stacked weights, optimiser states, BatchNorm statistics and the k inner losses.
        $\alpha$ and $\beta$ are shared; `sgd.update` sees one learner's tensors at a time, so
        an overridden rule works unchanged. `shared`: (x, y) is one batch for every learner
        (`StackedBatches.shared`) instead of k stacked ones.
        """
        one = partial(functional_step, sgd, self.template)
        b = None if shared else 0
        return vmap(one, in_dims=(0, 0, 0, b, b, None, None), randomness="error")(
            state.params, state.opt_state, state.buffers, x, y, lr, beta)


class StackedSGD(UnrolledSGD):
    """An `UnrolledSGD` stepping k stacked learners at once: the same meta-learned tensors and `update`.

    Args:
        rule: the optimiser to stack (its parameters are this one's, under the name `rule`;
            an overridden `update` runs on one learner's tensors at a time, inside the vmap).
    """

    def __init__(self, rule: UnrolledSGD) -> None:
        nn.Module.__init__(self)
        if rule.compile_step:
            raise ValueError("compile_step does not apply to stacked learners; use one or the other")
        self.rule, self.mode, self.per_step = rule, rule.mode, rule.per_step

    raw_lr = property(lambda self: self.rule.raw_lr, doc="The rule's $a$ (`UnrolledSGD.raw_lr`).")
    raw_momentum = property(lambda self: self.rule.raw_momentum, doc="The rule's $b$ (`UnrolledSGD.raw_momentum`).")

    def update(self, *args):
        return self.rule.update(*args)

    def start_state(self, learner: StackedLearners) -> LearnerState:
        """Every learner's `rule.start_state`, stacked."""
        return learner.init_state(self.rule.start_state)

    def forward(self, learner: StackedLearners, batches: StackedBatches, t: int, state: LearnerState,
                batch_tensors: Sequence[Tensor], differentiable: bool) -> tuple[LearnerState, Tensor]:
        """Inner step t of every learner (`StackedLearners.step`); the loss has one entry per learner."""
        lr, beta = self.rule.hyper(t)
        with torch.set_grad_enabled(differentiable):
            x, y = batches.batch(t, batch_tensors)
            new_p, new_m, stats, loss = learner.step(self.rule, state, x, y, lr, beta, shared=batches.shared)
        return LearnerState(new_p, new_m, {**state.buffers, **stats}), loss


def same_batches(batches: Sequence) -> bool:
    """Whether the learners' batches are one and the same: one `source` (`TensorBatches.source`), and the very
    same `tensors` and `labels` (the `full` curriculum's fixed codes give that; shuffles and real data do not)."""
    first = batches[0]
    source = getattr(first, "source", None)
    return source is not None and all(
        getattr(b, "source", None) is source and getattr(b, "labels", None) is getattr(first, "labels", None)
        and len(b.tensors) == len(first.tensors)
        and all(a is c for a, c in zip(b.tensors, first.tensors)) for b in batches[1:])


class BatchesOnce:
    """Batches that several learners train on one after another, each batch computed once.

    A batch asked for with the batches' own `tensors` (the `full` unroll, the recomputing
    forward sweep, training without a graph) is kept and handed to the next learner; its
    graph, if any, is shared, so the teacher's backward pass also runs once, on the summed
    adjoints. A batch asked for with other tensors (the recomputing reverse sweep rebuilds
    each step from detached copies) is computed afresh, so nothing is kept that the unroll
    would not keep anyway.
    """

    def __init__(self, batches) -> None:
        self.inner, self.steps, self.tensors = batches, batches.steps, batches.tensors
        self._kept: dict[tuple[int, bool], tuple[Tensor, Tensor]] = {}

    def batch(self, t: int, tensors: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """Batch t, computed on first use with the own tensors (per grad mode), else afresh."""
        if len(tensors) != len(self.tensors) or any(a is not b for a, b in zip(tensors, self.tensors)):
            return self.inner.batch(t, tensors)
        key = (t, torch.is_grad_enabled())
        if key not in self._kept:
            self._kept[key] = self.inner.batch(t, tensors)
        return self._kept[key]


class StackedBatches:
    """The batches of k learners as one `Batches`: batch t is every learner's batch t, stacked.

    Args:
        batches: one `Batches` per learner, all with the same number of steps. Tensors they
            share (the teacher's weights) appear once in `tensors`.

    Attributes:
        shared: whether all k batches are one and the same (same `source`, `tensors` and
            `labels`; see `TensorBatches.source`): then batch t is computed once, not k times.
    """

    def __init__(self, batches: Sequence) -> None:
        steps = {b.steps for b in batches}
        if len(steps) != 1:
            raise ValueError(f"the learners' batches must have one number of steps, got {sorted(steps)}")
        self.steps, self.parts = steps.pop(), list(batches)
        # every distinct tensor once, in order of first appearance (a dict keeps its first position)
        self.tensors = tuple({id(t): t for b in self.parts for t in b.tensors}.values())
        index = {id(t): i for i, t in enumerate(self.tensors)}
        self._where = [[index[id(t)] for t in b.tensors] for b in self.parts]
        self.shared = same_batches(self.parts)  # every learner gets the same batches: compute them once

    def batch(self, t: int, tensors: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """(inputs (k, B, ...), targets (k, B, ...)): learner j's batch t in row j.

        When `shared` (the learners' batches are one and the same, e.g. generated from the
        `full` curriculum's fixed codes), the one batch (B, ...) that every learner trains on.
        """
        if self.shared:
            return self.parts[0].batch(t, [tensors[i] for i in self._where[0]])
        xs, ys = zip(*(b.batch(t, [tensors[i] for i in where]) for b, where in zip(self.parts, self._where)))
        return torch.stack(xs), torch.stack(ys)


def unroll_learners(sgd, learners: Sequence[Learner], batches: Sequence, at: Sequence[int], *, stack: bool,
                    callback: Callable[[int, LearnerState, Tensor], None] | None = None
                    ) -> list[list[LearnerState]]:
    """Train each learner on its batches; returns, per learner, its states at the steps in `at`.

    With `stack` and two or more learners of one architecture the loops run as one
    (`StackedLearners`); otherwise one after another, and when their batches are one and the
    same (`same_batches`) each batch is computed once for all of them (`BatchesOnce`).
    `callback(t, state, loss)` is called for every learner after every inner step, with that
    learner's own state and loss.
    """
    if not (stack and len(learners) > 1 and same_architecture(learners)):
        if stack and len(learners) > 1:  # shown once per process (Python's default warning filter)
            warnings.warn("stack_learners: this outer iteration's learners differ in architecture, so they train "
                          "one at a time; stacking needs an ArchSpace of one architecture (fixed widths)", stacklevel=2)
        if len(batches) > 1 and same_batches(batches):
            batches = [BatchesOnce(batches[0])] * len(batches)
        return [sgd.unroll(m, b, at=at, callback=callback) for m, b in zip(learners, batches)]
    stacked = StackedLearners(learners)

    def each(t: int, state: LearnerState, losses: Tensor) -> None:
        for one, loss in zip(stacked.unstack(state), losses):
            callback(t, one, loss)

    kept = StackedSGD(sgd).unroll(stacked, StackedBatches(batches), at=at, callback=each if callback else None)
    per_step = [stacked.unstack(s) for s in kept]
    return [[states[j] for states in per_step] for j in range(len(learners))]

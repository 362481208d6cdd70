r"""`CompiledSGD`: the learner's half of an inner step through `torch.compile`; the teacher's batch too.

An eager inner step launches hundreds of small operations: the learner's forward pass,
its gradient with a graph, eq. (1)'s update, and in the reverse sweep the double backward
of all of it. Compiled, the same computation is a few fused kernels: 6.4x fewer operations
for a paper-size recomputed step with the teacher's batch compiled too
(`benchmarks/step_cost.py --compile-step`; `benchmarks/compile_probe.py` for the learner alone).

What is compiled is one function of tensors,

$$ (\theta_t, m_t, \text{stats}, x_t, y_t, \alpha, \beta) \mapsto
   (\theta_{t+1}, m_{t+1}, \text{stats}_{t+1}, \ell_t), $$

with the gradient written with `torch.func.grad` (dynamo cannot trace
`torch.autograd.grad(create_graph=True)`). The teacher's batch is compiled separately when
`compile_teacher(teacher)` is called (`compiled_functional_call`, static shapes). The step compiles with
dynamic shapes, parameter shapes included and without duck sizing, so one compilation serves
learners of one family whatever their widths: measured for MLP learners. A conv learner's
channel counts become constants while torch traces the double backward (torch 2.14.1; see
docs/benchmarks/cost.md), so every new conv architecture compiles again (minutes on a CPU) and,
after `torch._dynamo.config.recompile_limit` of them, torch runs the step eagerly.
Use it where architectures repeat or are MLPs, and on GPUs where launches dominate.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from types import MethodType

import torch
from torch import Tensor
from torch.func import functional_call, grad

from ..learner import LearnerState
from .fused import FusedSGD

__all__ = ["CompiledSGD", "compile_steps", "compile_teacher", "functional_step", "compiled_learner_step",
           "compiled_functional_call", "dynamic_widths"]

_COMPILED = None
_COMPILED_CALL = None


def functional_step(sgd, learner, params: dict[str, Tensor], momentum: dict[str, Tensor], buffers: dict[str, Tensor],
                 x: Tensor, y: Tensor, lr: Tensor, beta: Tensor
                 ) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor], Tensor]:
    r"""One step of eq. (1) on batch (x, y): $g = \nabla_\theta \ell$, then `sgd.update`.

    Returns the new weights, optimiser state, BatchNorm statistics and the inner loss.
    Differentiable in every input tensor (the gradient is taken with `torch.func.grad`).
    """
    def inner(p: dict[str, Tensor]):
        loss, stats = learner.inner_batch_loss(p, buffers, x, y)
        return loss, (loss, stats)

    grads, (loss, stats) = grad(inner, has_aux=True)(params)
    new_p, new_m = sgd.update(params, grads, momentum, lr, beta)
    return new_p, new_m, stats, loss


@contextlib.contextmanager
def dynamic_widths() -> Iterator[None]:
    """Settings under which widths stay symbolic: parameter shapes dynamic, no duck sizing."""
    import torch._dynamo.config as dynamo_config
    import torch.fx.experimental._config as fx_config

    with dynamo_config.patch(force_parameter_static_shapes=False), fx_config.patch(use_duck_shape=False):
        yield


learner_step = functional_step  # its name before gtn_edu.fast


def compiled_learner_step(*args):
    """`functional_step(*args)` through `torch.compile(dynamic=True)`; compiled on first use."""
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(functional_step, dynamic=True)
    with dynamic_widths():
        return _COMPILED(*args)


def compiled_functional_call(module, params: dict[str, Tensor], args: tuple):
    """`torch.func.functional_call(module, params, args)` through `torch.compile` with static shapes.

    For the teacher (`compile_teacher`): its shapes never change, so it compiles once
    per gradient mode and its kernels are specialised to its sizes.
    """
    global _COMPILED_CALL
    if _COMPILED_CALL is None:
        _COMPILED_CALL = torch.compile(functional_call, dynamic=False)
    return _COMPILED_CALL(module, params, args)


def _compiled_learner_step(sgd, learner, state: LearnerState, x: Tensor, y: Tensor, lr: Tensor, beta: Tensor,
                           differentiable: bool) -> tuple[LearnerState, Tensor]:
    """`UnrolledSGD.learner_step`, compiled: the same state and loss (to rounding)."""
    with torch.set_grad_enabled(differentiable):
        new_p, new_m, stats, loss = compiled_learner_step(sgd, learner, state.params, state.opt_state,
                                                          state.buffers, x, y, lr, beta)
    return LearnerState(new_p, new_m, {**state.buffers, **stats}), loss


class CompiledSGD(FusedSGD):
    """`UnrolledSGD` (with the fused update) whose learner steps run compiled; same arguments, same state.

    The gradient and `update` of every inner step are one compiled function (an overridden
    `update` in a subclass is traced as written). Pair it with `compile_teacher(teacher)`.
    Tested equal to the eager step in float64 (`tests/test_compiled_step.py`; in float32 a
    pre-activation within rounding of LeakyReLU's kink can take the other slope).
    """

    compile_step = True
    learner_step = _compiled_learner_step
    fingerprint_name = "UnrolledSGD"  # the same rule, compiled: cache keys as for the plain one


def compile_steps(sgd, *, deprecated_switch: bool = False):
    """Make an existing optimiser's learner steps compiled, as if built as a `CompiledSGD`; returns it.

    For optimisers built elsewhere (a benchmark's problem, a subclass with its own rule).
    `deprecated_switch`: called by `UnrolledSGD(compile_step=True)`, which warns.
    """
    if deprecated_switch:
        warnings.warn("UnrolledSGD(compile_step=True) is deprecated: build gtn_edu.fast.CompiledSGD(...) instead",
                      DeprecationWarning, stacklevel=3)
    sgd.learner_step, sgd.compile_step = MethodType(_compiled_learner_step, sgd), True
    return sgd


def compile_teacher(generator, on: bool = True):
    """Run `generator`'s batches through `torch.compile` (static shapes: it compiles once per gradient mode).

    Sets the generator's `functional_call`, which `teacher.generated_batches` uses to make
    every batch; `on=False` puts the eager one back. Returns the generator.
    """
    generator.functional_call = compiled_functional_call if on else functional_call
    return generator

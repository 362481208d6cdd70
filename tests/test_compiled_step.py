"""`gtn_edu.fast.CompiledSGD` and `compile_teacher`: the compiled step equals the eager one, and
one compilation serves MLP learners of every width.

Compiling takes about a minute a graph on a CPU, so everything is checked in one test (the
learner step and the teacher's batch each without a graph, in the recomputing reverse sweep and
in the `full` unroll), in float64 where compiled and eager agree to rounding.
"""

import pytest
import torch
from torch._dynamo.utils import counters

from gtn_edu import Curriculum, MLPLearner, Teacher, UnrolledSGD
from gtn_edu.fast import CompiledSGD, compile_teacher
from gtn_edu.fast import compiled as compiled_step


def _meta_gradient(learner, teacher, cur, sgd, x_real, y_real):
    compile_teacher(teacher, sgd.compile_step)
    state = sgd.unroll(learner, teacher.batches(cur))
    loss = learner.meta_loss(state, x_real, y_real)
    targets = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    return torch.autograd.grad(loss, targets), state


def test_compiled_step_equals_the_eager_step_and_compiles_once_for_all_widths():
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    teacher = Teacher((1, 8, 8), 4, latent_dim=6, hidden=16, channels=4, conv_channels=4).double()
    cur = Curriculum.full(3, 8, 4, 6).double()
    x_real, y_real = torch.randn(16, 1, 8, 8, dtype=torch.float64), torch.arange(16) % 4
    for width in (12, 9):  # two architectures of one family: the second must reuse the graphs
        learner = MLPLearner((1, 8, 8), 4, (width,)).double()
        for mode in ("recompute", "full"):
            eager = UnrolledSGD(0.1, 0.6, per_step=3, mode=mode).double()
            compiled = CompiledSGD(0.1, 0.6, per_step=3, mode=mode).double()
            g_eager, s_eager = _meta_gradient(learner, teacher, cur, eager, x_real, y_real)
            g_comp, s_comp = _meta_gradient(learner, teacher, cur, compiled, x_real, y_real)
            for a, b in zip(g_comp, g_eager):
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
            for a, b in zip(s_comp.tensors(), s_eager.tensors()):
                torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        # training without a graph (the forward sweep, evaluation) gives the same learner too
        plain = CompiledSGD(0.1, 0.6, per_step=3).double()
        compile_teacher(teacher)
        trained = plain.unroll(learner, teacher.batches(cur), differentiable=False)
        compile_teacher(teacher, False)
        ref = UnrolledSGD(0.1, 0.6, per_step=3).double().unroll(learner, teacher.batches(cur), differentiable=False)
        for a, b in zip(trained.tensors(), ref.tensors()):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
            assert not a.requires_grad
        if width == 12:
            graphs = counters["stats"]["unique_graphs"]
            assert graphs >= 2
    assert counters["stats"]["unique_graphs"] == graphs  # width 9 compiled nothing new
    assert compiled_step._COMPILED is not None and compiled_step._COMPILED_CALL is not None  # both halves ran compiled


def test_a_per_tensor_update_subclass_runs_compiled():
    """`update` stays overridable under `CompiledSGD`: a subclass writing eq. (1) per tensor is traced as written."""
    compiled_rule = type("CompiledPerTensor", (CompiledSGD,), {"update": UnrolledSGD.update})  # the plain rule

    torch.manual_seed(1)  # the first test's sizes, so the teacher's compiled graphs are reused after it
    teacher = Teacher((1, 8, 8), 4, latent_dim=6, hidden=16, channels=4, conv_channels=4).double()
    cur = Curriculum.full(3, 8, 4, 6).double()
    learner = MLPLearner((1, 8, 8), 4, (7,)).double()
    x_real, y_real = torch.randn(16, 1, 8, 8, dtype=torch.float64), torch.arange(16) % 4
    g_eager, s_eager = _meta_gradient(learner, teacher, cur, UnrolledSGD(0.1, 0.6, per_step=3).double(), x_real, y_real)
    g_comp, s_comp = _meta_gradient(learner, teacher, cur,
                                    compiled_rule(0.1, 0.6, per_step=3).double(), x_real, y_real)
    for a, b in zip([*g_comp, *s_comp.tensors()], [*g_eager, *s_eager.tensors()]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # the subclass's rule ran: its weights do not share the concatenated buffer of the default rule
    assert len({t.untyped_storage().data_ptr() for t in s_comp.params.values()}) == len(s_comp.params)


def test_the_old_switches_still_work_and_say_what_replaces_them():
    """`UnrolledSGD(compile_step=True)` and `Teacher.compile_forward`, the spellings before `gtn_edu.fast`."""
    with pytest.warns(DeprecationWarning, match="CompiledSGD"):
        sgd = UnrolledSGD(0.1, 0.6, compile_step=True)
    assert sgd.compile_step and sgd.learner_step.__func__ is CompiledSGD.learner_step
    assert not UnrolledSGD().compile_step
    teacher = Teacher((1, 8, 8), 4, latent_dim=6, hidden=16, channels=4, conv_channels=4)
    assert not teacher.compile_forward
    with pytest.warns(DeprecationWarning, match="compile_teacher"):
        teacher.compile_forward = True
    assert teacher.compile_forward and teacher.functional_call is compiled_step.compiled_functional_call

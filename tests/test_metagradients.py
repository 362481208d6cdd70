"""Meta-gradients are proven against finite differences and the two unroll modes agree."""

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import IMAGE, NUM_CLASSES, fixed_problem, problems

from gtn_edu import ConvLearner, XYTeacher


def _directional_fd(problem, mode, name, direction, eps=1e-6):
    """Central difference of the meta-loss along `direction` in input `name`."""
    tensor = problem.inputs()[name]
    with torch.no_grad():
        tensor.add_(eps * direction)
        plus = problem.meta_loss(mode).item()
        tensor.sub_(2 * eps * direction)
        minus = problem.meta_loss(mode).item()
        tensor.add_(eps * direction)
    return (plus - minus) / (2 * eps)


@pytest.mark.parametrize("mode", ["full", "recompute"])
@given(problem=problems(), seed=st.integers(0, 1000))
def test_meta_gradient_matches_finite_differences(problem, seed, mode):
    inputs = problem.inputs()
    grads = torch.autograd.grad(problem.meta_loss(mode), list(inputs.values()), allow_unused=True)
    gen = torch.Generator().manual_seed(seed)
    results = []
    for (name, tensor), grad in zip(inputs.items(), grads):
        direction = torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype)
        analytic = (grad * direction).sum().item() if grad is not None else 0.0
        numeric = _directional_fd(problem, mode, name, direction)
        # LeakyReLU and max-pool kinks make the inner gradient, and so theta_T, jump: the
        # meta-loss has a derivative only away from them. Two step sizes that disagree mean
        # the difference straddles a kink; hypothesis then draws another problem.
        wide = _directional_fd(problem, mode, name, direction, eps=4e-6)
        assume(abs(wide - numeric) <= 1e-4 * abs(numeric) + 1e-6)
        results.append((name, analytic, numeric))
    # Relative error < 1e-5. The absolute floor (1e-8 of the largest derivative) covers
    # derivatives that are zero up to BatchNorm's eps (biases and scales in front of a BN),
    # where only the finite difference's round-off is left to compare.
    floor = 1e-8 * max(1.0, *(abs(n) for _, _, n in results))
    for name, analytic, numeric in results:
        assert abs(analytic - numeric) <= 1e-5 * abs(numeric) + floor, (
            f"{problem.description} {mode}: d/d{name} analytic {analytic:.10g} vs FD {numeric:.10g}")
    checked = sum(abs(n) > 1e3 * floor for _, _, n in results)
    assert checked >= 3  # at least codes, lr and a teacher weight carry real signal


@given(problem=problems())
def test_recompute_equals_full(problem):
    inputs = list(problem.inputs().values())
    T = problem.curriculum.steps
    at = sorted({1, (T + 1) // 2, T})  # intermediate real-data losses too
    full = torch.autograd.grad(problem.meta_loss("full", at), inputs)
    ckpt = torch.autograd.grad(problem.meta_loss("recompute", at), inputs)
    for (name, _), a, b in zip(problem.inputs().items(), full, ckpt):
        where = f"{problem.description} {name}"
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12, msg=lambda m, where=where: f"{where}: {m}")


@pytest.mark.parametrize("mode", ["full", "recompute"])
def test_backward_and_autograd_grad_agree(mode):
    from gtn_edu import Curriculum, Teacher, UnrolledSGD

    torch.manual_seed(0)
    teacher = Teacher(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3).double()
    cur = Curriculum.full(3, 6, NUM_CLASSES, latent_dim=4).double()
    learner = ConvLearner(IMAGE, NUM_CLASSES, (3, 3), hidden=5).double()
    sgd = UnrolledSGD(0.05, 0.6, mode=mode).double()
    x, y = torch.randn(5, *IMAGE, dtype=torch.float64), torch.randint(NUM_CLASSES, (5,))
    params = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    loss = learner.meta_loss(sgd.unroll(learner, teacher.batches(cur)), x, y)
    via_grad = torch.autograd.grad(loss, params, retain_graph=True)
    loss.backward()
    for p, g in zip(params, via_grad):
        assert p.grad is not None
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)
    assert sgd.raw_lr.grad.abs().item() > 0 and cur.codes.grad.abs().sum().item() > 0


@pytest.mark.parametrize("conditional", [True, False])
@pytest.mark.parametrize("mode", ["full", "recompute"])
def test_xy_teacher_soft_labels_get_proven_meta_gradients(mode, conditional):
    """Appendix F's generator of images *and* soft labels: its label head's meta-gradient matches FD."""
    torch.manual_seed(1)
    teacher = XYTeacher(IMAGE, NUM_CLASSES, conditional=conditional, latent_dim=4, hidden=8, channels=3,
                        conv_channels=3)
    problem = fixed_problem(teacher, ConvLearner(IMAGE, NUM_CLASSES, (3, 3), hidden=5, batch_norm=False))
    x, y = problem.teacher.batches(problem.curriculum).batch(0, tuple(problem.teacher.parameters()) + (
        problem.curriculum.codes,))
    assert y.shape == (6, NUM_CLASSES) and torch.allclose(y.sum(1), torch.ones(6, dtype=torch.float64))
    names = ["teacher.label_head.v", "teacher.label_head.bias", "curriculum.codes"]
    inputs = problem.inputs()
    grads = torch.autograd.grad(problem.meta_loss(mode), [inputs[n] for n in names])
    gen = torch.Generator().manual_seed(0)
    for name, grad in zip(names, grads):
        direction = torch.randn(inputs[name].shape, generator=gen, dtype=torch.float64)
        analytic, numeric = (grad * direction).sum().item(), _directional_fd(problem, mode, name, direction)
        assert abs(numeric) > 1e-7, name
        assert abs(analytic - numeric) <= 1e-5 * abs(numeric) + 1e-10, f"{name}: {analytic} vs FD {numeric}"

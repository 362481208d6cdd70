"""Inner rules with their own state and tensors (`gtn_edu.rules`): meta-gradients proven in both modes.

Each rule trains a small learner for 3 steps on a teacher's batches; its meta-gradient with
respect to every meta-learned tensor (teacher, codes, and the rule's own: lr, momentum,
decay or beta2) must match a central finite difference in float64 along a random
direction, in `full` and `recompute` mode, and the modes must agree to rounding.
"""

import pytest
import torch
from strategies import IMAGE, NUM_CLASSES

from gtn_edu import Curriculum, MLPLearner, Teacher
from gtn_edu.fast import StackedSGD
from gtn_edu.fast.stacked import StackedBatches, StackedLearners
from gtn_edu.rules import InnerAdam, LearnedDecaySGD

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64 in every test here


RULES = {"decay": lambda mode: LearnedDecaySGD(0.05, 0.6, decay=0.05, per_step=3, mode=mode),
         "adam": lambda mode: InnerAdam(0.02, 0.8, 0.95, eps=1e-6, per_step=3, mode=mode)}


def _problem(rule, mode):
    torch.manual_seed(0)
    teacher = Teacher(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum(3, 6, NUM_CLASSES, latent_dim=4, variant="full")
    learner = MLPLearner(IMAGE, NUM_CLASSES, (5,), batch_norm=True)
    sgd = RULES[rule](mode)
    x, y = torch.randn(7, *IMAGE), torch.randint(NUM_CLASSES, (7,))
    targets = [*teacher.parameters(), curriculum.codes, *sgd.meta_tensors().values()]
    return teacher, curriculum, learner, sgd, x, y, targets


def _loss(teacher, curriculum, learner, sgd, x, y):
    return learner.meta_loss(sgd.unroll(learner, teacher.batches(curriculum)), x, y)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_meta_gradient_matches_finite_differences_in_both_modes(rule):
    grads = {}
    for mode in ("full", "recompute"):
        *pieces, targets = _problem(rule, mode)
        g = torch.autograd.grad(_loss(*pieces), targets)
        assert all(torch.isfinite(t).all() for t in g)
        own = list(pieces[3].meta_tensors())
        assert len(own) == 3 and all(v.abs().sum() > 0 for v in g[-3:]), f"{rule}: {own} need gradients"
        gen = torch.Generator().manual_seed(1)
        directions = [torch.randn(t.shape, generator=gen) for t in targets]
        eps, values = 1e-7, []  # the error of a central difference falls as eps^2 (Adam: 1.9e-6 relative at 1e-6)
        with torch.no_grad():
            for sign in (1, -2, 1):
                for t, d in zip(targets, directions):
                    t.add_(sign * eps * d)
                values.append(_loss(*pieces).item())
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = sum((a * d).sum().item() for a, d in zip(g, directions))
        assert abs(analytic - numeric) <= 1e-6 * abs(numeric), f"{rule}, {mode}: {analytic} vs FD {numeric}"
        grads[mode] = g
    for a, b in zip(grads["recompute"], grads["full"]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_inner_adam_is_adam():
    """Without meta-learning, InnerAdam's steps are Adam's (eps inside the root), against a hand-written loop."""
    torch.manual_seed(0)
    learner = MLPLearner(IMAGE, NUM_CLASSES, (5,), batch_norm=False, weight_norm=False)
    teacher = Teacher(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum(3, 6, NUM_CLASSES, latent_dim=4, variant="full")
    sgd = InnerAdam(0.01, 0.8, 0.9, eps=1e-8)
    with torch.no_grad():
        batches = teacher.batches(curriculum)
        data = [batches.batch(t, batches.tensors) for t in range(3)]
    state = sgd.unroll(learner, batches, differentiable=False)
    assert state.opt_state["step"].item() == 3
    params = {k: p.detach().clone().requires_grad_() for k, p in learner.named_parameters()}
    m = {k: torch.zeros_like(p) for k, p in params.items()}
    v = {k: torch.zeros_like(p) for k, p in params.items()}
    for n, (x, y) in enumerate(data, 1):
        loss, _ = learner.inner_batch_loss(params, {}, x, y)
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            for (k, p), g in zip(params.items(), grads):
                m[k] = 0.8 * m[k] + 0.2 * g
                v[k] = 0.9 * v[k] + 0.1 * g * g
                p -= 0.01 * (m[k] / (1 - 0.8 ** n)) / torch.sqrt(v[k] / (1 - 0.9 ** n) + 1e-8)
    for k, p in params.items():
        torch.testing.assert_close(state.params[k], p.detach(), rtol=1e-6, atol=1e-9)


def test_rules_run_stacked_and_refuse_bad_settings():
    """k stacked learners under `StackedSGD` carry the rule's own state; a bad value names itself."""
    torch.manual_seed(0)
    learners = [MLPLearner(IMAGE, NUM_CLASSES, (5,)) for _ in range(2)]
    teacher = Teacher(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum(3, 6, NUM_CLASSES, latent_dim=4, variant="full")
    sgd = InnerAdam(0.02, 0.8, 0.95)
    stacked = StackedSGD(sgd).unroll(StackedLearners(learners), StackedBatches([teacher.batches(curriculum)] * 2))
    one = sgd.unroll(learners[1], teacher.batches(curriculum))
    for k in one.params:
        torch.testing.assert_close(stacked.params[k][1], one.params[k], rtol=1e-10, atol=1e-12)
    assert stacked.opt_state["step"].tolist() == [3.0, 3.0]
    with pytest.raises(ValueError, match="beta2"):
        InnerAdam(beta2=1.0)
    with pytest.raises(ValueError, match="decay"):
        LearnedDecaySGD(decay=0.0)
    torch.testing.assert_close(LearnedDecaySGD(decay=0.05).decay, torch.tensor(0.05))  # lambda = e^w, as given

"""A subclass's own learnable tensor reaches the meta-gradient in both unroll modes, or is refused (issue 24, item 1).

For each box of the extension table a small subclass adds one learnable tensor of its own
and uses it where the box's overridable method runs. Its meta-gradient must match a
central finite difference in float64, in `full` and in `recompute` mode, and the two
modes must agree. A tensor the recomputing backward pass cannot route (one a method reads
from outside every module the unroll knows) must be refused with an error naming the fix,
never get a silent zero.
"""

import pytest
import torch
from strategies import IMAGE, NUM_CLASSES
from torch import nn

from gtn_edu import ArchSpace, Curriculum, MLPLearner, Teacher, UnrolledSGD
from gtn_edu.objective import MetaObjective

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py: float64 in every test here


class WeightDecaySGD(UnrolledSGD):
    """SGD with momentum plus a learned weight decay, e^w: the example from the issue."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.log_decay = nn.Parameter(torch.tensor(-3.0))

    def update(self, params, grads, momentum_buffer, lr, beta):
        decayed = {k: g + self.log_decay.exp() * params[k] for k, g in grads.items()}
        return super().update(params, decayed, momentum_buffer, lr, beta)


class BiasedTeacher(Teacher):
    """The generator plus a learned brightness offset."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.offset = nn.Parameter(torch.tensor(0.1))

    def forward(self, z, y):
        return super().forward(z, y) + self.offset


class ScaledCurriculum(Curriculum):
    """The full curriculum with a learned scale of the codes."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.scale = nn.Parameter(torch.tensor(0.9))

    def sample(self, rng=None):
        z, y = super().sample(rng)
        return z * self.scale, y


class TemperedObjective(MetaObjective):
    """Cross-entropy on a real batch at a learned temperature."""

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y
        self.log_temperature = nn.Parameter(torch.tensor(0.2))

    def forward(self, learner, states, rng=None):
        logits = learner.predict(states[-1], self.x) / self.log_temperature.exp()
        return nn.functional.cross_entropy(logits, self.y), {}


def _problem(mode, sgd_cls=UnrolledSGD, teacher_cls=Teacher, curriculum_cls=Curriculum, seed=0):
    torch.manual_seed(seed)
    teacher = teacher_cls(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = curriculum_cls(3, 6, NUM_CLASSES, latent_dim=4, variant="full")
    learner = MLPLearner(IMAGE, NUM_CLASSES, (5,), batch_norm=True)
    sgd = sgd_cls(0.05, 0.6, mode=mode)
    x, y = torch.randn(7, *IMAGE), torch.randint(NUM_CLASSES, (7,))
    return teacher, curriculum, learner, sgd, x, y


def _meta_loss(pieces, objective=None):
    teacher, curriculum, learner, sgd, x, y = pieces
    state = sgd.unroll(learner, teacher.batches(curriculum))
    if objective is not None:
        return objective(learner, [state])[0]
    return learner.meta_loss(state, x, y)


def _check(pieces_of_mode, pick, objective_of=None):
    """FD of the meta-loss along a random direction in the tensor `pick(pieces)`, in both modes; modes agree."""
    grads = {}
    for mode in ("full", "recompute"):
        pieces = pieces_of_mode(mode)
        objective = objective_of(pieces) if objective_of else None
        tensor = pick(pieces, objective)
        (grad,) = torch.autograd.grad(_meta_loss(pieces, objective), [tensor], allow_unused=True)
        assert grad is not None, f"{mode}: the subclass's own tensor got no meta-gradient"
        direction = torch.randn(tensor.shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            eps = 1e-6
            tensor.add_(eps * direction)
            plus = _meta_loss(pieces, objective).item()
            tensor.sub_(2 * eps * direction)
            minus = _meta_loss(pieces, objective).item()
            tensor.add_(eps * direction)
        numeric, analytic = (plus - minus) / (2 * eps), (grad * direction).sum().item()
        assert abs(numeric) > 1e-7, "the test tensor must matter"
        assert abs(analytic - numeric) <= 1e-6 * abs(numeric) + 1e-10, f"{mode}: {analytic} vs FD {numeric}"
        grads[mode] = grad
    torch.testing.assert_close(grads["recompute"], grads["full"], rtol=1e-10, atol=1e-12)


def test_unrolled_sgd_subclass_parameter_gets_its_meta_gradient():
    """The issue's repro: a learned weight decay in `update` had no gradient in checkpoint (now `recompute`) mode."""
    _check(lambda mode: _problem(mode, sgd_cls=WeightDecaySGD), lambda p, _: p[3].log_decay)


def test_teacher_subclass_parameter_gets_its_meta_gradient():
    _check(lambda mode: _problem(mode, teacher_cls=BiasedTeacher), lambda p, _: p[0].offset)


def test_curriculum_subclass_parameter_gets_its_meta_gradient():
    _check(lambda mode: _problem(mode, curriculum_cls=ScaledCurriculum), lambda p, _: p[1].scale)


def test_meta_objective_subclass_parameter_gets_its_meta_gradient():
    _check(lambda mode: _problem(mode), lambda p, obj: obj.log_temperature,
           objective_of=lambda p: TemperedObjective(p[4], p[5]))


def test_arch_space_subclass_parameter_gets_its_meta_gradient():
    """A space whose learners start from a learned scale of their initial weights: the scale is meta-learned."""

    class ScaledInitSpace(ArchSpace):
        def __init__(self):
            self.base = ArchSpace.mlp(IMAGE, NUM_CLASSES, width_range=(5, 5))
            self.init_scale = nn.Parameter(torch.tensor(0.8))

        def sample_spec(self, rng=None):
            return self.base.sample_spec(rng)

        def build(self, spec, rng=None):
            return self.base.build(spec, rng).double()

    space = ScaledInitSpace()
    grads = {}
    for mode in ("full", "recompute"):
        teacher, curriculum, _, sgd, x, y = _problem(mode)
        learner = space.build(space.sample_spec(torch.Generator().manual_seed(0)), torch.Generator().manual_seed(0))

        def loss(learner=learner, sgd=sgd, teacher=teacher, curriculum=curriculum, x=x, y=y):
            start = learner.init_state()
            start = start.with_tensors([t * space.init_scale if t.is_floating_point() else t
                                        for t in start.tensors()])
            return learner.meta_loss(sgd.unroll(learner, teacher.batches(curriculum), start), x, y)

        (grad,) = torch.autograd.grad(loss(), [space.init_scale])
        with torch.no_grad():
            space.init_scale += 1e-6
            plus = loss().item()
            space.init_scale -= 2e-6
            minus = loss().item()
            space.init_scale += 1e-6
        numeric = (plus - minus) / 2e-6
        assert abs(grad.item() - numeric) <= 1e-6 * abs(numeric) + 1e-10, (mode, grad.item(), numeric)
        grads[mode] = grad
    torch.testing.assert_close(grads["recompute"], grads["full"], rtol=1e-10, atol=1e-12)


def test_learner_subclass_reading_an_outside_tensor_is_refused_in_recompute_mode():
    """A learner whose inner loss reads a tensor that requires grad but belongs to no module the unroll passes
    through the recomputed step: full mode differentiates it, recompute mode must refuse it, naming the fix."""
    temperature = torch.tensor(1.3, requires_grad=True)

    class TemperedLearner(MLPLearner):
        def inner_loss(self, output, target):
            return super().inner_loss(output / temperature, target)

    for mode in ("full", "recompute"):
        teacher, curriculum, _, sgd, x, y = _problem(mode)
        learner = TemperedLearner(IMAGE, NUM_CLASSES, (5,)).double()
        loss = learner.meta_loss(sgd.unroll(learner, teacher.batches(curriculum)), x, y)
        if mode == "full":
            (grad,) = torch.autograd.grad(loss, [temperature])
            assert grad is not None and grad.abs() > 0
        else:  # what the trainer does; torch.autograd.grad(loss, [temperature]) says "not used in the graph"
            with pytest.raises(RuntimeError, match="nn.Parameter of the UnrolledSGD"):
                loss.backward()


def test_the_meta_trainer_optimises_an_inner_optimisers_own_parameter():
    """MetaTrainer collects the sgd's parameters (all of them, not only lr and momentum) into Adam."""
    from gtn_edu import MetaTrainer, RealData

    teacher = RealData(torch.randn(30, *IMAGE), torch.randint(NUM_CLASSES, (30,)))
    sgd = WeightDecaySGD(0.05, 0.6, mode="recompute")
    space = ArchSpace.mlp(IMAGE, NUM_CLASSES, width_range=(5, 5))
    x, y = torch.randn(7, *IMAGE), torch.randint(NUM_CLASSES, (7,))
    trainer = MetaTrainer(teacher, Curriculum(2, 6, NUM_CLASSES, variant="none"), sgd, space,
                          lambda learner, states: (learner.meta_loss(states[-1], x, y), {}), progress=False)
    before = sgd.log_decay.detach().clone()
    trainer.fit(2)
    assert not torch.equal(sgd.log_decay.detach(), before)

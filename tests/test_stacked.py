"""Several learners per outer iteration (`gtn_edu.fast.stacked`): stacked learners and shared batches.

Stacking (k learners of one architecture trained as one, each step vmapped) must not change
any learner's trained state or the meta-gradient of the mean meta-loss: checked in float64
against the learners trained one at a time, in both unroll modes, for MLP and conv learners,
both curricula, and an update rule written per tensor. Batches shared by all learners are
computed once (`BatchesOnce`): checked against each learner generating its own, with the
teacher's forward passes counted.
"""

import pytest
import torch

from gtn_edu import ArchSpace, Callback, Curriculum, MetaTrainer, RealBatchLoss, Teacher, UnrolledSGD
from gtn_edu.data import Split
from gtn_edu.fast import CompiledSGD, FusedSGD, StackedSGD
from gtn_edu.fast.stacked import StackedBatches, StackedLearners, same_architecture, same_batches, unroll_learners

SHAPE, K = (1, 8, 8), 4
SPACES = {"mlp": lambda: ArchSpace.mlp(SHAPE, K, width_range=(9, 9), max_layers=1),
          "conv": lambda: ArchSpace.mnist(SHAPE, K, channel_ranges=((3, 3), (4, 4)), hidden_range=(6, 6))}


def _setup(space: str, k: int = 3, variant: str = "shuffled_batch"):
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=6, hidden=16, channels=4, conv_channels=4).double()
    # shuffled_batch: each learner its own batch order; full: one set of batches for all, computed once
    cur = Curriculum(3, 8, K, 6, variant=variant).double()
    learners = [SPACES[space]().sample(torch.Generator().manual_seed(j)).double() for j in range(k)]

    def batches():  # afresh for every meta-gradient: each holds a graph from the codes to its batch order
        return [teacher.batches(cur, torch.Generator().manual_seed(10 + j)) for j in range(k)]

    real = [(torch.randn(16, *SHAPE, dtype=torch.float64), torch.arange(16) % K) for _ in range(k)]
    return teacher, cur, learners, batches, real


def _meta_gradient(sgd, teacher, cur, learners, batches, real, stack):
    kept = unroll_learners(sgd, learners, batches(), [2, 3], stack=stack)
    loss = sum(m.meta_loss(states[-1], x, y) + m.meta_loss(states[0], x, y)
               for m, states, (x, y) in zip(learners, kept, real))
    targets = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    return torch.autograd.grad(loss / len(learners), targets), kept


@pytest.mark.parametrize("space, variant", [("mlp", "shuffled_batch"), ("conv", "shuffled_batch"), ("mlp", "full"),
                                            ("conv", "full")])
@pytest.mark.parametrize("mode", ["recompute", "full"])
def test_stacked_learners_equal_learners_trained_one_at_a_time(space, variant, mode):
    teacher, cur, learners, batches, real = _setup(space, variant=variant)
    assert StackedBatches(batches()).shared == (variant == "full")
    assert same_architecture(learners)
    for cls in (FusedSGD, UnrolledSGD):  # the library's fused rule and the plain one, written per tensor
        sgd = cls(0.1, 0.6, steps=3, mode=mode).double()
        g_one, s_one = _meta_gradient(sgd, teacher, cur, learners, batches, real, stack=False)
        g_all, s_all = _meta_gradient(sgd, teacher, cur, learners, batches, real, stack=True)
        for a, b in zip(g_all, g_one):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        for states_all, states_one in zip(s_all, s_one):  # every learner, at both kept steps
            for a, b in zip(states_all, states_one):
                for x, y in zip(a.tensors(), b.tensors()):
                    torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(s_one[0][-1].params["head.v"], s_one[1][-1].params["head.v"])  # k learners, not one


def test_stacked_state_rows_and_batches():
    teacher, cur, learners, batches, _ = _setup("mlp", k=2)
    batches = batches()
    stacked, joined = StackedLearners(learners), StackedBatches(batches)
    state = stacked.init_state()
    assert all(t.shape[0] == 2 for t in state.tensors())
    for one, m in zip(stacked.unstack(state), learners):
        for a, b in zip(one.tensors(), m.init_state().tensors()):
            assert torch.equal(a, b)
    # the teacher's weights once, then each learner's own shuffled codes
    assert len(joined.tensors) == len(batches[0].tensors) + 1
    x, y = joined.batch(1, joined.tensors)
    for j, b in enumerate(batches):
        xj, yj = b.batch(1, b.tensors)
        assert torch.equal(x[j], xj) and torch.equal(y[j], yj)
    # the inner losses come back per learner
    sgd = StackedSGD(UnrolledSGD(0.1, 0.6).double())
    seen = []
    sgd.unroll(stacked, joined, differentiable=False, callback=lambda t, s, loss: seen.append(loss.shape))
    assert seen == [torch.Size([2])] * 3
    assert not joined.shared and x.shape[:2] == (2, 8)
    # with the full curriculum every learner trains on the same batches: computed once, not stacked
    _, _, _, batches, _ = _setup("mlp", k=2, variant="full")
    joined = StackedBatches(batches())
    x, y = joined.batch(1, joined.tensors)
    assert joined.shared and x.shape == (8, *SHAPE) and len(joined.tensors) == len(batches()[0].tensors)


def test_learners_of_different_architectures_are_refused_or_run_one_at_a_time():
    space = ArchSpace.mlp(SHAPE, K, width_range=(8, 64))
    learners = [space.sample(torch.Generator().manual_seed(j)) for j in range(2)]
    assert not same_architecture(learners)
    with pytest.raises(ValueError, match="one architecture"):
        StackedLearners(learners)
    with pytest.raises(ValueError, match="at least 2"):
        StackedLearners(learners[:1])
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=6, hidden=16, channels=4, conv_channels=4)
    cur = Curriculum.full(2, 8, K, 6)
    with pytest.warns(UserWarning, match="differ in architecture"):
        kept = unroll_learners(UnrolledSGD(), learners, [teacher.batches(cur)] * 2, [2], stack=True)
    assert [s[0].params["layers.0.v"].shape for s in kept] == [m.layers[0].v.shape for m in learners]
    with pytest.raises(ValueError, match="compile_step"):
        StackedSGD(CompiledSGD())
    with pytest.raises(TypeError, match="StackedSGD"):  # the plain optimiser cannot step k learners at once
        UnrolledSGD().unroll(StackedLearners([learners[0]] * 2), StackedBatches([teacher.batches(cur)] * 2))


def _trainer(stack: bool) -> MetaTrainer:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(128) % K
    x = torch.randn(K, *SHAPE, generator=g)[y] + 0.5 * torch.randn(128, *SHAPE, generator=g)
    torch.manual_seed(3)
    teacher = Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4)
    return MetaTrainer(teacher, Curriculum.full(3, 8, K, latent_dim=8), UnrolledSGD(0.05, 0.5),
                       ArchSpace.mlp(SHAPE, K, width_range=(16, 16), max_layers=1), RealBatchLoss(Split(x, y), 32),
                       seed=3, progress=False, learners_per_step=3, stack_learners=stack, meta_loss_every=2)


def test_meta_trainer_stack_learners_gives_the_same_iteration():
    steps = []

    class Count(Callback):
        def on_inner_step(self, trainer, t, state, inner_loss):
            steps.append((t, inner_loss.dim(), state.params["head.v"].shape))

    records, grads = [], []
    for stack in (False, True):
        tr = _trainer(stack)
        tr.callbacks.append(Count())
        records.append(tr.outer_step())
        grads.append([p.grad.clone() for p in tr.params])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for key in ("meta_loss", "inner_loss_first", "inner_loss_last", "grad_norm"):
        assert records[1][key] == pytest.approx(records[0][key], rel=1e-5)
    # callbacks see each learner's own step: 3 learners x 3 steps, a scalar loss and one learner's weights
    assert len(steps) == 18 and {s[1:] for s in steps} == {(0, torch.Size([K, 16]))}
    with pytest.raises(ValueError, match="compile_step"):
        MetaTrainer(Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4),
                    Curriculum.full(3, 8, K, latent_dim=8), CompiledSGD(), ArchSpace.mlp(SHAPE, K),
                    lambda m, s: (m.meta_loss(s[-1], *_toy()), {}), stack_learners=True)


def _toy():
    return torch.randn(4, *SHAPE), torch.arange(4) % K


@pytest.mark.parametrize("mode, calls_once, calls_each", [("full", 3, 9), ("recompute", 3 + 9, 9 + 9)])
def test_learners_on_the_same_batches_get_each_batch_computed_once(mode, calls_once, calls_each):
    """Learners of different architectures on the full curriculum's batches: one teacher pass a step, same gradients."""
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=6, hidden=16, channels=4, conv_channels=4).double()
    cur = Curriculum.full(3, 8, K, 6).double()
    space = ArchSpace.mlp(SHAPE, K, width_range=(5, 30))
    learners = [space.sample(torch.Generator().manual_seed(j)).double() for j in range(3)]
    assert not same_architecture(learners)
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    x, y = torch.randn(16, *SHAPE, dtype=torch.float64), torch.arange(16) % K
    sgd = UnrolledSGD(0.1, 0.6, per_step=3, mode=mode).double()
    targets = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    grads = []
    for once in (True, False):
        calls.clear()
        if once:  # what MetaTrainer does: the batches are recognised as one and the same
            kept = unroll_learners(sgd, learners, [teacher.batches(cur) for _ in learners], [3], stack=False)
        else:
            kept = [[sgd.unroll(m, teacher.batches(cur))] for m in learners]
        loss = sum(m.meta_loss(s[-1], x, y) for m, s in zip(learners, kept))
        grads.append(torch.autograd.grad(loss, targets))
        assert len(calls) == (calls_once if once else calls_each)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    # a shuffled curriculum gives every learner its own batches: nothing is shared
    shuffled = Curriculum.shuffled_batch(3, 8, K, 6).double()
    assert not same_batches([teacher.batches(shuffled, torch.Generator().manual_seed(j)) for j in range(2)])

"""BatchNorm statistics at scoring time (`bn_stats="real"`): what they are, and proven meta-gradients."""

import dataclasses

import pytest
import torch
from strategies import IMAGE, NUM_CLASSES, fixed_problem

from gtn_edu import ConvLearner, GTNConfig, MLPLearner, RealBatchLoss, Split, Teacher
from gtn_edu.evaluate import BN_IMAGES, bn_images_for, few_step_accuracy


def _conv_problem(seed=0):
    torch.manual_seed(seed)
    teacher = Teacher(IMAGE, NUM_CLASSES, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    return fixed_problem(teacher, ConvLearner(IMAGE, NUM_CLASSES, (3, 3), hidden=5), seed=seed)


def _real_bn_loss(problem, mode):
    problem.sgd.mode = mode
    states = problem.sgd.unroll(problem.learner, problem.teacher.batches(problem.curriculum))
    objective = RealBatchLoss(Split(problem.x_real, problem.y_real), len(problem.y_real), bn_stats="real")
    objective.split.sample = lambda n, rng=None: (problem.x_real, problem.y_real)  # the whole batch, in order
    return objective(problem.learner, [states])[0]


def test_with_batch_stats_are_the_batch_mean_and_unbiased_variance():
    torch.manual_seed(0)
    learner = MLPLearner(IMAGE, NUM_CLASSES, (6,)).double()
    state = learner.init_state()
    x = torch.randn(9, *IMAGE, dtype=torch.float64)
    h = learner.layers[0](x.flatten(1))  # what the first BN normalises
    got = learner.with_batch_stats(state, x)
    torch.testing.assert_close(got.buffers["bns.0.running_mean"], h.mean(0))
    torch.testing.assert_close(got.buffers["bns.0.running_var"], h.var(0, unbiased=True))
    assert got.params is state.params and torch.equal(state.buffers["bns.0.running_var"], torch.ones(6))
    # Scored with the batch's own statistics, the outputs are the training-mode outputs up to the
    # unbiased-vs-biased variance (n/(n-1) with n = 9).
    assert not torch.allclose(learner.predict(got, x), learner.predict(state, x))
    no_bn = MLPLearner(IMAGE, NUM_CLASSES, (6,), batch_norm=False)
    s = no_bn.init_state()
    assert no_bn.with_batch_stats(s, x.float()) is s


@pytest.mark.parametrize("mode", ["full", "recompute"])
def test_real_bn_meta_gradient_matches_finite_differences(mode):
    problem = _conv_problem()
    inputs = problem.inputs()
    grads = torch.autograd.grad(_real_bn_loss(problem, mode), list(inputs.values()))
    gen = torch.Generator().manual_seed(1)
    checked = 0
    for (name, tensor), grad in zip(inputs.items(), grads):
        direction = torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype)
        fd = {}
        for eps in (1e-6, 4e-6):
            with torch.no_grad():
                tensor.add_(eps * direction)
                plus = _real_bn_loss(problem, mode).item()
                tensor.sub_(2 * eps * direction)
                minus = _real_bn_loss(problem, mode).item()
                tensor.add_(eps * direction)
            fd[eps] = (plus - minus) / (2 * eps)
        assert abs(fd[1e-6] - fd[4e-6]) <= 1e-4 * abs(fd[1e-6]) + 1e-8, f"{name} straddles a kink: pick another seed"
        analytic = (grad * direction).sum().item()
        assert abs(analytic - fd[1e-6]) <= 1e-5 * abs(fd[1e-6]) + 1e-9, f"{mode} d/d{name}: {analytic} vs {fd}"
        checked += abs(fd[1e-6]) > 1e-6
    assert checked >= 3


def test_real_bn_recompute_equals_full_and_differs_from_synthetic():
    problem = _conv_problem(seed=2)
    inputs = list(problem.inputs().values())
    full = torch.autograd.grad(_real_bn_loss(problem, "full"), inputs)
    ckpt = torch.autograd.grad(_real_bn_loss(problem, "recompute"), inputs)
    for a, b in zip(full, ckpt):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    synthetic = torch.autograd.grad(problem.meta_loss("full"), inputs)
    assert any(not torch.allclose(a, b) for a, b in zip(full, synthetic))


def test_few_step_accuracy_scores_with_the_real_images_statistics():
    from gtn_edu import ArchSpace, Curriculum, RealData, UnrolledSGD
    from gtn_edu.seeding import evaluation_streams

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, *IMAGE, generator=g), torch.randint(NUM_CLASSES, (120,), generator=g)
    train, test = Split(x[:90], y[:90]), Split(x[90:], y[90:])
    teacher, cur = RealData(train.x, train.y), Curriculum(3, 6, NUM_CLASSES, variant="none")
    space, sgd = ArchSpace.mlp(IMAGE, NUM_CLASSES, width_range=(4, 8)), UnrolledSGD(0.3, 0.5)
    bn = bn_images_for("real", train)
    assert torch.equal(bn, train.x[:BN_IMAGES]) and bn_images_for("synthetic", train) is None
    got = few_step_accuracy(teacher, cur, sgd, space, test, n_learners=2, seed=3, bn_images=bn)
    arch_rng, data_rng = evaluation_streams(3, "cpu")
    want = []
    for _ in range(2):  # by hand: train as the evaluation does, then set the statistics from `bn`
        learner = space.sample(arch_rng)
        state = sgd.unroll(learner, teacher.batches(cur, data_rng), differentiable=False)
        want.append(learner.accuracy(learner.with_batch_stats(state, bn), test.x, test.y))
    assert got.accuracies == want
    with pytest.raises(ValueError, match="bn_stats"):
        bn_images_for("test", train)


def test_bn_stats_is_checked_and_reaches_the_objective(data_root):
    with pytest.raises(ValueError, match="bn_stats must be one of 'synthetic', 'real', got 'last'"):
        GTNConfig(bn_stats="last")
    with pytest.raises(ValueError, match="bn_stats"):
        RealBatchLoss(Split(torch.zeros(2, *IMAGE), torch.zeros(2, dtype=torch.long)), 2, bn_stats="x")
    from gtn_edu import load_dataset
    from gtn_edu.experiment import build_arm

    data = load_dataset("mnist", data_root, download=False)
    cfg = dataclasses.replace(GTNConfig(), inner_steps=1, inner_batch=10, latent_dim=4, teacher_hidden=8,
                              teacher_channels=4, teacher_conv_channels=4, bn_stats="real")
    assert build_arm("real", cfg, data, progress=False).trainer.objective.bn_stats == "real"

"""NAS evaluations (gtn_edu.nas.evaluations, proxies) and the caching, resumable NASEvaluator."""

import json
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from gtn_edu import Curriculum, Dataset, Split, Teacher, UnrolledSGD
from gtn_edu.data import fingerprint
from gtn_edu.learner import LearnerState
from gtn_edu.nas import (
    CellSpace,
    EpochsEvaluation,
    Evaluation,
    GTNEvaluation,
    NASEvaluator,
    NASWOTEvaluation,
    RealDataEvaluation,
    SynFlowEvaluation,
)
from gtn_edu.nas.evaluator import canonical
from gtn_edu.nn import LearnerBatchNorm

SHAPE = (3, 8, 8)


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def space():
    return CellSpace(SHAPE, 10, cells_per_stage=1, filters=4, num_nodes=2)


@pytest.fixture(scope="module")
def specs(space):
    rng = _rng(0)
    return [space.sample_spec(rng) for _ in range(5)]


@pytest.fixture(scope="module")
def data():
    rng = _rng(1)
    x, y = torch.randn(64, *SHAPE, generator=rng), torch.randint(10, (64,), generator=rng)
    return Split(x[:48], y[:48]), Split(x[48:], y[48:])


def _gtn(val, seed=2):
    torch.manual_seed(seed)
    teacher = Teacher(SHAPE, 10, latent_dim=4, hidden=8, channels=4, conv_channels=4)
    return GTNEvaluation(teacher, Curriculum.full(2, 10, 10, latent_dim=4), UnrolledSGD(0.1, 0.5), val)


def _evaluations(data):
    train, val = data
    return {"gtn": _gtn(val), "real": RealDataEvaluation(train, val, 2, 10, UnrolledSGD(0.1, 0.5)),
            "epochs": EpochsEvaluation(train, val, 1, 16), "synflow": SynFlowEvaluation(),
            "naswot": NASWOTEvaluation(train.x[:16])}


class Probe(Evaluation):
    """A cheap score that depends on the initialisation and on the data stream; counts its calls."""

    name = "probe"

    def __init__(self, steps=1, fail_at=None):
        self.steps, self.fail_at, self.calls = steps, fail_at, 0

    def score(self, learner, rng):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt("killed")
        with torch.no_grad():
            return float(sum(p.sum() for p in learner.parameters()) + torch.rand(1, generator=rng))

    def settings(self):
        return {"steps": self.steps}


def _run(space, evaluation, specs, cache_dir=None, seed=0):
    return NASEvaluator(space, evaluation, cache_dir, seed=seed, progress=False).evaluate(specs)


# ---- every evaluation ----
@pytest.mark.parametrize("name", ["gtn", "real", "epochs", "synflow", "naswot"])
def test_each_evaluation_gives_a_finite_float(space, specs, data, name):
    results = _run(space, _evaluations(data)[name], specs[:2])
    assert [r.genotype for r in results] == [json.loads(canonical(s)) for s in specs[:2]]
    for r in results:
        assert isinstance(r.score, float) and math.isfinite(r.score)
        assert r.seconds > 0 and not r.cached
    if name in ("gtn", "real", "epochs"):
        assert all(0 <= r.score <= 1 for r in results)  # accuracies


def test_same_seed_same_score_whatever_the_order(space, specs, data):
    for evaluation in (Probe(), _evaluations(data)["real"]):
        forward = [r.score for r in _run(space, evaluation, specs[:3])]
        backward = [r.score for r in _run(space, evaluation, specs[2::-1])]
        assert forward == backward[::-1]
        assert forward[1:2] == [r.score for r in _run(space, evaluation, specs[1:2])]  # alone
    other_seed = [r.score for r in _run(space, Probe(), specs[:3], seed=1)]
    assert other_seed != [r.score for r in _run(space, Probe(), specs[:3])]


# ---- the cache ----
def test_second_evaluator_reads_everything_from_the_cache(space, specs, tmp_path):
    first = _run(space, Probe(), specs, tmp_path)
    probe = Probe()
    second = _run(space, probe, specs, tmp_path)
    assert probe.calls == 0 and all(r.cached for r in second)
    assert [(r.score, r.seconds) for r in second] == [(r.score, r.seconds) for r in first]
    assert len(list(tmp_path.glob("*.jsonl"))) == 1 and len(list(tmp_path.glob("*.json"))) == 1


def test_interrupted_run_resumes_with_the_rest(space, specs, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _run(space, Probe(fail_at=3), specs, tmp_path)
    (path,) = tmp_path.glob("*.jsonl")
    assert len(path.read_text().splitlines()) == 2  # flushed after each architecture
    probe = Probe()
    resumed = _run(space, probe, specs, tmp_path)
    assert probe.calls == 3 and [r.cached for r in resumed] == [True, True, False, False, False]
    assert [r.score for r in resumed] == [r.score for r in _run(space, Probe(), specs)]


def test_changed_setting_misses_the_cache(space, specs, data, tmp_path):
    _run(space, Probe(steps=1), specs[:2], tmp_path)
    probe = Probe(steps=2)
    assert not any(r.cached for r in _run(space, probe, specs[:2], tmp_path)) and probe.calls == 2
    train, val = data
    keys = {NASEvaluator(space, RealDataEvaluation(train, val, steps, 10, UnrolledSGD(0.1, 0.5)), tmp_path).key
            for steps in (2, 3)}
    other_space = CellSpace(SHAPE, 10, cells_per_stage=1, filters=8, num_nodes=2)
    keys.add(NASEvaluator(other_space, Probe(), tmp_path).key)
    assert len(keys | {NASEvaluator(space, Probe(), tmp_path).key}) == 4


def test_truncated_last_line_is_skipped_with_a_warning(space, specs, tmp_path):
    _run(space, Probe(), specs[:3], tmp_path)
    (path,) = tmp_path.glob("*.jsonl")
    path.write_text(path.read_text()[:-15])  # killed in the middle of the third line
    probe = Probe()
    with pytest.warns(RuntimeWarning, match="unreadable"):
        resumed = _run(space, probe, specs[:4], tmp_path)
    assert probe.calls == 2 and [r.cached for r in resumed] == [True, True, False, False]
    assert [json.loads(line)["genotype"] for line in path.read_text().splitlines()] == [r.genotype for r in resumed]


# ---- GTN evaluation ----
def test_teacher_fingerprint_follows_the_weights(space, data, tmp_path):
    evaluation = _gtn(data[1])
    before = evaluation.settings()["teacher"]
    assert _gtn(data[1]).settings()["teacher"] == before  # the same weights, another object
    key = NASEvaluator(space, evaluation, tmp_path).key
    with torch.no_grad():
        evaluation.teacher.fc1.g.add_(1e-3)
    assert evaluation.settings()["teacher"] != before
    assert NASEvaluator(space, evaluation, tmp_path).key != key


def test_from_checkpoint_restores_the_saved_teacher(tmp_path):
    from gtn_edu.config import GTNConfig
    from gtn_edu.experiment import build_arm

    rng = _rng(3)
    split = lambda n: Split(torch.randn(n, *SHAPE, generator=rng), torch.arange(n) % 10)  # noqa: E731
    data = Dataset("cifar10", split(40), split(20), split(20), torch.zeros(3), torch.ones(3))
    cfg = GTNConfig(dataset="cifar10", inner_steps=2, inner_batch=10, outer_batch=10, latent_dim=4,
                    teacher_hidden=8, teacher_channels=4, teacher_conv_channels=4, arch="mlp", arch_scale=0.1)
    arm = build_arm("gtn", cfg, data, progress=False)
    with torch.no_grad():
        arm.teacher.fc1.g.mul_(2)  # "trained"
    arm.trainer.save(tmp_path / "gtn.pt")
    loaded = GTNEvaluation.from_checkpoint(tmp_path / "gtn.pt", None, data)
    assert loaded.settings() == GTNEvaluation.from_arm(arm, data.val).settings()
    assert loaded.settings() != GTNEvaluation.from_arm(build_arm("gtn", cfg, data, progress=False),
                                                       data.val).settings()


# ---- zero-cost proxies ----
def test_synflow_separates_genotypes_and_ignores_weight_signs(space, specs):
    synflow = SynFlowEvaluation()
    scores = [synflow.score(space.build(s, _rng(5)), None) for s in specs]
    assert len(set(scores)) == len(scores) and all(math.isfinite(s) and s > 0 for s in scores)
    learner = space.build(specs[0], _rng(5))
    weights = [p.clone() for p in learner.parameters()]
    assert synflow.score(learner, _rng(1)) == scores[0]  # untouched learner, no randomness
    assert all(torch.equal(p, w) for p, w in zip(learner.parameters(), weights))
    with torch.no_grad():
        for p in learner.parameters():
            p.neg_()
    assert synflow.score(learner, None) == pytest.approx(scores[0], rel=1e-12)  # |theta| only


class CountLeakyReLU(TorchFunctionMode):
    """Counts the units of every F.leaky_relu call: the activation sites NASWOT must hook."""

    units = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.leaky_relu:
            self.units += args[0][0].numel()
        return func(*args, **(kwargs or {}))


def test_naswot_kernel_counts_every_activation_unit(space, specs, data):
    images = data[0].x[:16]
    naswot = NASWOTEvaluation(images)
    for spec in specs[:3]:
        learner = space.build(spec, _rng(7))
        K, units = naswot.kernel(learner)
        with CountLeakyReLU() as counter, torch.no_grad():
            learner(images)
        assert units == counter.units > 0
        assert torch.equal(K, K.T) and torch.equal(K.diagonal(), torch.full((16,), float(units), dtype=K.dtype))
        assert (K >= 0).all() and (K <= units).all()
        assert math.isfinite(naswot.score(learner, None))


# ---- k epochs of real data ----
def test_epochs_evaluation_learns_a_separable_problem(space, specs):
    rng = _rng(8)
    y = torch.randint(2, (320,), generator=rng)
    x = 0.5 * torch.randn(320, *SHAPE, generator=rng)
    x[:, 0] += (2 * y - 1).view(-1, 1, 1).float()  # class = sign of the first channel's mean
    train, val = Split(x[:256], y[:256]), Split(x[256:], y[256:])
    (result,) = _run(space, EpochsEvaluation(train, val, epochs=3, batch_size=32, lr=0.05), specs[:1])
    (untrained,) = _run(space, EpochsEvaluation(train, val, epochs=1, batch_size=32, lr=1e-7), specs[:1])
    assert result.score >= 0.9 > untrained.score + 0.2


def test_channels_last_scoring_is_the_same_function(space, specs, data):
    """The evaluations train image learners in channels-last order for speed; in float64 the score is unchanged."""
    train, val = (Split(s.x.double(), s.y) for s in data)
    evaluation = RealDataEvaluation(train, val, 3, 10, UnrolledSGD(0.3, 0.5).double())
    learner = space.build(specs[1], _rng(4)).double()
    reference = space.build(specs[1], _rng(4)).double()  # the same weights, trained the plain (NCHW) way
    batches = evaluation.teacher.batches(evaluation.curriculum, _rng(5))
    state = evaluation.sgd.unroll(reference, batches, differentiable=False)
    logits = reference.predict(state, val.x)
    assert evaluation.score(learner, _rng(5)) == (logits.argmax(1) == val.y).float().mean().item()
    assert next(p for p in learner.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)


def test_epochs_evaluation_scores_with_statistics_of_bn_images(space, specs):
    """After training, one pass over `bn_images` training images sets the BatchNorm statistics the score uses."""
    rng = _rng(9)
    train = Split(torch.randn(96, *SHAPE, generator=rng), torch.randint(10, (96,), generator=rng))
    val = Split(torch.randn(32, *SHAPE, generator=rng), torch.randint(10, (32,), generator=rng))
    seen = []
    ev = EpochsEvaluation(train, val, epochs=1, batch_size=16, lr=1e-3, bn_images=64)
    learner = space.build(specs[0], _rng(1))
    learner.register_forward_pre_hook(lambda _, args: seen.append(len(args[0])))
    ev.score(learner, _rng(2))
    assert seen[:6] == [16] * 6 and seen[6] == 64  # six training batches, then the statistics pass
    assert ev.settings()["bn_images"] == 64
    with pytest.raises(ValueError, match="bn_images >= 2"):
        EpochsEvaluation(train, val, 1, bn_images=1)


# ---- BatchNorm statistics of real images at scoring time ----
def _statistics_by_hand(learner, state, images):
    """`state` with every LearnerBatchNorm's statistics those of its input over `images` (mean, unbiased var)."""
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda _, args, name=name: inputs.__setitem__(name, args[0]))
             for name, m in learner.named_modules() if isinstance(m, LearnerBatchNorm)]
    with torch.no_grad():
        torch.func.functional_call(learner.train(), {**state.params, **state.buffers}, (images,))
    for h in hooks:
        h.remove()
    buffers = {}
    for name, x in inputs.items():
        dims = [0, *range(2, x.dim())]
        buffers[f"{name}.running_mean"], buffers[f"{name}.running_var"] = x.mean(dims), x.var(dims, correction=1)
    assert set(buffers) == set(state.buffers) and buffers
    return LearnerState(state.params, state.momentum_buffer, buffers)


def test_bn_images_set_the_statistics_the_score_uses(space, specs, data):
    """With bn_images, the trained learner is scored with their BatchNorm statistics (float64, by hand)."""
    train, val = (Split(s.x.double(), s.y) for s in data)
    bn = train.x[:32]
    plain = RealDataEvaluation(train, val, 3, 10, UnrolledSGD(0.3, 0.5).double())
    real_bn = RealDataEvaluation(train, val, 3, 10, UnrolledSGD(0.3, 0.5).double(), bn_images=bn)
    reference = space.build(specs[1], _rng(4)).double()  # trained the plain (NCHW) way, statistics set by hand
    trained = plain.sgd.unroll(reference, plain.teacher.batches(plain.curriculum, _rng(5)), differentiable=False)
    by_hand = _statistics_by_hand(reference, trained, bn)
    learner, scored = space.build(specs[1], _rng(4)).double(), []
    accuracy = learner.accuracy
    learner.accuracy = lambda state, x, y: scored.append(state) or accuracy(state, x, y)  # see the scored state
    assert real_bn.score(learner, _rng(5)) == reference.accuracy(by_hand, val.x, val.y)
    for name, stat in by_hand.buffers.items():
        torch.testing.assert_close(scored[0].buffers[name], stat, rtol=1e-10, atol=1e-12)
        assert not torch.allclose(stat, trained.buffers[name])  # not the last inner batch's
    assert plain.score(space.build(specs[1], _rng(4)).double(), _rng(5)) == reference.accuracy(trained, val.x, val.y)
    assert not torch.allclose(reference.predict(by_hand, val.x), reference.predict(trained, val.x))


def test_bn_images_change_the_settings_and_travel_through_from_arm(space, data, tmp_path):
    train, val = data
    bn = train.x[:16]
    gtn = _gtn(val)
    arm = SimpleNamespace(teacher=gtn.teacher, curriculum=gtn.curriculum, sgd=gtn.sgd)
    gtn_bn = GTNEvaluation.from_arm(arm, val, bn_images=bn)
    real_arm = SimpleNamespace(curriculum=Curriculum(2, 10, 10, latent_dim=1, variant="none"), sgd=UnrolledSGD(0.1))
    real, real_bn = (RealDataEvaluation.from_arm(real_arm, train, val, bn_images=b) for b in (None, bn))
    assert gtn_bn.bn_images is not None and torch.equal(gtn_bn.bn_images, bn) and torch.equal(real_bn.bn_images, bn)
    for a, b in ((gtn, gtn_bn), (real, real_bn)):
        assert "bn_images" not in a.settings()  # as before: earlier runs' caches stay valid
        assert b.settings()["bn_images"] == fingerprint(bn)
        assert NASEvaluator(space, a, tmp_path).key != NASEvaluator(space, b, tmp_path).key
    other = GTNEvaluation.from_arm(arm, val, bn_images=train.x[16:32])
    assert NASEvaluator(space, other, tmp_path).key != NASEvaluator(space, gtn_bn, tmp_path).key
    with pytest.raises(ValueError, match="at least 2 inputs"):
        GTNEvaluation.from_arm(arm, val, bn_images=train.x[:1])

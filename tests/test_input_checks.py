"""Bad inputs fail early and clearly (issue 23, items 11-13): constructor arguments of the teachers and
the curriculum, learners whose norm layers update running statistics in place, corrupt NAS cache lines."""

import json
import math
import re

import pytest
import torch
from torch import nn

from gtn_edu import Curriculum, MLPLearner, RealData, Teacher, UnrolledSGD, XYTeacher
from gtn_edu.nas import CellSpace, Evaluation, NASEvaluator
from gtn_edu.teacher import DistilledData

SMALL = dict(latent_dim=3, hidden=4, channels=2, conv_channels=2)


def _raises_naming(name, value, allowed):
    """pytest.raises(ValueError) whose message names the argument, shows the value and says what is allowed."""
    return pytest.raises(ValueError, match=rf"(?s){re.escape(name)}.*{re.escape(allowed)}.*{re.escape(repr(value))}")


# ---- 11: teacher and curriculum arguments ----
@pytest.mark.parametrize("shape", [(28, 28), (1, 8, 8, 8), (0, 8, 8), (1, 0, 0), (1, -4, 8), (1, 8.0, 8),
                                   (True, 8, 8), 28, "1x8x8"])
@pytest.mark.parametrize("cls", [Teacher, XYTeacher])
def test_teacher_image_shape_must_be_three_positive_ints(cls, shape):
    with _raises_naming("image_shape", shape, "three positive integers"):
        cls(shape, 2, **SMALL)


@pytest.mark.parametrize("name, value", [("num_classes", 0), ("num_classes", -1), ("latent_dim", 0),
                                         ("hidden", 0), ("channels", -2), ("conv_channels", 0),
                                         ("latent_dim", 2.0), ("hidden", True), ("num_classes", "10")])
@pytest.mark.parametrize("cls", [Teacher, XYTeacher])
def test_teacher_sizes_must_be_positive_ints(cls, name, value):
    kw = {**SMALL, "num_classes": 2, name: value}
    with _raises_naming(name, value, "positive integer"):
        cls((1, 8, 8), **kw)


@pytest.mark.parametrize("name, value", [("weight_norm", 1), ("weight_norm", "yes"), ("conditional", None)])
def test_teacher_switches_must_be_bools(name, value):
    with _raises_naming(name, value, "True or False"):
        XYTeacher((1, 8, 8), 2, **SMALL, **{name: value})


@pytest.mark.parametrize("value", [(1.0, math.nan), (-math.inf, 1.0), (0, math.inf), (2.0, 1.0), (1.0, 1.0),
                                   (1.0,), (0.0, 1.0, 2.0), ("0", "1"), (False, True), 1.0])
def test_teacher_output_range_must_be_two_finite_increasing_numbers(value):
    with _raises_naming("output_range", value, "finite"):
        Teacher((1, 8, 8), 2, **SMALL, output_range=value)


def test_teacher_accepts_what_it_always_accepted():
    t = Teacher(torch.Size([1, 8, 8]), 2, **SMALL, output_range=(torch.tensor(-0.5), 3))
    assert t.output_range == (-0.5, 3.0) and t.image_shape == (1, 8, 8)
    XYTeacher([3, 4, 12], 1, **SMALL, conditional=False, weight_norm=False)


@pytest.mark.parametrize("name, value", [("num_classes", 0), ("steps", 0), ("steps", 1.5), ("batch_size", 0),
                                         ("batch_size", 10.0), ("latent_dim", 0), ("latent_dim", -3),
                                         ("steps", True), ("num_classes", None)])
def test_curriculum_sizes_must_be_positive_ints(name, value):
    kw = {"steps": 2, "batch_size": 10, "num_classes": 5, "latent_dim": 4, name: value}
    with _raises_naming(name, value, "positive integer"):
        Curriculum(**kw)
    if name != "latent_dim":
        with _raises_naming(name, value, "positive integer"):
            DistilledData((1, 4, 4), kw["steps"], kw["batch_size"], kw["num_classes"])


def test_distilled_data_checks_its_image_shape_and_balanced_batches():
    with _raises_naming("image_shape", (1, 0, 4), "positive integers"):
        DistilledData((1, 0, 4), 2, 4, 2)
    with pytest.raises(ValueError, match="batch_size=5 is not a positive multiple of num_classes=2"):
        DistilledData((1, 4, 4), 2, 5, 2)


def test_real_data_needs_examples():
    with pytest.raises(ValueError, match=r"at least one example.*got 0"):
        RealData(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long))


# ---- 12: learners whose norm layers track running statistics ----
def _student(norm: nn.Module, shape=(2, 4, 4)) -> MLPLearner:
    class StudentNet(MLPLearner):
        def __init__(self):
            super().__init__(shape, 2, (6,), batch_norm=False)
            self.bns[0] = norm

    return StudentNet()


@pytest.mark.parametrize("norm", [nn.InstanceNorm1d(6, track_running_stats=True),
                                  nn.InstanceNorm1d(6, affine=True, track_running_stats=True),
                                  nn.LazyInstanceNorm1d(track_running_stats=True)])
def test_norm_layer_tracking_running_stats_is_refused_with_its_path_and_fix(norm):
    learner = _student(norm)
    with pytest.raises(TypeError, match=r"StudentNet\.bns\.0 .*track_running_stats=False.*LearnerBatchNorm"):
        learner.check_functional()
    teacher = RealData(torch.randn(20, 2, 4, 4), torch.randint(2, (20,)))
    for mode in ("full", "recompute"):
        with pytest.raises(TypeError, match=r"bns\.0"):
            UnrolledSGD(mode=mode).unroll(learner, teacher.batches(Curriculum(2, 4, 2)))


@pytest.mark.parametrize("norm", [nn.InstanceNorm2d(3, track_running_stats=True),
                                  nn.InstanceNorm3d(3, track_running_stats=True)])
def test_instance_norm_nested_anywhere_in_a_learner_is_refused(norm):
    learner = MLPLearner((2, 4, 4), 2, (6,))
    learner.extra = nn.Sequential(nn.Identity(), norm)  # a nested module: the path names it
    with pytest.raises(TypeError, match=r"MLPLearner\.extra\.1 \(InstanceNorm.d\) has track_running_stats=True"):
        learner.check_functional()


@pytest.mark.parametrize("norm", [nn.BatchNorm1d(6), nn.SyncBatchNorm(6), nn.LazyBatchNorm1d(),
                                  nn.BatchNorm1d(6, track_running_stats=False)])
def test_torch_batchnorm_is_still_refused(norm):
    with pytest.raises(TypeError, match=r"StudentNet\.bns\.0 .*LearnerBatchNorm"):
        _student(norm).check_functional()


@pytest.mark.parametrize("norm", [nn.InstanceNorm1d(1), nn.InstanceNorm1d(1, affine=True), nn.GroupNorm(2, 6),
                                  nn.LayerNorm(6)])
def test_norm_layers_without_running_stats_train_functionally(norm):
    learner = _student(norm, shape=(1, 4, 4))
    if isinstance(norm, nn.InstanceNorm1d):  # InstanceNorm1d wants (B, C, L): view the 6 features as (1, 6)
        learner.bns[0] = nn.Sequential(nn.Unflatten(1, (1, 6)), norm, nn.Flatten())
    learner.check_functional()
    torch.manual_seed(0)
    teacher = RealData(torch.randn(20, 1, 4, 4), torch.randint(2, (20,)))
    state = UnrolledSGD(0.1, 0.5).unroll(learner, teacher.batches(Curriculum(2, 4, 2)), differentiable=False)
    assert all(torch.isfinite(p).all() for p in state.params.values())


# ---- 13: the NAS cache ----
class Counter(Evaluation):
    """A cheap deterministic score; `value` replaces it when given (e.g. NaN)."""

    name = "counter"

    def __init__(self, value=None):
        self.value, self.calls = value, 0

    def score(self, learner, rng):
        self.calls += 1
        if self.value is not None:
            return self.value
        with torch.no_grad():
            return float(sum(p.sum() for p in learner.parameters()) + torch.rand(1, generator=rng))


@pytest.fixture(scope="module")
def space():
    return CellSpace((3, 8, 8), 10, cells_per_stage=1, filters=4, num_nodes=2)


@pytest.fixture(scope="module")
def specs(space):
    rng = torch.Generator().manual_seed(0)
    return [space.sample_spec(rng) for _ in range(3)]


def _evaluate(space, evaluation, specs, cache_dir):
    return NASEvaluator(space, evaluation, cache_dir, progress=False).evaluate(specs)


def _corrupt_second_line(space, specs, tmp_path, edit):
    """Cache three genotypes, replace the second line's bytes by `edit(line)`, evaluate again (warning expected)."""
    first = _evaluate(space, Counter(), specs, tmp_path)
    (path,) = tmp_path.glob("*.jsonl")
    lines = path.read_bytes().split(b"\n")
    lines[1] = edit(lines[1])
    path.write_bytes(b"\n".join(lines))
    counter = Counter()
    with pytest.warns(RuntimeWarning, match=r"unreadable.*\[2\]"):
        again = _evaluate(space, counter, specs, tmp_path)
    return first, again, counter, path


def _field(key, value):
    """An edit of a cache line: `key` set to the raw JSON text `value` (None: the key removed)."""
    def edit(line):
        rec = json.loads(line)
        text = json.dumps({k: v for k, v in rec.items() if k != key})
        return text.encode() if value is None else (text[:-1] + f', "{key}": {value}}}').encode()
    return edit


@pytest.mark.parametrize("edit", [
    lambda line: line.replace(b'"genotype"', b'"geno\xfftype"'),  # a byte that is not UTF-8
    lambda line: b"\xff\xfe" + line,
    lambda line: line[:-3],                                        # cut short
    _field("score", None), _field("seconds", None),
    _field("score", "NaN"), _field("score", '"0.5"'), _field("score", "null"), _field("score", "true"),
    _field("score", "[0.5]"),
    _field("seconds", "NaN"), _field("seconds", "-1.0"), _field("seconds", "Infinity"), _field("seconds", '"2"'),
], ids=["bad-byte", "bad-bom", "truncated", "no-score", "no-seconds", "nan-score", "string-score", "null-score",
        "bool-score", "list-score", "nan-seconds", "negative-seconds", "inf-seconds", "string-seconds"])
def test_corrupt_cache_line_is_dropped_and_recomputed(space, specs, tmp_path, edit):
    first, again, counter, path = _corrupt_second_line(space, specs, tmp_path, edit)
    assert counter.calls == 1 and [r.cached for r in again] == [True, False, True]
    assert [(r.score, type(r.score)) for r in again] == [(r.score, float) for r in first]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [rec["genotype"] for rec in records] == [again[0].genotype, again[2].genotype, again[1].genotype]
    assert all(math.isfinite(rec["score"]) and rec["seconds"] >= 0 for rec in records)


@pytest.mark.parametrize("genotype", ["[1, 2]", '"normal"', "null", "3"])
def test_cache_line_whose_genotype_is_not_a_dict_is_dropped(space, specs, tmp_path, genotype):
    _, again, counter, path = _corrupt_second_line(space, specs, tmp_path, _field("genotype", genotype))
    assert counter.calls == 1 and len(path.read_text().splitlines()) == 3


def test_infinite_scores_are_real_results_and_stay_cached(space, specs, tmp_path):
    """NASWOT scores a singular kernel -inf: that is its result, cached like any other."""
    first = _evaluate(space, Counter(-math.inf), specs[:2], tmp_path)
    counter = Counter()
    again = _evaluate(space, counter, specs[:2], tmp_path)
    assert counter.calls == 0 and [r.score for r in again] == [r.score for r in first] == [-math.inf] * 2


def test_nan_score_is_refused_before_it_reaches_the_cache(space, specs, tmp_path):
    _evaluate(space, Counter(), specs[:1], tmp_path)
    key = json.dumps(specs[1], sort_keys=True, separators=(",", ":"))
    with pytest.raises(ValueError, match=rf"counter scored genotype {re.escape(key)} as NaN"):
        _evaluate(space, Counter(math.nan), specs[:2], tmp_path)
    (path,) = tmp_path.glob("*.jsonl")
    assert len(path.read_text().splitlines()) == 1  # the first genotype's line only, nothing after it


def test_prefill_refuses_nan_scores_and_bad_times(space, specs, tmp_path):
    evaluator = NASEvaluator(space, Counter(), tmp_path, progress=False)
    good = _evaluate(space, Counter(), specs[:1], None)[0]
    for score, seconds in ((math.nan, 1.0), (0.5, -1.0), (0.5, math.nan)):
        bad = type(good)(specs[1], score, seconds)
        with pytest.raises(ValueError, match=r"genotype \{"):
            evaluator.prefill([good, bad])
    assert evaluator.prefill([good]) == 1

"""The outer loop: it learns, it resumes exactly, and it refuses to corrupt a teacher."""

import json
import math

import pytest
import torch

from gtn_edu import ArchSpace, Curriculum, DistilledData, RealData, Teacher, UnrolledSGD
from gtn_edu.data import Split
from gtn_edu.meta import Callback, MetaLossDivergedError, MetaTrainer, RealBatchLoss

SHAPE, K = (1, 8, 8), 4


def _toy_split(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % K
    protos = torch.randn(K, *SHAPE, generator=g)
    x = protos[y] + 0.5 * torch.randn(n, *SHAPE, generator=g)
    return Split(x, y)


def _trainer(seed=0, teacher=None, lr=0.05, log_path=None, callbacks=(), outer_lr=0.01):
    torch.manual_seed(seed)
    split = _toy_split()
    teacher = teacher or Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4)
    cur = Curriculum.full(3, 8, K, latent_dim=8)
    sgd = UnrolledSGD(lr, 0.5)
    space = ArchSpace.mlp(SHAPE, K, width_range=(8, 16))
    return MetaTrainer(teacher, cur, sgd, space, RealBatchLoss(split, 32), outer_lr=outer_lr, seed=seed,
                       log_path=log_path, callbacks=callbacks, progress=False, meta_loss_every=1)


def test_meta_loss_falls(tmp_path):
    tr = _trainer(log_path=tmp_path / "log.jsonl", outer_lr=0.02)
    recs = tr.fit(40)
    first = sum(r["meta_loss"] for r in recs[:8]) / 8
    last = sum(r["meta_loss"] for r in recs[-8:]) / 8
    assert last < 0.8 * first
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) == 40 and json.loads(lines[-1])["iteration"] == 39


def test_scored_steps():
    tr = _trainer()
    assert tr.scored_steps() == [1, 2, 3]
    tr.meta_loss_every = 0
    assert tr.scored_steps() == [3]


def test_resume_gives_the_same_run(tmp_path):
    a = _trainer(seed=1)
    a.fit(2)
    a.save(tmp_path / "ck.pt")
    a.fit(2)
    b = _trainer(seed=1)
    b.load(tmp_path / "ck.pt")
    assert b.iteration == 2
    b.fit(2)
    for pa, pb in zip(a.params, b.params):
        torch.testing.assert_close(pa, pb)
    ck = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert set(ck) >= {"state_dict", "config", "version"}


def test_callbacks_fire():
    seen = {"inner": 0, "outer": 0}

    class Count(Callback):
        def on_inner_step(self, trainer, t, state, loss):
            seen["inner"] += 1

        def on_outer_step(self, trainer, record):
            seen["outer"] += 1

    _trainer(callbacks=[Count()]).fit(2)
    assert seen == {"inner": 6, "outer": 2}


def test_nan_meta_loss_stops_before_touching_teacher():
    tr = _trainer()
    tr.fit(1)
    before = [p.detach().clone() for p in tr.params]
    with torch.no_grad():
        tr.sgd.raw_lr.fill_(math.log(1e30))  # an absurd inner learning rate
    with pytest.raises(MetaLossDivergedError, match="outer iteration 1"):
        tr.fit(1)
    for p, b in zip(tr.params[:-2], before[:-2]):  # the teacher and curriculum are unchanged
        assert torch.equal(p, b)


def test_baselines_train_with_same_trainer():
    split = _toy_split()
    for teacher in (RealData(split.x, split.y), DistilledData(SHAPE, 3, 8, K)):
        tr = _trainer(teacher=teacher)
        rec = tr.outer_step()
        assert math.isfinite(rec["meta_loss"])
        assert tr.sgd.raw_lr.grad is not None


def test_nothing_to_learn_is_an_error():
    split = _toy_split()
    cur = Curriculum.no_curriculum(2, 8, K)
    sgd = UnrolledSGD(learn=False)
    with pytest.raises(ValueError, match="nothing to meta-learn"):
        MetaTrainer(RealData(split.x, split.y), cur, sgd, ArchSpace.mlp(SHAPE, K), RealBatchLoss(split, 8),
                    progress=False)


def test_hyper_lr_moves_lr_and_momentum_at_their_own_rate():
    def moved(hyper_lr):
        torch.manual_seed(0)
        split = _toy_split()
        teacher = Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4)
        sgd = UnrolledSGD(0.05, 0.5)
        tr = MetaTrainer(teacher, Curriculum.full(3, 8, K, latent_dim=8), sgd, ArchSpace.mlp(SHAPE, K),
                         RealBatchLoss(split, 32), outer_lr=0.01, hyper_lr=hyper_lr, progress=False)
        before = [p.detach().clone() for p in sgd.parameters()]
        tr.outer_step()  # Adam's first step moves every parameter by about its group's lr
        return [lr for g in tr.optimizer.param_groups for lr in [g["lr"]]], \
            max((p - b).abs().max().item() for p, b in zip(sgd.parameters(), before))
    lrs, step_default = moved(None)
    assert lrs == [0.01, 0.01] and step_default == pytest.approx(0.01, rel=1e-3)
    lrs, step_fast = moved(0.1)
    assert lrs == [0.01, 0.1] and step_fast == pytest.approx(0.1, rel=1e-3)


def test_cosine_schedule_anneals_the_outer_learning_rates(tmp_path):
    def trainer(schedule, total):
        torch.manual_seed(0)
        teacher = Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4)
        return MetaTrainer(teacher, Curriculum.full(3, 8, K, latent_dim=8), UnrolledSGD(0.05, 0.5),
                           ArchSpace.mlp(SHAPE, K), RealBatchLoss(_toy_split(), 32), outer_lr=0.01, hyper_lr=0.1,
                           lr_schedule=schedule, total_steps=total, progress=False)
    tr = trainer("cosine", 4)
    assert [tr.lr_factor(i) for i in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    tr.fit(3)  # the step of iteration i uses factor(i): the last one here used factor(2) = 0.5
    assert [g["lr"] for g in tr.optimizer.param_groups] == pytest.approx([0.005, 0.05])
    tr.save(tmp_path / "ck.pt")
    resumed = trainer("cosine", 4)
    resumed.load(tmp_path / "ck.pt")  # the schedule continues from the saved iteration
    resumed.fit(1)
    f3 = tr.lr_factor(3)
    assert [g["lr"] for g in resumed.optimizer.param_groups] == pytest.approx([0.01 * f3, 0.1 * f3])
    assert trainer("constant", None).lr_factor(10**6) == 1.0
    with pytest.raises(ValueError, match="total_steps"):
        trainer("cosine", None)
    with pytest.raises(ValueError, match="lr_schedule must be"):
        trainer("linear", 4)

"""GTN-GAN (appendix I): the discriminator term's meta-gradient is proven, D learns, and a run resumes exactly."""

import pytest
import torch

from gtn_edu import ArchSpace, Curriculum, MLPLearner, Teacher, UnrolledSGD
from gtn_edu.data import Split
from gtn_edu.gan import Discriminator, GANObjective, discriminator_loss, gan_step, generated_images
from gtn_edu.meta import MetaTrainer, OuterAdam, RealBatchLoss

SHAPE, K = (1, 8, 8), 3


def _split(n=60, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return Split(torch.randn(n, *SHAPE, generator=g, dtype=dtype), torch.arange(n) % K)


def _problem(mode, weight=0.7, d_steps=0):
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=4, hidden=8, channels=3, conv_channels=3).double()
    curriculum = Curriculum.full(3, 6, K, latent_dim=4).double()
    learner = MLPLearner(SHAPE, K, (5,), batch_norm=True).double()
    sgd = UnrolledSGD(0.05, 0.6, mode=mode).double()
    split = _split(dtype=torch.float64)
    objective = GANObjective(RealBatchLoss(split, 12), teacher, curriculum, split, weight=weight, batch_size=10,
                             d_steps=d_steps, discriminator=Discriminator(SHAPE, channels=4)).double()
    return teacher, curriculum, learner, sgd, objective


def _loss(pieces):
    teacher, curriculum, learner, sgd, objective = pieces
    state = sgd.unroll(learner, teacher.batches(curriculum))
    return objective(learner, [state], torch.Generator().manual_seed(7))[0]  # the same real batch every call


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("pick", ["teacher", "codes", "lr"])
def test_gtn_gan_meta_gradient_matches_finite_differences_in_both_modes(pick):
    """d L / d phi of meta-loss + lambda * GAN loss, against a central difference in float64; the modes agree."""
    grads = {}
    for mode in ("full", "recompute"):
        pieces = _problem(mode)
        teacher, curriculum, _, sgd, _ = pieces
        tensor = {"teacher": teacher.fc1.v,
                  "codes": curriculum.codes, "lr": sgd.raw_lr}[pick]
        (grad,) = torch.autograd.grad(_loss(pieces), [tensor])
        direction = torch.randn(tensor.shape, generator=torch.Generator().manual_seed(1), dtype=tensor.dtype)
        eps = 1e-6
        with torch.no_grad():
            tensor.add_(eps * direction)
            plus = _loss(pieces).item()
            tensor.sub_(2 * eps * direction)
            minus = _loss(pieces).item()
            tensor.add_(eps * direction)
        numeric, analytic = (plus - minus) / (2 * eps), (grad * direction).sum().item()
        assert abs(numeric) > 1e-7
        assert abs(analytic - numeric) <= 1e-6 * abs(numeric) + 1e-10, f"{mode}: {analytic} vs FD {numeric}"
        grads[mode] = grad
    torch.testing.assert_close(grads["recompute"], grads["full"], rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_the_discriminator_term_reaches_the_generator_and_not_the_discriminator():
    """lambda scales a gradient of its own; D's weights get none (D is a constant of the generator's loss)."""
    pieces = _problem("recompute", weight=0.0)
    teacher, curriculum, learner, sgd, objective = pieces
    w = teacher.fc1.v
    (g0,) = torch.autograd.grad(_loss(pieces), [w])
    objective.weight = 1.0
    loss = _loss(pieces)
    (g1,) = torch.autograd.grad(loss, [w], retain_graph=True)
    (g_adv,) = torch.autograd.grad(objective.adversarial(generated_images(teacher, curriculum)), [w])
    torch.testing.assert_close(g1 - g0, g_adv, rtol=1e-8, atol=1e-12)  # the full curriculum: the same images
    loss.backward()
    assert all(p.grad is None for p in objective.discriminator.parameters())


def test_the_discriminator_learns_to_tell_real_from_generated():
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum.no_curriculum(2, 6, K, latent_dim=4)
    split = _split()
    objective = GANObjective(RealBatchLoss(split, 12), teacher, curriculum, split, batch_size=12, d_lr=1e-2,
                             d_steps=1)
    real, fake = split.x[:12], generated_images(teacher, curriculum).detach()
    d = objective.discriminator
    before = discriminator_loss(d(real), d(fake)).item()
    for _ in range(20):
        objective.fit_discriminator(real, fake)
    assert discriminator_loss(d(real), d(fake)).item() < 0.5 * before
    with pytest.raises(ValueError, match="weight must be >= 0"):
        GANObjective(RealBatchLoss(split, 12), teacher, curriculum, split, weight=-1)
    with pytest.raises(ValueError, match="divisible by 4"):
        Discriminator((1, 10, 10))


def test_a_plain_gan_step_moves_only_the_generator_against_d():
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum.no_curriculum(2, 6, K, latent_dim=4)
    split = _split()
    objective = GANObjective(RealBatchLoss(split, 12), teacher, curriculum, split, batch_size=12)
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in teacher.parameters()]
    d_before = [p.detach().clone() for p in objective.discriminator.parameters()]
    logs = gan_step(objective, opt, torch.Generator().manual_seed(0))
    assert set(logs) == {"gan_loss", "d_loss"}
    assert any(not torch.equal(a, b) for a, b in zip(before, teacher.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, objective.discriminator.parameters()))


def _trainer(seed=0):
    torch.manual_seed(seed)
    split = _split(120)
    teacher = Teacher(SHAPE, K, latent_dim=4, hidden=8, channels=3, conv_channels=3)
    curriculum = Curriculum.no_curriculum(2, 6, K, latent_dim=4)
    objective = GANObjective(RealBatchLoss(split, 12), teacher, curriculum, split, batch_size=12, d_lr=1e-3)
    return MetaTrainer(teacher, curriculum, UnrolledSGD(0.05, 0.5), ArchSpace.mlp(SHAPE, K, width_range=(4, 8)),
                       objective, outer=OuterAdam(outer_lr=0.01), seed=seed, progress=False)


def test_a_gtn_gan_run_resumes_exactly(tmp_path):
    """D and its Adam state travel in the trainer's checkpoint: 2 + 2 iterations equal 4 straight."""
    a = _trainer()
    a.fit(2)
    a.save(tmp_path / "ck.pt")
    tail_a = a.fit(2)
    b = _trainer()
    b.load(tmp_path / "ck.pt")
    tail_b = b.fit(2)
    drop = {"seconds"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in tail_a] == \
        [{k: v for k, v in r.items() if k not in drop} for r in tail_b]
    assert {"gan_loss", "d_loss", "d_fake", "meta_acc"} <= set(tail_a[-1])
    for pa, pb in zip(a.objective.discriminator.parameters(), b.objective.discriminator.parameters()):
        assert torch.equal(pa, pb)
    sa, sb = a.objective.d_opt.state_dict()["state"], b.objective.d_opt.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    saved = a.objective.state_dict()  # D and its Adam; the teacher is saved once, by the trainer
    assert {k.split(".")[0] for k in saved} == {"discriminator", "_extra_state"} and "fc1" not in str(list(saved))

"""CartPole GTN (gtn_edu.rl): episodes, the policy-gradient objective and its gradients, seeding, resume."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import torch

from gtn_edu import UnrolledSGD
from gtn_edu.cli import main
from gtn_edu.rl import (
    A2CObjective,
    CartPoleConfig,
    Episodes,
    PairTeacher,
    PolicyLearner,
    PolicySpace,
    build_cartpole,
    one_step_returns,
    play,
    policy_gradient_loss,
    require_gymnasium,
    train_a2c,
)
from gtn_edu.teacher import TensorBatches

TINY = CartPoleConfig.sized("tiny")


def test_play_masks_and_lengths():
    eps = play(lambda o: torch.zeros(len(o), dtype=torch.long), 3, seed=0, max_steps=50)  # always push left
    assert eps.obs.shape[1:] == (3, 4) and eps.actions.shape == eps.alive.shape
    assert torch.equal(eps.lengths, eps.alive.sum(0)) and eps.steps == int(eps.lengths.sum())
    assert (eps.lengths < 20).all()  # pushing one way drops the pole within a few dozen steps
    assert (eps.obs[~eps.alive] == 0).all()  # padding after an episode ends holds zeros
    # alive is a prefix: once an episode ends it stays ended
    assert (eps.alive[1:] <= eps.alive[:-1]).all()
    again = play(lambda o: torch.zeros(len(o), dtype=torch.long), 3, seed=0, max_steps=50)
    assert torch.equal(eps.obs, again.obs)


def test_episode_cap():
    eps = play(lambda o: (o[:, 2] + 0.5 * o[:, 3] > 0).long(), 2, seed=1, max_steps=25)  # a good hand policy
    assert eps.lengths.tolist() == [25, 25] and eps.obs.shape[0] == 25


def test_returns_to_go_by_hand():
    alive = torch.tensor([[1, 1], [1, 0], [1, 0]], dtype=torch.bool)  # lengths 3 and 1
    eps = Episodes(torch.zeros(3, 2, 4), torch.zeros(3, 2, dtype=torch.long), alive, alive.sum(0), 3)
    R = eps.returns_to_go(gamma=0.5)
    assert torch.allclose(R, torch.tensor([[1.75, 1.0], [1.5, 0.0], [1.0, 0.0]]))


def test_policy_gradient_loss_matches_hand_derivation():
    torch.manual_seed(0)
    logits = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    actions, adv = torch.tensor([0, 1, 1, 0, 1, 0]), torch.randn(6, dtype=torch.float64)
    loss = policy_gradient_loss(logits.log_softmax(-1), actions, adv)
    (grad,) = torch.autograd.grad(loss, logits)
    # d/dz_i of -(1/M) A_i log softmax(z_i)[a_i] = -(onehot(a_i) - softmax(z_i)) A_i / M
    hand = -(torch.nn.functional.one_hot(actions, 2) - logits.softmax(-1)) * adv[:, None] / 6
    assert torch.allclose(grad, hand.detach())
    assert torch.autograd.gradcheck(lambda z: policy_gradient_loss(z.log_softmax(-1), actions, adv), (logits,))


def test_advantages_do_not_carry_gradient():
    logits = torch.zeros(2, 2, requires_grad=True)
    adv = torch.ones(2, requires_grad=True)
    policy_gradient_loss(logits.log_softmax(-1), torch.tensor([0, 1]), adv).backward()
    assert adv.grad is None


def _tiny_meta_problem(mode: str):
    """A float64 CartPole meta-problem: teacher -> one SGD step -> surrogate on fixed episodes."""
    torch.manual_seed(1)
    teacher = PairTeacher(latent_dim=3, hidden=(5, 5)).double()
    curriculum = teacher.curriculum(batch_size=8).double()
    learner = PolicyLearner(hidden=6).double()
    sgd = UnrolledSGD(0.3, 0.5, mode=mode).double()
    objective = A2CObjective(num_envs=3, max_steps=12).double()
    episodes = objective.collect(learner, learner.init_state(), torch.Generator().manual_seed(0))
    episodes.obs = episodes.obs.double()
    _, _, adv = objective.advantages(episodes)
    batches = teacher.batches(curriculum)

    def meta_loss(*tensors):
        b = TensorBatches(batches.steps, tensors, batches.make, batches.labels)
        state = sgd.unroll(learner, b)
        return objective.surrogate(learner, state, episodes, adv)

    return meta_loss, tuple(t.detach().clone().requires_grad_() for t in batches.tensors), episodes


@pytest.mark.parametrize("mode", ["full", "recompute"])
def test_one_step_meta_gradient_matches_finite_differences(mode):
    meta_loss, inputs, episodes = _tiny_meta_problem(mode)
    assert episodes.steps > 3
    assert torch.autograd.gradcheck(meta_loss, inputs, eps=1e-6, atol=1e-5)


def test_recompute_equals_full_on_the_policy_gradient():
    grads = []
    for mode in ("full", "recompute"):
        meta_loss, inputs, _ = _tiny_meta_problem(mode)
        grads.append(torch.autograd.grad(meta_loss(*inputs), inputs))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-12)


def test_policy_learner_rejects_class_labels():
    learner = PolicyLearner(8)
    with pytest.raises(ValueError, match="PairTeacher"):
        learner.inner_loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))


def test_pair_teacher_shapes_and_curriculum_check():
    teacher = PairTeacher(latent_dim=4, hidden=(8, 8))
    batches = teacher.batches(teacher.curriculum(batch_size=16, steps=2))
    s, y = batches.batch(1, batches.tensors)
    assert s.shape == (16, 4) and y.shape == (16, 2) and batches.steps == 2
    with pytest.raises(ValueError, match="latent_dim"):
        teacher.batches(PairTeacher(latent_dim=5).curriculum(8))


def _records(cfg, n):
    run = build_cartpole(cfg, progress=False)
    run.trainer.fit(n)
    return run, [{k: v for k, v in r.items() if k != "seconds"} for r in run.trainer.history]


def test_same_seed_same_returns_other_seed_other_returns():
    _, a = _records(TINY, 2)
    _, b = _records(TINY, 2)
    _, c = _records(CartPoleConfig.sized("tiny", seed=1), 2)
    assert a == b
    assert [r["meta_loss"] for r in a] != [r["meta_loss"] for r in c]
    s1 = one_step_returns(*_pieces(), policies=2, episodes=3, seed=0, max_steps=30)
    s2 = one_step_returns(*_pieces(), policies=2, episodes=3, seed=0, max_steps=30)
    assert torch.equal(s1.returns, s2.returns) and s1.returns.shape == (2, 3)


def _pieces():
    torch.manual_seed(0)
    teacher = PairTeacher(latent_dim=4, hidden=(8, 8))
    return teacher, teacher.curriculum(16), UnrolledSGD(0.1, 0.5, mode="full"), PolicySpace((8, 8))


def test_resume_restores_value_network_exactly(tmp_path):
    straight, want = _records(TINY, 4)
    first, _ = _records(TINY, 2)
    first.trainer.save(tmp_path / "c.pt")
    resumed = build_cartpole(TINY, progress=False)
    resumed.trainer.load(tmp_path / "c.pt")
    assert int(resumed.objective.env_steps) == int(first.objective.env_steps) > 0
    resumed.trainer.fit(2)
    got = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed.trainer.history]
    assert got == want
    for p, q in zip(straight.objective.value.parameters(), resumed.objective.value.parameters()):
        assert torch.equal(p, q)
    sa, sb = straight.objective.value_opt.state_dict(), resumed.objective.value_opt.state_dict()
    assert all(torch.equal(sa["state"][k]["exp_avg"], sb["state"][k]["exp_avg"]) for k in sa["state"])


def test_value_network_learns_the_returns():
    obj = A2CObjective(num_envs=4, max_steps=40, value_steps=200, value_lr=0.01)
    eps = play(lambda o: (o[:, 2] > 0).long(), 4, seed=3, max_steps=40)
    obs, returns, _ = obj.advantages(eps)
    before = float((obj.value(obs) - returns).square().mean().detach())
    after = obj.fit_value(obs, returns)
    assert after < 0.2 * before


def test_meta_training_improves_one_step_policies():
    """A short run lifts fresh one-step policies to near the episode cap, far above the untrained teacher's.

    Pooled over three seeds, because one chaotic run is not a property: float results differ
    between CPU models (Intel, AMD) and a meta-trained CartPole run amplifies the difference
    like a change of seed. Measured on an AMD EPYC over seeds 0-19 at these settings: the
    trained score of one seed is 52.6 to 60 (of 60; mean 58.3, sd 2.6), so a three-seed mean
    has sd 1.5 and the bar of 50 sits 5 sd below its mean. The untrained teacher gives 9 to
    52 (mean 32); for these seeds it involves no meta-training, so it barely moves between CPUs.
    With an outer lr of 0.02 (the first version of this test) 5 of 60 runs collapsed to a policy
    that drops the pole at once, and its bar (twice the untrained score) failed on AMD.
    """
    trained, untrained = [], []
    for seed in (0, 1, 2):
        cfg = CartPoleConfig.sized("tiny", seed=seed, outer_steps=40, num_envs=8, max_steps=60, inner_batch=128,
                                   outer_lr=0.01, outer_lr_schedule="constant")
        untrained.append(build_cartpole(cfg, progress=False).score(policies=6, episodes=4).mean)
        run, _ = _records(cfg, cfg.outer_steps)
        trained.append(run.score(policies=6, episodes=4).mean)
    mean_trained, mean_untrained = sum(trained) / 3, sum(untrained) / 3
    assert mean_trained >= 50 and mean_trained >= mean_untrained + 12, (untrained, trained)


def test_a2c_control_spends_its_budget_and_learns():
    """A2C from scratch reaches long episodes within 6000 steps (three seeds pooled).

    Measured on an AMD EPYC, seeds 0-11: the final greedy return is 67 to 100 of 100 (mean
    94), while a fresh policy's greedy return ranges from 10 to 100: some initialisations
    already balance, so a ratio to the first evaluation (this test's first version) failed
    for 4 of 10 seeds. Seeds 0-2 start at 10, 10 and 77 (no training involved, so stable
    across CPUs); the pooled bars sit 5 sd of a three-seed mean below the measured mean.
    """
    first, final = [], []
    for seed in (0, 1, 2):
        recs = train_a2c(6000, num_envs=8, max_steps=100, eval_every=2, progress=False, seed=seed)
        assert recs[0]["env_steps"] == 0 and recs[-1]["env_steps"] >= 6000
        assert [r["env_steps"] for r in recs] == sorted(r["env_steps"] for r in recs)
        first.append(recs[0]["return"])
        final.append(recs[-1]["return"])
    assert sum(final) / 3 >= 60 and sum(final) / 3 >= sum(first) / 3 + 25, (first, final)


def test_missing_gymnasium_names_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # makes `import gymnasium` raise ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[rl\]"'):
        require_gymnasium()
    with pytest.raises(ImportError, match="gymnasium"):
        A2CObjective(num_envs=2)
    assert main(["rl", "--tiny", "--no-figures", "--out", str(tmp_path)]) == 2
    assert '.[rl]' in capsys.readouterr().err


def test_config_checks():
    with pytest.raises(ValueError, match="num_envs"):
        CartPoleConfig(num_envs=0)
    with pytest.raises(ValueError, match="gamma"):
        CartPoleConfig(gamma=1.5)
    with pytest.raises(ValueError, match="size"):
        CartPoleConfig.sized("huge")
    assert CartPoleConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="no field.*stack_learners"):  # unknown keys are refused, as GTNConfig's
        CartPoleConfig.from_dict({**TINY.to_dict(), "stack_learners": True})


def test_cli_tiny_run_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["rl", "--tiny", "--no-figures", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["policies"] == TINY.eval_learners and summary["meta_env_steps"] > 0
    assert summary["a2c_curve"][-1]["env_steps"] >= TINY.a2c_env_steps
    curve = summary["gtn_curve"]  # scored after iteration 1, every eval_every, and at the end
    assert [p["iteration"] for p in curve] == [1, 2, 3] and curve[0]["env_steps"] < curve[-1]["env_steps"]
    assert len((out / "log.jsonl").read_text().splitlines()) == TINY.outer_steps
    assert main(["rl", "--resume", "--no-figures", "--out", str(out)]) == 0  # nothing left to train: rescored
    again = json.loads((out / "summary.json").read_text())
    assert again["final"] == summary["final"]
    assert main(["rl", "--resume", "--seed", "5", "--out", str(out)]) == 2
    assert "settings it was started with" in capsys.readouterr().err
    assert main(["rl", "--resume", str(out), "--no-figures"]) == 0  # the folder after --resume, as for train
    assert json.loads((out / "summary.json").read_text())["final"] == summary["final"]
    assert main(["rl", "--resume", str(out), "--out", str(tmp_path / "other")]) == 2
    assert "name two folders" in capsys.readouterr().err


OLD_NAMES = {"learners": "learners_per_step", "lr_schedule": "outer_lr_schedule", "eval_policies": "eval_learners"}


def _old_style(cfg: CartPoleConfig) -> dict:
    """`cfg.to_dict()` as the code before issue 24's renames wrote it (old keys, in their old places)."""
    new_to_old = {new: old for old, new in OLD_NAMES.items()}
    return {new_to_old.get(k, k): v for k, v in cfg.to_dict().items()}


@pytest.mark.parametrize("old,value", [("learners", 2), ("eval_policies", 3), ("lr_schedule", "constant")])
def test_old_config_names_still_work_with_a_warning(old, value):
    new = OLD_NAMES[old]
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        cfg = CartPoleConfig(**{old: value})
    assert getattr(cfg, new) == value and cfg == CartPoleConfig(**{new: value})
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        sized = CartPoleConfig.sized("tiny", **{old: value})
    assert sized == CartPoleConfig.sized("tiny", **{new: value})
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        assert getattr(sized, old) == value  # reading the old attribute
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        setattr(sized, old, getattr(TINY, new))  # writing it sets the new field
    assert sized == TINY
    for both in (lambda: CartPoleConfig(**{old: value, new: value}),
                 lambda: CartPoleConfig.sized("tiny", **{old: value, new: value}),
                 lambda: CartPoleConfig.from_dict({**TINY.to_dict(), old: value})):
        with pytest.raises(ValueError, match=f"both {old}.*give only {new}"):
            both()
    assert old not in TINY.to_dict() and new in TINY.to_dict()
    with pytest.raises(ValueError, match=new):  # the checks name the new field
        CartPoleConfig(**{new: 0 if isinstance(value, int) else "linear"})


def test_config_dict_of_the_old_names_loads(recwarn):
    old = _old_style(TINY)
    assert {"learners", "lr_schedule", "eval_policies"} <= set(old)
    cfg = CartPoleConfig.from_dict(old)  # a checkpoint's or summary's config from before the renames
    assert cfg == TINY and cfg.to_dict() == TINY.to_dict()
    assert not [w for w in recwarn if w.category is DeprecationWarning]  # a saved file is not the caller's code
    with pytest.raises(ValueError, match="no field.*stack_learners"):
        CartPoleConfig.from_dict({**old, "stack_learners": True})


def test_run_folder_of_the_old_names_resumes(tmp_path):
    """A run folder whose checkpoint holds the config as the old code wrote it continues, and is rewritten."""
    out = tmp_path / "old"
    run, _ = _records(TINY, 2)
    run.trainer.config = _old_style(TINY)  # what the old code stored in checkpoints
    run.trainer.save(out / "checkpoint.pt")
    assert "learners" in torch.load(out / "checkpoint.pt", weights_only=True)["config"]
    fresh = build_cartpole(TINY, progress=False)
    fresh.load(out / "checkpoint.pt")  # the configs compare equal after the old names are mapped
    assert fresh.trainer.iteration == 2
    assert main(["rl", "--resume", str(out), "--no-figures"]) == 0
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["iteration"] == TINY.outer_steps and saved["config"] == TINY.to_dict()  # the new names now
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"] == TINY.to_dict() and summary["final"]["policies"] == TINY.eval_learners


def test_cli_eval_policies_is_a_deprecated_alias(tmp_path, capsys):
    from gtn_edu.rl.cli import _config, add_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["rl", "--tiny", "--out", str(tmp_path), "--eval-policies", "3"])
    args.resume = None
    with pytest.warns(DeprecationWarning, match="--eval-learners"):
        cfg = _config(args)
    assert cfg.eval_learners == 3 and "--eval-policies is deprecated" in capsys.readouterr().err
    args = parser.parse_args(["rl", "--tiny", "--out", str(tmp_path), "--eval-policies", "3", "--eval-learners", "3"])
    args.resume = None
    with pytest.raises(ValueError, match="give only --eval-learners"):
        _config(args)
    assert "--eval-policies" not in parser.format_help() + sub.choices["rl"].format_help()
    assert "--eval-learners" in sub.choices["rl"].format_help()

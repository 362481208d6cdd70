"""Several processes (torch.distributed, gloo on the CPU) and several learners per outer step.

K learners per outer iteration average K meta-gradients; learner j always draws from its
own random streams, so 2 processes x 1 learner must give the update of 1 process x 2
learners, and a distributed run must resume exactly from its checkpoint.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gtn_edu import ArchSpace, Curriculum, MetaTrainer, RealBatchLoss, Teacher, UnrolledSGD
from gtn_edu.data import Split
from gtn_edu.fast.distributed import all_reduce_mean_, learner_streams, rank_and_world

SHAPE, K = (1, 8, 8), 4


def _trainer(learners_per_step: int, seed: int = 3) -> MetaTrainer:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(256) % K
    x = torch.randn(K, *SHAPE, generator=g)[y] + 0.5 * torch.randn(256, *SHAPE, generator=g)
    torch.manual_seed(seed)  # the same teacher and codes in every process
    teacher = Teacher(SHAPE, K, latent_dim=8, hidden=16, channels=4, conv_channels=4)
    return MetaTrainer(teacher, Curriculum.full(2, 8, K, latent_dim=8), UnrolledSGD(0.05, 0.5),
                       ArchSpace.mlp(SHAPE, K, width_range=(8, 32)), RealBatchLoss(Split(x, y), 32), seed=seed,
                       progress=False, learners_per_step=learners_per_step)


def _grads(tr: MetaTrainer) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in tr.params]


def test_k_learners_average_k_single_learner_meta_gradients():
    both = _trainer(2)
    rec = both.outer_step()
    singles, losses = [], []
    for j in (0, 1):
        one = _trainer(1)
        arch, data = learner_streams(3, j)  # learner j's streams, as the 2-learner trainer uses
        one.streams.arch, one.streams.data = [arch], [data]
        losses.append(one.outer_step()["meta_loss"])
        singles.append(_grads(one))
    for g2, a, b in zip(_grads(both), *singles):
        assert torch.allclose(g2, (a + b) / 2, atol=1e-7, rtol=1e-5)
    assert rec["meta_loss"] == pytest.approx(sum(losses) / 2, rel=1e-6)
    assert not all(torch.allclose(a, b) for a, b in zip(*singles))  # two different learners, not one twice


def test_without_a_process_group_nothing_is_reduced():
    assert rank_and_world() == (0, 1)
    t = torch.ones(3)
    all_reduce_mean_([t])
    assert torch.equal(t, torch.ones(3))


def _worker(rank: int, world: int, init_file: str, out: str, steps: int, resume: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        tr = _trainer(1)
        if resume:
            tr.load(f"{out}/ck.pt")
        tr.fit(steps, checkpoint=f"{out}/ck.pt")
        if rank == 0:
            torch.save([p.detach() for p in tr.params], f"{out}/params_{tr.iteration}.pt")
            torch.save(_grads(tr), f"{out}/grads_{tr.iteration}.pt")  # the last step's all-reduced meta-gradient
            with open(f"{out}/history_{tr.iteration}.json", "w") as f:
                json.dump([r["meta_loss"] for r in tr.history], f)
    finally:
        dist.barrier()  # both ranks done before either tears gloo down (else, now and then, SIGABRT at exit)
        dist.destroy_process_group()


def _spawn(tmp_path, name: str, steps: int, resume: bool = False) -> None:
    mp.spawn(_worker, args=(2, str(tmp_path / f"init_{name}"), str(tmp_path), steps, resume), nprocs=2, join=True)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_two_processes_equal_two_learners_and_resume(tmp_path):
    one_process = _trainer(2)
    one_process.outer_step()
    _spawn(tmp_path, "a", 1)  # 2 ranks x 1 learner, one outer step
    for g, h in zip(_grads(one_process), torch.load(tmp_path / "grads_1.pt")):
        assert torch.allclose(g, h, atol=1e-6, rtol=1e-4), (g - h).abs().max()  # the same, to float32 rounding
    losses = json.loads((tmp_path / "history_1.json").read_text())
    assert losses == pytest.approx([r["meta_loss"] for r in one_process.history], rel=1e-6)
    ckpt = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert sorted(ckpt["rng"]["learners"]) == [0, 1]  # rank 0 saved both ranks' streams

    (tmp_path / "ck.pt").unlink()
    _spawn(tmp_path, "b", 2)  # two steps straight ...
    straight = torch.load(tmp_path / "params_2.pt")
    (tmp_path / "ck.pt").unlink()
    _spawn(tmp_path, "c", 1)  # ... against one step, a checkpoint, and a new pair of processes for the second
    _spawn(tmp_path, "d", 1, resume=True)
    for p, q in zip(straight, torch.load(tmp_path / "params_2.pt")):
        assert torch.equal(p, q)


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch built without gloo")
def test_cli_under_torchrun(tmp_path, data_root):
    """`torchrun --nproc_per_node 2 -m gtn_edu train ...`: one summary, rank 0's files, both ranks' streams saved."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "gtn_edu",
           "train", "--dataset", "mnist", "--data-root", str(data_root), "--out", str(out), "--steps", "2",
           "--inner-batch", "20", "--outer-batch", "32", "--outer-steps", "2", "--arch", "mlp", "--latent-dim", "16",
           "--teacher-hidden", "32", "--teacher-channels", "8", "--teacher-conv-channels", "8",
           "--eval-learners", "1", "--no-baseline", "--mode", "full"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done in") == 1 and "on each of 2 processes" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["arms"]["gtn"]["outer_iterations"] == 2
    assert len((out / "gtn_log.jsonl").read_text().splitlines()) == 2
    assert sorted(torch.load(out / "gtn_checkpoint.pt", weights_only=True)["rng"]["learners"]) == [0, 1]


def test_resume_refuses_another_number_of_learners(tmp_path):
    two = _trainer(2)
    two.outer_step()
    two.save(tmp_path / "ck.pt")
    one = _trainer(1)
    with pytest.raises(ValueError, match="learners_per_step"):
        one.load(tmp_path / "ck.pt")
    again = _trainer(2)
    again.load(tmp_path / "ck.pt")
    assert [torch.equal(a.get_state(), b.get_state()) for a, b in zip(again.rngs, two.rngs)] == [True, True]

r"""Meta-training on several processes (GPUs or machines) with `torch.distributed`.

The paper meta-trains with one learner per outer iteration. Averaging the meta-gradient
over K fresh learners lowers its variance, and the K learners are independent until the
average, so they spread over processes: with W ranks and k learners on each,

$$ \nabla_\phi L = \frac{1}{W k} \sum_{r=1}^{W} \sum_{i=1}^{k} \nabla_\phi L_{r,i}, $$

one all-reduce of the meta-gradient before the (identical) Adam step on every rank.

Learner j = r k + i (global index) draws its architecture, its batches and anything its
objective samples from its own random-number streams (`learner_streams`), so a run's
numbers depend on the total K, not on how it is split: 2 ranks x 1 learner compute the
same update as 1 process x 2 learners (`tests/test_distributed.py` checks it).

Launch with `torchrun`; `MetaTrainer` notices an initialised process group by itself:

    torchrun --nproc_per_node 4 my_script.py                 # one machine, 4 GPUs
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 my_script.py

where `my_script.py` calls `init_process_group()` (NCCL on CUDA, gloo on CPU) and puts each
rank on its GPU before building the trainer. `docs/concepts/distributed.md` has the details.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor

from ..seeding import make_rng

__all__ = ["rank_and_world", "is_main", "init_process_group", "learner_streams", "LearnerStreams", "all_reduce_mean_",
           "average_gradients_", "broadcast_", "all_gather_objects"]


def rank_and_world() -> tuple[int, int]:
    """(this process's rank, the number of processes): (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process logs, shows progress and writes checkpoints (rank 0)."""
    return rank_and_world()[0] == 0


def init_process_group(backend: str | None = None) -> torch.device:
    """Join the process group `torchrun` describes (its environment variables); return this rank's device.

    The backend defaults to NCCL when CUDA is available (each rank on GPU `LOCAL_RANK`),
    else gloo on the CPU.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("init_process_group() runs under torchrun, which sets RANK and WORLD_SIZE: launch with "
                           "`torchrun --nproc_per_node N script.py` (or call torch.distributed yourself)")
    cuda = torch.cuda.is_available() and backend != "gloo"
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return device


def learner_streams(seed: int, index: int, device: torch.device | str = "cpu") -> tuple[torch.Generator,
                                                                                          torch.Generator]:
    """The (architecture, data) streams of learner `index` of each outer iteration.

    Learner 0 uses the single-learner streams ("train/arch", "train/data"), so a run with
    one learner per iteration is unchanged; learner j > 0 uses ("train/arch/j", "train/data/j").
    """
    suffix = f"/{index}" if index else ""
    return make_rng(seed, "train/arch" + suffix), make_rng(seed, "train/data" + suffix, device)


class LearnerStreams:
    """The random-number streams of this process's learners of each outer iteration, and their saved state.

    Learner j (global index: rank x `per_process` + i) has an architecture stream on the CPU
    and a data stream on `device` (`learner_streams`). `state_dict` gathers every rank's, so
    a checkpoint holds all of them; `load_state_dict` refuses a checkpoint written with
    another number of learners per iteration.
    """

    def __init__(self, seed: int, per_process: int, device: torch.device | str = "cpu") -> None:
        self.rank, self.world = rank_and_world()
        self.per_process = per_process
        self.indices = [self.rank * per_process + i for i in range(per_process)]
        pairs = [learner_streams(seed, j, device) for j in self.indices]
        self.arch, self.data = [a for a, _ in pairs], [d for _, d in pairs]

    def state_dict(self) -> dict[int, dict[str, Tensor]]:
        """`{j: {"data": state, "arch": state}}` for every learner j of every rank (a collective call)."""
        mine = {j: {"data": d.get_state(), "arch": a.get_state()}
                for j, a, d in zip(self.indices, self.arch, self.data)}
        return {j: st for part in all_gather_objects(mine) for j, st in part.items()}

    def load_state_dict(self, saved: dict) -> None:
        """Set this process's streams from `state_dict()` output; ValueError if the learner count differs."""
        total = self.world * self.per_process
        if sorted(saved) != list(range(total)):
            raise ValueError(f"the checkpoint holds the random streams of {len(saved)} learners per outer iteration, "
                             f"but this run has {total} ({self.world} process(es) x learners_per_step="
                             f"{self.per_process}); resume with the learners_per_step and number of processes "
                             "it was written with")
        for j, arch, data in zip(self.indices, self.arch, self.data):  # generator states are CPU byte tensors
            data.set_state(saved[j]["data"].cpu())
            arch.set_state(saved[j]["arch"].cpu())


def all_reduce_mean_(tensors: list[Tensor]) -> None:
    """Average `tensors` in place over all ranks (one flat all-reduce); nothing without a process group."""
    world = rank_and_world()[1]
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients_(params: list[Tensor]) -> None:
    r"""$\nabla_\phi L \leftarrow \frac1W \sum_r \nabla_\phi L_r$ in place, a missing gradient counting as zeros.

    Every rank then takes the same Adam step. Nothing happens without a process group.
    """
    if rank_and_world()[1] == 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    all_reduce_mean_([p.grad for p in params])


def broadcast_(tensors: list[Tensor], src: int = 0) -> None:
    """Copy rank `src`'s values of `tensors` to every rank (so all ranks start identical)."""
    if rank_and_world()[1] == 1:
        return
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t, src)


def all_gather_objects(obj) -> list:
    """Every rank's `obj` (picklable), in rank order; `[obj]` without a process group."""
    world = rank_and_world()[1]
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out

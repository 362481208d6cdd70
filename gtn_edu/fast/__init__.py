"""Faster and wider execution of the same method, chosen once when a run is built.

`unrolled.py`, `recompute.py`, `teacher.py` and `meta.py` are written to read like the
paper. What only makes the same computation faster, or spreads it over processes, lives
here, each tested equal to the plain path in float64:

* `FusedSGD` (`fused.py`): eq. (1) on one concatenated vector instead of tensor by tensor;
  the library's own arms use it.
* `CompiledSGD`, `compile_steps`, `compile_teacher` (`compiled.py`): the learner's half of every inner step,
  and the teacher's batches, through `torch.compile` (`--compile-step`).
* `StackedSGD`, `StackedLearners`, `BatchesOnce`, `unroll_learners` (`stacked.py`): k
  learners of one outer iteration trained as one (vmapped), and batches they share
  computed once (`--learners-per-step`, `--stack-learners`).
* `distributed.py`: learners spread over processes with `torch.distributed` (`torchrun`).
"""

from .compiled import CompiledSGD, compile_steps, compile_teacher
from .distributed import init_process_group, is_main, learner_streams, rank_and_world
from .fused import FusedSGD
from .stacked import BatchesOnce, StackedBatches, StackedLearners, StackedSGD, unroll_learners

__all__ = ["FusedSGD", "CompiledSGD", "compile_steps", "compile_teacher", "StackedSGD", "StackedLearners",
           "StackedBatches", "BatchesOnce", "unroll_learners", "init_process_group", "is_main", "learner_streams",
           "rank_and_world"]

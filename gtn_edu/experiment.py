"""Build the pieces of a GTN run from a `GTNConfig`, and run one arm: the glue the CLI and tutorials share.

Names are looked up in registries: an arm's kind ("gtn", "real", "distilled") in `ARM_KINDS`
(add one with `register_arm_kind`), `cfg.arch` in `gtn_edu.arch_space.ARCH_SPACES` and
`cfg.curriculum` in `gtn_edu.curriculum.VARIANTS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .arch_space import ARCH_SPACES, HIDDEN_FLOOR, ArchSpace  # noqa: F401 - HIDDEN_FLOOR: its old home
from .augment import RandomCropFlip
from .checkpoint_io import read_checkpoint
from .checks import registrar
from .config import GTNConfig
from .curriculum import Curriculum
from .data import Dataset, load_dataset
from .evaluate import bn_images_for, few_step_accuracy
from .fast import CompiledSGD, FusedSGD, compile_teacher
from .fast.distributed import is_main
from .meta import Callback, MetaTrainer, OuterAdam
from .objective import RealBatchLoss
from .runs import StopOnSignal
from .seeding import seeded
from .teacher import DistilledData, RealData, Teacher
from .unrolled import UnrolledSGD
from .viz import class_images, curriculum_images, save_image_grid

__all__ = ["Arm", "ArmKind", "ARM_KINDS", "register_arm_kind", "build_arch_space", "build_arm", "load_arm", "run_arm",
           "StopWhenOrphaned"]


@dataclass
class Arm:
    """One treatment of an experiment: what trains the learners, and its meta-trainer."""

    name: str
    teacher: torch.nn.Module
    curriculum: Curriculum
    sgd: UnrolledSGD
    arch_space: ArchSpace
    trainer: MetaTrainer


def build_arch_space(cfg: GTNConfig, image_shape: tuple[int, int, int], num_classes: int = 10) -> ArchSpace:
    """The learner space named by `cfg.arch` in `ARCH_SPACES`, widths scaled by `cfg.arch_scale`.

    The built-in spaces are in `gtn_edu.arch_space` ("mnist" keeps at least `HIDDEN_FLOOR`
    hidden FC units); `gtn_edu.arch_space.register_arch_space` adds one.
    """
    if cfg.arch not in ARCH_SPACES:  # a config validates its arch, but a space may have been removed since
        raise ValueError(f"unknown architecture space {cfg.arch!r}; choose one of {', '.join(ARCH_SPACES)}, "
                         "or add one with gtn_edu.arch_space.register_arch_space")
    return ARCH_SPACES[cfg.arch](cfg, image_shape, num_classes)


TeacherMaker = Callable[[GTNConfig, Dataset, type[Teacher], dict], torch.nn.Module]
"""`(cfg, data, generator, generator_kwargs) -> teacher`: how an arm kind makes its teacher."""


@dataclass(frozen=True)
class ArmKind:
    """An arm kind of `ARM_KINDS`: how `build_arm` makes its teacher, and what the arm does with codes.

    Attributes:
        make_teacher: `(cfg, data, generator, generator_kwargs) -> teacher`; `generator` and
            `generator_kwargs` are `build_arm`'s (the GTN arm's teacher class and its options).
        generative: the teacher generates images from the curriculum's codes: the arm's curriculum is
            `cfg.curriculum` (else "none": no learned codes) and `run_arm` draws its image grids.
    """

    make_teacher: TeacherMaker
    generative: bool


ARM_KINDS: dict[str, ArmKind] = {}
"""Arm kind name -> `ArmKind`, in registration order."""


def register_arm_kind(name: str, *, generative: bool) -> Callable[[TeacherMaker], TeacherMaker]:
    """Decorator adding a teacher maker `(cfg, data, generator, generator_kwargs) -> teacher` to `ARM_KINDS`.

    `build_arm(name, cfg, data)` then builds an arm around that teacher, with the same
    curriculum, inner optimiser, learner space, meta-loss and trainer as every other arm.
    The teacher's initialisation draws from torch's global generator, which `build_arm`
    seeds from the config (the stream "init/teacher").
    """
    return registrar(ARM_KINDS, "arm kind", name, "ARM_KINDS", lambda make_teacher: ArmKind(make_teacher, generative))


@register_arm_kind("gtn", generative=True)
def _generator(cfg: GTNConfig, data: Dataset, generator: type[Teacher], generator_kwargs: dict) -> Teacher:
    """The GTN: `generator` (the paper's `Teacher` by default), its outputs kept in the data's range."""
    teacher = generator(data.image_shape, data.num_classes, latent_dim=cfg.latent_dim, hidden=cfg.teacher_hidden,
                        channels=cfg.teacher_channels, conv_channels=cfg.teacher_conv_channels,
                        weight_norm=cfg.weight_norm,
                        output_range=(data.train.x.min().item(), data.train.x.max().item()), **generator_kwargs)
    compile_teacher(teacher, cfg.compile_step)
    return teacher


@register_arm_kind("real", generative=False)
def _real(cfg: GTNConfig, data: Dataset, generator: type[Teacher], generator_kwargs: dict) -> RealData:
    """Real training batches (the baseline, with the same learned lr and momentum)."""
    return RealData(data.train.x, data.train.y)


@register_arm_kind("distilled", generative=False)
def _distilled(cfg: GTNConfig, data: Dataset, generator: type[Teacher], generator_kwargs: dict) -> DistilledData:
    """Dataset distillation: one learned image per synthetic example."""
    return DistilledData(data.image_shape, cfg.inner_steps, cfg.inner_batch, data.num_classes)


def build_arm(kind: str, cfg: GTNConfig, data: Dataset, *, device: torch.device | str = "cpu",
              log_path=None, callbacks: list[Callback] | tuple = (), progress: bool = True,
              generator: type[Teacher] = Teacher, **generator_kwargs) -> Arm:
    """A ready-to-train arm: "gtn" (the generator), "real" (tuned real data), "distilled", or a registered kind.

    Every arm meta-learns the inner lr and momentum, so all are tuned the same way. The
    teacher's and codes' initialisation comes from the stream (cfg.seed, "init/teacher");
    torch's global random state is left as it was. `generator` (with `generator_kwargs`)
    is the GTN arm's teacher class, e.g. `XYTeacher` with `conditional=False`.
    """
    with seeded(cfg.seed, "init/teacher"):
        return _build_arm(kind, cfg, data, device, log_path, callbacks, progress, generator, generator_kwargs)


def _build_arm(kind, cfg, data, device, log_path, callbacks, progress, generator, generator_kwargs) -> Arm:
    if kind not in ARM_KINDS:
        raise ValueError(f"unknown arm {kind!r}; choose one of {', '.join(ARM_KINDS)}, "
                         "or add one with gtn_edu.experiment.register_arm_kind")
    shape, k, arm_kind = data.image_shape, data.num_classes, ARM_KINDS[kind]
    curriculum = Curriculum(cfg.inner_steps, cfg.inner_batch, k, cfg.latent_dim,  # codes first, then the teacher
                            variant=cfg.curriculum if arm_kind.generative else "none")
    teacher = arm_kind.make_teacher(cfg, data, generator, generator_kwargs)
    rule = CompiledSGD if cfg.compile_step else FusedSGD  # eq. (1), compiled or on concatenated vectors
    sgd = rule(cfg.init_lr, cfg.init_momentum, per_step=cfg.inner_steps if cfg.per_step_hyper else None, mode=cfg.mode)
    teacher, curriculum, sgd = teacher.to(device), curriculum.to(device), sgd.to(device)
    arch = build_arch_space(cfg, shape, k)
    # Padding is black, as torchvision's RandomCrop pads before normalising: -mean/std afterwards.
    augment = RandomCropFlip(4, fill=(-data.mean / data.std).tolist()) if cfg.augment else None
    objective = RealBatchLoss(data.train, cfg.outer_batch, augment, cfg.bn_stats)
    outer = OuterAdam(cfg.outer_lr, cfg.hyper_lr, betas=cfg.adam_betas, eps=cfg.adam_eps, grad_clip=cfg.grad_clip,
                      lr_schedule=cfg.outer_lr_schedule, total_steps=cfg.outer_steps)  # step 4: Adam on phi
    trainer = MetaTrainer(teacher, curriculum, sgd, arch, objective, outer=outer, seed=cfg.seed,
                          meta_loss_every=cfg.meta_loss_every, learners_per_step=cfg.learners_per_step,
                          stack_learners=cfg.stack_learners, callbacks=callbacks, log_path=log_path,
                          config=cfg.to_dict(), progress=progress)
    return Arm(kind, teacher, curriculum, sgd, arch, trainer)


def load_arm(kind: str, path: str | os.PathLike, data: Dataset, cfg: GTNConfig | None = None, *,
             device: torch.device | str = "cpu") -> Arm:
    """The arm saved by `MetaTrainer.save` at `path`, rebuilt with `cfg` (None: the config stored there)."""
    if cfg is None:
        cfg = GTNConfig.from_dict(read_checkpoint(path)["config"])
    arm = build_arm(kind, cfg, data, device=device, progress=False)
    arm.trainer.load(path)
    return arm


class StopWhenOrphaned(Callback):
    """In an arm's worker process: stop the run once the CLI process `parent` is gone.

    A terminal's Ctrl-C reaches every process of the group, but `kill PID` of the CLI reaches
    only the CLI: its workers would train on, unseen. After each outer iteration this
    callback checks the worker's parent; when the CLI is gone it raises KeyboardInterrupt,
    so the trainer saves its checkpoint (as on Ctrl-C) and `run_arm` exits the worker.
    A callback, not a signal: a worker started from a background job ignores SIGINT.
    """

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def on_outer_step(self, trainer, record: dict) -> None:
        if os.getppid() != self.parent:
            raise KeyboardInterrupt


def run_arm(kind: str, cfg: GTNConfig, data: Dataset | None, out: str | os.PathLike, *, data_key: str,
            device: str = "cpu", data_root: str | None = None, resume: bool = False, time_limit: float | None = None,
            checkpoint_every: int = 50, threads: int | None = None, position: int | None = None,
            parent: int | None = None) -> dict:
    """Meta-train one arm in `out`, keep its checkpoint (and the GTN's image grids), score it on TEST.

    What `gtn-edu train` runs for each arm, in its own process or in a worker process per arm
    (then `data` is None and the worker loads the dataset from `data_root` itself, and
    `parent`, the CLI's process id, is watched: see `StopWhenOrphaned`). `data_key` is the
    dataset's fingerprint, kept in the checkpoint so a resume on other data is refused;
    `resume` continues from the arm's checkpoint in `out` when there is one. Returns the
    arm's part of `summary.json`.
    """
    out = Path(out)
    if threads is not None:
        torch.set_num_threads(threads)
    if data is None:
        data = load_dataset(cfg.dataset, data_root, download=False, device=device)
    log, ckpt = out / f"{kind}_log.jsonl", out / f"{kind}_checkpoint.pt"
    stop = StopOnSignal()
    watch = [StopWhenOrphaned(parent)] if parent is not None else []
    arm = build_arm(kind, cfg, data, device=device, log_path=log, callbacks=[*watch, stop])
    arm.trainer.run_info = {"arm": kind, "data": data_key}
    if resume and ckpt.exists():
        arm.trainer.load(ckpt)  # refuses another run's checkpoint (config, arm, data), naming the fields
        # The log again holds exactly the checkpoint's iterations (an interrupted run may have logged more).
        if is_main():
            log.write_text("".join(json.dumps(r) + "\n" for r in arm.trainer.history))
    elif is_main():  # a new run, or an arm the interrupted run had not started
        log.unlink(missing_ok=True)
    remaining = max(0, cfg.outer_steps - arm.trainer.iteration)
    try:
        with stop:  # Ctrl-C or kill: stop after the outer iteration in flight, with its checkpoint
            arm.trainer.fit(remaining, desc=f"{kind} arm", time_limit=time_limit, position=position,
                            checkpoint=ckpt, checkpoint_every=checkpoint_every)
    except KeyboardInterrupt:
        if parent is not None and os.getppid() != parent:  # orphaned: the checkpoint is saved, nobody
            os._exit(130)                                   # waits for a result (the pool would block)
        raise
    if not is_main():  # under torchrun: rank 0 scores, draws and reports
        return {}
    hist = arm.trainer.history
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test,
                            n_learners=cfg.eval_learners, seed=cfg.seed,  # its own streams ("eval/...")
                            bn_images=bn_images_for(cfg.bn_stats, data.train))
    if ARM_KINDS[kind].generative:
        save_image_grid(curriculum_images(arm.teacher, arm.curriculum), out / "curriculum.png")
        per_class = min(10, cfg.inner_steps * cfg.inner_batch // cfg.num_classes)
        save_image_grid(class_images(arm.teacher, arm.curriculum, per_class), out / "samples.png", nrow=per_class)
    return {"test_accuracy_mean": res.mean, "test_accuracy_std": res.std, "test_accuracies": res.accuracies,
            "outer_iterations": arm.trainer.iteration, "meta_train_seconds": sum(r["seconds"] for r in hist),
            "torch_threads": torch.get_num_threads(),
            "lr": arm.sgd.lr.detach().cpu().tolist(), "momentum": arm.sgd.momentum.detach().cpu().tolist(),
            "meta_loss": [r["meta_loss"] for r in hist], "summary": str(res)}

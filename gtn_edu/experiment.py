"""Build the pieces of a GTN run from a `GTNConfig`: the glue the CLI and tutorials share."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .arch_space import ArchSpace
from .augment import RandomCropFlip
from .checkpoint_io import read_checkpoint
from .config import GTNConfig
from .curriculum import Curriculum
from .data import Dataset
from .meta import Callback, MetaTrainer
from .objective import RealBatchLoss
from .seeding import derive_seed
from .teacher import DistilledData, RealData, Teacher
from .unrolled import UnrolledSGD

__all__ = ["Arm", "build_arch_space", "build_arm", "load_arm"]


@dataclass
class Arm:
    """One treatment of an experiment: what trains the learners, and its meta-trainer."""

    name: str
    teacher: torch.nn.Module
    curriculum: Curriculum
    sgd: UnrolledSGD
    arch_space: ArchSpace
    trainer: MetaTrainer


HIDDEN_FLOOR = 32
"""Fewest hidden FC units a scaled MNIST learner gets (see `build_arch_space`)."""


def _scale(r: tuple[int, int], s: float) -> tuple[int, int]:
    return max(1, round(r[0] * s)), max(1, round(r[1] * s))


def build_arch_space(cfg: GTNConfig, image_shape: tuple[int, int, int], num_classes: int = 10) -> ArchSpace:
    """The learner space named by `cfg.arch`, widths scaled by `cfg.arch_scale`.

    The hidden FC layer of the MNIST space keeps at least 32 units: 16-unit layers (a
    quarter of appendix A.1's 64) cap what any data can teach in a few steps, and measured
    on GTN data they cost 3 points of accuracy. The floor is cheap next to the convs.
    """
    s, wn = cfg.arch_scale, dict(weight_norm=cfg.weight_norm)
    if cfg.arch == "mnist":
        hidden = tuple(max(HIDDEN_FLOOR, v) for v in _scale((64, 256), s))
        return ArchSpace.mnist(image_shape, num_classes, channel_ranges=(_scale((32, 128), s), _scale((64, 256), s)),
                               hidden_range=hidden, **wn)
    if cfg.arch == "cifar":
        ranges = (_scale((32, 128), s),) + (_scale((64, 256), s),) * 4
        return ArchSpace.cifar(image_shape, num_classes, channel_ranges=ranges, **wn)
    return ArchSpace.mlp(image_shape, num_classes, width_range=_scale((64, 256), s), **wn)


def build_arm(kind: str, cfg: GTNConfig, data: Dataset, *, device: torch.device | str = "cpu",
              log_path=None, callbacks: list[Callback] | tuple = (), progress: bool = True) -> Arm:
    """A ready-to-train arm: "gtn" (the generator), "real" (tuned real data) or "distilled".

    Every arm meta-learns the inner lr and momentum, so all are tuned the same way. The
    teacher's and codes' initialisation comes from the stream (cfg.seed, "init/teacher");
    torch's global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(derive_seed(cfg.seed, "init/teacher"))
        return _build_arm(kind, cfg, data, device, log_path, callbacks, progress)


def _build_arm(kind, cfg, data, device, log_path, callbacks, progress) -> Arm:
    shape, k = data.image_shape, data.num_classes
    curriculum = Curriculum(cfg.inner_steps, cfg.inner_batch, k, cfg.latent_dim,
                            variant=cfg.curriculum if kind == "gtn" else "none")
    if kind == "gtn":
        teacher = Teacher(shape, k, latent_dim=cfg.latent_dim, hidden=cfg.teacher_hidden,
                          channels=cfg.teacher_channels, conv_channels=cfg.teacher_conv_channels,
                          weight_norm=cfg.weight_norm,
                          output_range=(data.train.x.min().item(), data.train.x.max().item()))
        teacher.compile_forward = cfg.compile_step
    elif kind == "real":
        teacher = RealData(data.train.x, data.train.y)
    elif kind == "distilled":
        teacher = DistilledData(shape, cfg.inner_steps, cfg.inner_batch, k)
    else:
        raise ValueError(f"unknown arm {kind!r}; choose gtn, real or distilled")
    sgd = UnrolledSGD(cfg.init_lr, cfg.init_momentum, steps=cfg.inner_steps if cfg.per_step_hyper else None,
                      mode=cfg.mode, compile_step=cfg.compile_step)
    teacher, curriculum, sgd = teacher.to(device), curriculum.to(device), sgd.to(device)
    arch = build_arch_space(cfg, shape, k)
    # Padding is black, as torchvision's RandomCrop pads before normalising: -mean/std afterwards.
    augment = RandomCropFlip(4, fill=(-data.mean / data.std).tolist()) if cfg.augment else None
    objective = RealBatchLoss(data.train, cfg.outer_batch, augment, cfg.bn_stats)
    trainer = MetaTrainer(teacher, curriculum, sgd, arch, objective,
                          outer_lr=cfg.outer_lr, hyper_lr=cfg.hyper_lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                          meta_loss_every=cfg.meta_loss_every, grad_clip=cfg.grad_clip,
                          lr_schedule=cfg.outer_lr_schedule, total_steps=cfg.outer_steps, seed=cfg.seed,
                          log_path=log_path, callbacks=callbacks, config=cfg.to_dict(), progress=progress,
                          learners_per_step=cfg.learners_per_step, stack_learners=cfg.stack_learners)
    return Arm(kind, teacher, curriculum, sgd, arch, trainer)


def load_arm(kind: str, path: str | os.PathLike, data: Dataset, cfg: GTNConfig | None = None, *,
             device: torch.device | str = "cpu") -> Arm:
    """The arm saved by `MetaTrainer.save` at `path`, rebuilt with `cfg` (None: the config stored there)."""
    if cfg is None:
        cfg = GTNConfig.from_dict(read_checkpoint(path)["config"])
    arm = build_arm(kind, cfg, data, device=device, progress=False)
    arm.trainer.load(path)
    return arm

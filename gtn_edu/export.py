r"""GTN data as a plain file: the batches a trained teacher teaches, and the schedule to train on them.

What a GTN hands a fresh learner is T batches $(x_t, y_t)$ and, for each step, the learned
$\alpha_t$ and $\beta_t$ of eq. (1). `export_arm` takes them out of a trained arm;
`save_synthetic` writes them as one numpy `.npz` file that loads without running code
(`numpy.load(path, allow_pickle=False)`), with these arrays:

    x          (T, B, C, H, W)  the images of step t (normalised like the real data)
    y          (T, B)           their labels, or (T, B, K) learned soft targets
    lr         (T,)             alpha_t
    momentum   (T,)             beta_t
    meta       ()               a JSON string: dataset, image shape, normalisation, T, B,
                                commit, and the few-step accuracy this data gives

A plain training loop trains on it with `torch.optim.SGD(momentum=...)`, setting each
step's lr and momentum (`docs/scripts/train_on_gtn_data.py` does, importing nothing from
gtn_edu). `load_synthetic` reads it back as a `SyntheticData`, which gives a
`torch.utils.data.Dataset`, and a teacher, curriculum and optimiser that
`few_step_accuracy`, the NAS evaluations and the tutorials accept.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .curriculum import Curriculum
from .teacher import BaseTeacher, TensorBatches
from .unrolled import UnrolledSGD

__all__ = ["SyntheticData", "SyntheticDataset", "SyntheticTeacher", "ScheduledSGD", "export_arm", "export_run",
           "save_synthetic", "load_synthetic", "shipped", "FORMAT"]

FORMAT = "gtn_edu.synthetic/1"  # the `format` field of an exported file's metadata


class SyntheticTeacher(BaseTeacher):
    """A teacher that hands out stored batches: step t is `x[t]` with `y[t]`; nothing is learned."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        super().__init__()
        self.register_buffer("x", x)
        self.register_buffer("y", y)

    def batches(self, curriculum: Curriculum | None = None, rng: torch.Generator | None = None) -> TensorBatches:
        """The stored T batches (a curriculum, if given, must have the same T and B)."""
        T, B = self.x.shape[:2]
        if curriculum is not None and (curriculum.steps, curriculum.batch_size) != (T, B):
            raise ValueError(f"this data holds T={T} batches of B={B}; the curriculum asks for "
                             f"T={curriculum.steps}, B={curriculum.batch_size}")
        if self.y.dim() == 2:  # class labels
            return TensorBatches(T, (), lambda t, _: self.x[t], self.y, source=self)
        labels = self.y.argmax(-1)  # learned soft targets: the batch carries them
        return TensorBatches(T, (), lambda t, _: (self.x[t], self.y[t]), labels, source=self)


class SyntheticDataset(torch.utils.data.Dataset):
    """The T x B examples as a map-style dataset of `(x, y, t)`: image, label (or soft target), step."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y, self.batch = x, y, x.shape[1]

    def __len__(self) -> int:
        return self.x.shape[0] * self.batch

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} examples")
        t, j = divmod(i % len(self), self.batch)
        return self.x[t, j], self.y[t, j], t


@dataclass
class SyntheticData:
    """Exported GTN data: T batches, their lr and momentum schedule, and what they were measured to teach.

    Attributes:
        x: (T, B, C, H, W) images.
        y: (T, B) labels, or (T, B, K) soft targets.
        lr: (T,) the learned $\\alpha_t$.
        momentum: (T,) the learned $\\beta_t$.
        meta: the metadata record (see the module docstring).
    """

    x: Tensor
    y: Tensor
    lr: Tensor
    momentum: Tensor
    meta: dict = field(default_factory=dict)

    steps = property(lambda self: self.x.shape[0], doc="T, the number of batches.")
    batch_size = property(lambda self: self.x.shape[1], doc="B, the examples of a batch.")

    def dataset(self) -> SyntheticDataset:
        """The examples as a `torch.utils.data.Dataset` (in step order: index t * B + j)."""
        return SyntheticDataset(self.x, self.y)

    def teacher(self) -> SyntheticTeacher:
        """A teacher handing out the stored batches."""
        return SyntheticTeacher(self.x, self.y)

    def curriculum(self, num_classes: int | None = None) -> Curriculum:
        """A curriculum with this data's T and B (the teacher uses no codes)."""
        k = num_classes or int(self.meta.get("num_classes", 10))
        return Curriculum(self.steps, self.batch_size, k, latent_dim=1, variant="none")

    def sgd(self, mode: str = "checkpoint") -> ScheduledSGD:
        """The inner optimiser with this data's per-step lr and momentum (fixed, not learnable)."""
        return ScheduledSGD(self.lr, self.momentum, mode=mode)


class ScheduledSGD(UnrolledSGD):
    r"""Eq. (1) on a stored schedule: step t uses exactly the stored $\alpha_t$ and $\beta_t$ (nothing learned)."""

    def __init__(self, lr: Tensor, momentum: Tensor, *, mode: str = "checkpoint") -> None:
        super().__init__(steps=len(lr), mode=mode, learn=False)
        self.register_buffer("lr_t", lr.float().clone())
        self.register_buffer("momentum_t", momentum.float().clone())
        self.raw_lr.copy_(self.lr_t.log())  # so `lr` and `momentum` report the schedule (to rounding)
        self.raw_momentum.copy_(self.momentum_t.logit())

    def hyper(self, t: int) -> tuple[Tensor, Tensor]:
        return self.lr_t[t], self.momentum_t[t]


@torch.no_grad()
def export_arm(teacher: BaseTeacher, curriculum: Curriculum, sgd: UnrolledSGD, *, meta: dict | None = None,
               rng: torch.Generator | None = None) -> SyntheticData:
    """The T batches `teacher` makes from `curriculum` and `sgd`'s lr and momentum at each step.

    With the `full` curriculum (fixed codes) these are exactly the batches every learner
    trained on; with a shuffling curriculum they are one draw (from `rng`).
    """
    batches = teacher.batches(curriculum, rng)
    xs, ys = zip(*(batches.batch(t, batches.tensors) for t in range(batches.steps)))
    T = batches.steps
    lr, momentum = (v.detach().float().cpu().expand(T).clone() for v in (sgd.lr, sgd.momentum))  # shared: T copies
    return SyntheticData(torch.stack(xs).float().cpu(), torch.stack(ys).cpu(), lr, momentum,
                         {"format": FORMAT, "steps": T, "batch_size": xs[0].shape[0], **(meta or {})})


def save_synthetic(data: SyntheticData, path: str | os.PathLike, *, float16: bool = False) -> Path:
    """Write `data` to an `.npz` file (images in float16 with `float16`, about half the size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = data.x.numpy().astype(np.float16 if float16 else np.float32)
    meta = {**data.meta, "dtype": str(x.dtype)}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:  # then renamed: an interrupted write leaves no half file under `path`
        np.savez_compressed(f, x=x, y=data.y.numpy(), lr=data.lr.numpy(), momentum=data.momentum.numpy(),
                            meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)
    return path


def load_synthetic(path: str | os.PathLike) -> SyntheticData:
    """Read a file written by `save_synthetic` (no code runs: `allow_pickle=False`)."""
    with np.load(path, allow_pickle=False) as f:
        missing = {"x", "y", "lr", "momentum", "meta"} - set(f.files)
        if missing:
            raise ValueError(f"{path} is not GTN data exported by gtn_edu: it lacks {sorted(missing)}")
        meta = json.loads(str(f["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: format {meta.get('format')!r}, this gtn_edu reads {FORMAT!r}")
        y = torch.from_numpy(f["y"])
        return SyntheticData(torch.from_numpy(f["x"].astype(np.float32)), y if y.is_floating_point() else y.long(),
                             torch.from_numpy(f["lr"]), torch.from_numpy(f["momentum"]), meta)


SHIPPED = Path(__file__).parent / "synthetic"
"""Where the package keeps the GTN data of its quick runs (`shipped`)."""


def shipped(name: str) -> SyntheticData:
    """GTN data that ships with the package: "cifar10" (the CIFAR-10 quick run) or "mnist" (MNIST quick).

    Exported from a `gtn-edu train --dataset NAME --quick` run at seed 0 with `--float16`;
    its metadata says which commit made it and what it teaches (`meta["few_step_accuracy"]`).
    """
    path = SHIPPED / f"{name}_quick.npz"
    if not path.exists():
        have = sorted(p.stem.removesuffix("_quick") for p in SHIPPED.glob("*_quick.npz"))
        raise ValueError(f"no shipped GTN data for {name!r}; the package has {have}")
    return load_synthetic(path)


def git_commit(folder: str | os.PathLike | None = None) -> str:
    """The checkout's short commit (with "+dirty" for uncommitted changes), or "unknown" outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(folder or Path(__file__).parent), capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--", ".") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def export_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, data_root: str | None = None,
               float16: bool = False) -> tuple[Path, dict]:
    """Export the GTN arm of a `gtn-edu train` run folder; returns (the `.npz` path, its metadata).

    Writes `out` (default `RUN_DIR/gtn_data.npz`) and a PNG grid beside it (row t: the first
    images of step t). The metadata records the few-step TEST accuracy that fresh learners
    reach on the *exported file* (the run's own `eval_learners`, seed and BatchNorm setting,
    the learners of the run's architecture space), so a reader knows what the file teaches.
    """
    from .config import GTNConfig
    from .data import load_dataset
    from .evaluate import bn_images_for, few_step_accuracy
    from .experiment import load_arm
    from .runs import read_manifest
    from .viz import save_image_grid

    run_dir = Path(run_dir)
    ckpt, missing = run_dir / "gtn_checkpoint.pt", [f for f in ("gtn_checkpoint.pt", "run.json")
                                                    if not (run_dir / f).exists()]
    if missing:
        raise FileNotFoundError(f"{run_dir} holds no {' and no '.join(missing)}: export the folder of a `gtn-edu "
                                "train` run that trained the GTN arm")
    cfg = GTNConfig.from_dict(read_manifest(run_dir)["config"])
    data = load_dataset(cfg.dataset, data_root, download=False)
    arm = load_arm("gtn", ckpt, data, cfg)
    meta = {"dataset": cfg.dataset, "image_shape": list(data.image_shape), "num_classes": data.num_classes,
            "normalisation": {"mean": data.mean.flatten().tolist(), "std": data.std.flatten().tolist()},
            "run": run_dir.name, "outer_iterations": arm.trainer.iteration, "commit": git_commit(),
            "curriculum": cfg.curriculum}
    exported = export_arm(arm.teacher, arm.curriculum, arm.sgd, meta=meta)
    if float16:  # measure what the stored (rounded) images teach
        exported.x = exported.x.half().float()
    res = few_step_accuracy(exported.teacher(), exported.curriculum(data.num_classes), exported.sgd(),
                            arm.arch_space, data.test, n_learners=cfg.eval_learners, seed=cfg.seed,
                            bn_images=bn_images_for(cfg.bn_stats, data.train))
    exported.meta["few_step_accuracy"] = {
        "mean": res.mean, "std": res.std, "accuracies": res.accuracies, "split": "test",
        "learners": f"{cfg.eval_learners} fresh learners of the run's space (arch={cfg.arch}, "
                    f"arch_scale={cfg.arch_scale}), gtn_edu.few_step_accuracy(seed={cfg.seed})",
        "bn_stats": cfg.bn_stats}
    path = save_synthetic(exported, out or run_dir / "gtn_data.npz", float16=float16)
    per_step = min(10, exported.batch_size)
    images = exported.x[:, :per_step].flatten(0, 1)
    save_image_grid((images - images.min()) / (images.max() - images.min()).clamp_min(1e-12),
                    path.with_suffix(".png"), nrow=per_step)
    return path, exported.meta

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
                                commit, the few-step accuracy this data gives, and (when the
                                run had one) the real-data control's tuned lr and momentum

A plain training loop trains on it with `torch.optim.SGD(momentum=...)`, setting each
step's lr and momentum (`docs/scripts/train_on_gtn_data.py` does, importing nothing from
gtn_edu). The read side (`load_synthetic`, `SyntheticData`, `shipped`) lives in
`gtn_edu.gtn_data` and is importable from here too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import torch

from .curriculum import Curriculum
from .gtn_data import (
    FORMAT,
    SHIPPED,
    ScheduledSGD,
    SyntheticData,
    SyntheticDataset,
    SyntheticTeacher,
    load_synthetic,
    shipped,
)
from .teacher import BaseTeacher
from .unrolled import UnrolledSGD

__all__ = ["export_arm", "export_run", "save_synthetic", "git_commit",
           # read side, in gtn_edu.gtn_data (importable from here too)
           "SyntheticData", "SyntheticDataset", "SyntheticTeacher", "ScheduledSGD", "load_synthetic", "shipped",
           "FORMAT", "SHIPPED"]


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
    if (run_dir / "real_checkpoint.pt").exists():  # the control's tuned schedule, for a real-data judge
        real = load_arm("real", run_dir / "real_checkpoint.pt", data, cfg).sgd
        T = exported.steps
        exported.meta["real_data_schedule"] = {"lr": real.lr.detach().expand(T).tolist(),
                                               "momentum": real.momentum.detach().expand(T).tolist()}
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

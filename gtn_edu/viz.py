"""Figures: the teacher's images as grids (per inner step, or per class), and learning curves.

Image grids need only torchvision; curves need matplotlib (`pip install "gtn-edu[plot]"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["curriculum_images", "class_images", "save_image_grid", "plot_curves"]


@torch.no_grad()
def curriculum_images(teacher, curriculum, per_step: int = 10) -> Tensor:
    """The first `per_step` images of every inner batch: (T * per_step, C, H, W), in [0, 1].

    Row t of the grid made from this is what the learner sees at inner step t.
    """
    batches = teacher.batches(curriculum)
    rows = [batches.batch(t, batches.tensors)[0][:per_step] for t in range(batches.steps)]
    return _to_unit(torch.cat(rows))


@torch.no_grad()
def class_images(teacher, curriculum, per_class: int = 10) -> Tensor:
    """`per_class` images of every class, class 0 first: (K * per_class, C, H, W), in [0, 1].

    Saved with `nrow=per_class`, row k of the grid shows what the teacher makes of class k
    (Figure 3b: a GTN "cat"), taken in curriculum order (earliest inner steps first).
    Raises ValueError when the curriculum holds fewer than `per_class` images of a class.
    """
    batches = teacher.batches(curriculum)
    xs, ys = zip(*(batches.batch(t, batches.tensors) for t in range(batches.steps)))
    x, y = torch.cat(xs), torch.cat(ys)
    if y.dim() > 1:  # learned soft targets: the class is the most likely one
        y = y.argmax(1)
    rows = []
    for k in range(curriculum.num_classes):
        idx = (y == k).nonzero().flatten()[:per_class]
        if len(idx) < per_class:
            raise ValueError(f"the curriculum holds {len(idx)} images of class {k}, fewer than per_class={per_class}; "
                             "ask for fewer")
        rows.append(x[idx])
    return _to_unit(torch.cat(rows))


def _to_unit(x: Tensor) -> Tensor:
    """Each image stretched to [0, 1] on its own (colours keep their balance within an image)."""
    lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - lo) / (hi - lo).clamp_min(1e-8)


def save_image_grid(images: Tensor, path: str | Path, nrow: int = 10) -> Path:
    """Save a (N, C, H, W) batch in [0, 1] as a PNG grid with `nrow` images per row."""
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images.detach().float().cpu(), path, nrow=nrow, padding=1, pad_value=1.0)
    return path


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('plots need matplotlib: pip install "gtn-edu[plot]"') from err
    return plt


def plot_curves(curves: dict[str, Sequence[float]], path: str | Path, *, xlabel: str = "outer iteration",
                ylabel: str = "meta-loss", title: str = "", smooth: int = 1, logy: bool = False) -> Path:
    """Plot named curves (optionally a running mean over `smooth` points) into a PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for name, ys in curves.items():
        ys = torch.as_tensor(list(ys), dtype=torch.float64)
        if smooth > 1 and len(ys) >= smooth:
            ys = torch.nn.functional.avg_pool1d(ys.view(1, 1, -1), smooth, stride=1).flatten()
            xs = torch.arange(len(ys)) + smooth - 1
        else:
            xs = torch.arange(len(ys))
        ax.plot(xs.numpy(), ys.numpy(), label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

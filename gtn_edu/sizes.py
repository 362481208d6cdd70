"""Run sizes of the image tasks: `tiny` (seconds: tests, CI), `quick` (a 2-core CPU, minutes), `paper` (a GPU).

`GTNConfig.sized(size, dataset)` (or `sized` here) is the one call that picks a size: the
paper's table for the dataset (`config_for`), with the size's changes on top. Which table and
changes is the dataset's `DatasetSpec.table`, a key of `TABLES`. The tutorials use it;
`gtn-edu train --quick` applies `quick`. `device_for(size)` says where a size runs.

Each size's inner batch is a multiple of the dataset's class count (labels are balanced):
the table's, rounded to the nearest multiple. The built-in datasets have ten classes, and
every size's batch is already one (Table 2's 128 is 130 for this reason).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from .checks import registered

if TYPE_CHECKING:
    from .config import GTNConfig

__all__ = ["SIZES", "QUICK_CHANGES", "CIFAR_QUICK_CHANGES", "TINY_CHANGES", "CIFAR_TINY_CHANGES", "TABLES", "quick",
           "sized", "device_for"]

SIZES = ("tiny", "quick", "paper")
"""The run sizes, smallest first."""

QUICK_CHANGES = dict(
    inner_steps=4, inner_batch=70, outer_batch=200, outer_steps=400, outer_lr=0.03, init_lr=0.1, per_step_hyper=True,
    teacher_hidden=256, teacher_channels=32, teacher_conv_channels=32, meta_loss_every=0, arch_scale=0.25,
    mode="full", eval_learners=10, outer_lr_schedule="cosine")
"""What `--quick` changes from Table 2 (MNIST, Fashion-MNIST), so a 2-core CPU finishes in under 10 minutes.

T=4 steps of batch 70 (Table 2: 32 of 128), a generator with a 256-unit FC layer and
32-channel maps, learners with a quarter of appendix A.1's conv widths, per-step lr and
momentum, 400 outer iterations with Adam's learning rate 0.03 (Table 2: 0.01) annealed
along a cosine. Why (2 cores, test accuracy of 10 fresh learners, CHANGELOG.md, session 8):
at T=16 an outer iteration cost 3.2 s, 200 of them took 11 minutes and left the GTN level
with tuned real data (mean of 3 seeds: 93.06% against 93.07%); T=8 (2 s an iteration, 200
iterations) won on one seed of three and lost on two. With 4 steps an iteration costs
about 1 s, and the few-step regime, where the paper finds a GTN most useful, separates
the two: GTN 89.3 to 90.6% against tuned real data's 81.1 to 81.7% on three seeds (every one
of the 30 learners scored higher on GTN data), the whole command in 7 minutes.
"""

CIFAR_QUICK_CHANGES = dict(
    inner_steps=8, inner_batch=50, outer_batch=200, outer_steps=400, outer_lr=0.01, hyper_lr=0.03,
    adam_betas=(0.9, 0.999), adam_eps=1e-8, init_lr=0.2, per_step_hyper=True, teacher_hidden=256,
    teacher_channels=32, teacher_conv_channels=32, meta_loss_every=0, arch="mnist", arch_scale=0.25,
    bn_stats="real", mode="full", eval_learners=10, outer_lr_schedule="cosine")
"""What `--quick` changes from Table 3 (CIFAR-10), so a 2-core CPU finishes within 20 minutes.

T=8 steps of batch 50 (Table 3: 128 of 128) with the MNIST quick generator, 400 outer
iterations. Three changes made the GTN beat tuned real data at this size (measured on the
validation split, CHANGELOG.md "Session 11"; both arms get each of them):

* learners: appendix A.1's conv-pool family (two convs, each max-pooled, a hidden FC
  layer) at a quarter of its widths, on 32x32x3 images. Appendix A.2's learners (five
  convs, global average pooling) at an eighth or a quarter of their widths learn too
  little in 8 steps from any data (about 21% on real data) for a teacher to matter;
* BatchNorm statistics of real images when scoring (`bn_stats="real"`), instead of the
  last synthetic batch's, which real images do not match;
* Adam at lr 0.01 with betas (0.9, 0.999) (Table 3: 0.002, (0.9, 0.9); with 0.002 the
  generator's weights move about 0.25 in 250 iterations), and the inner lr and momentum
  at their own Adam rate 0.03 (`hyper_lr`; with the outer rate they stayed where they
  started), annealed along a cosine.

The inner lr starts at 0.2 (8 steps of real data trained these learners best at 0.1 to
0.3) and is learned from there.
"""

TINY_CHANGES = dict(
    inner_steps=4, inner_batch=20, outer_batch=32, outer_steps=3, init_lr=0.1, per_step_hyper=True, latent_dim=16,
    teacher_hidden=32, teacher_channels=8, teacher_conv_channels=8, arch_scale=0.125, mode="full", eval_learners=2)
"""What the `tiny` size changes from Table 2: 3 outer iterations of a small teacher, enough to run every line."""

CIFAR_TINY_CHANGES = {**TINY_CHANGES, "arch": "mnist", "arch_scale": 0.0625, "bn_stats": "real"}
"""`tiny` for CIFAR-10: the quick size's learner family at a sixteenth of its widths."""

TABLES = {"mnist": {"quick": QUICK_CHANGES, "tiny": TINY_CHANGES},
          "cifar10": {"quick": CIFAR_QUICK_CHANGES, "tiny": CIFAR_TINY_CHANGES}}
"""What each CPU size changes in each paper table; a dataset names its table (`DatasetSpec.table`).

"mnist" is Table 2 (`MNISTConfig`: MNIST, Fashion-MNIST), "cifar10" Table 3 (`CIFARConfig`:
CIFAR-10); `gtn_edu.config.PAPER_TABLES` holds their configs. The paper size changes nothing.
"""


def _changes(size: str, dataset: str, inner_batch: int) -> dict:
    """What `size` changes in a config of `dataset`'s table whose inner batch is `inner_batch`, balanced."""
    from .datasets import DATASETS

    spec = DATASETS[dataset]
    changes, k = TABLES[spec.table].get(size, {}), spec.num_classes
    return {**changes, "inner_batch": max(1, round(changes.get("inner_batch", inner_batch) / k)) * k}


def quick(cfg: GTNConfig) -> GTNConfig:
    """The CPU-sized variant of `cfg`: `QUICK_CHANGES` (MNIST, Fashion-MNIST) or
    `CIFAR_QUICK_CHANGES` (CIFAR-10, which also changes the learner space, Adam's settings
    and the BatchNorm statistics of scoring) applied to it, as the dataset's table says; the
    rest of `cfg` (dataset, augmentation, ...) stays."""
    return replace(cfg, **_changes("quick", cfg.dataset, cfg.inner_batch))


def sized(size: str, dataset: str = "mnist", **changes) -> GTNConfig:
    """The config of `size` ("tiny", "quick" or "paper") for `dataset`, with `changes` on top.

    "paper" is the paper's table of the dataset's `DatasetSpec.table` (Table 2 for MNIST and
    Fashion-MNIST, Table 3 for CIFAR-10), "quick" is `quick` of it, "tiny" applies
    `TINY_CHANGES` (`CIFAR_TINY_CHANGES`). `changes` are applied as given.
    """
    from .config import PAPER_TABLES
    from .datasets import DATASETS

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {list(SIZES)}")
    registered("dataset", dataset, DATASETS, "gtn_edu.datasets.register_dataset")
    table = PAPER_TABLES[DATASETS[dataset].table]()
    return replace(table, **{"dataset": dataset, **_changes(size, dataset, table.inner_batch), **changes})


def device_for(size: str) -> str:
    """"cpu" for tiny and quick; "cuda" for paper, which needs a GPU (RuntimeError naming the fix if none)."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {list(SIZES)}")
    if size != "paper":
        return "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError("the paper size needs a GPU (CUDA is not available); use the quick size on a CPU")
    return "cuda"

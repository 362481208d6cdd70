"""Datasets as normalised tensors, split the way the paper splits them.

MNIST and Fashion-MNIST: the 60k training images are split uniformly into 50k train
and 10k validation; results are reported on the 10k test set. CIFAR-10: 45k / 5k / 10k.
Every split is normalised with the training split's per-channel mean and standard
deviation (mean 0, variance 1; the paper found this "particularly important").

The data root comes from the `root` argument (the CLI's `--data-root`), else the
environment variable `GTN_EDU_DATA`, else `~/.cache/gtn_edu`. Files are found in
torchvision's layout and downloaded by torchvision where the network allows. The files are
verified before use (known digests, as many labels as images, pickles that run no code): see
`gtn_edu.data_files`. What a dataset is (its classes, loader, split sizes and paper table) is
its `DatasetSpec` in `gtn_edu.datasets`, where `register_dataset` adds one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .data_files import ENV_VAR, DataFileError, DataNotFoundError
from .datasets import CLASS_NAMES, DATASETS

__all__ = ["Split", "Dataset", "load_dataset", "data_root", "fingerprint", "DataNotFoundError", "DataFileError",
           "DATASETS", "CLASS_NAMES", "ENV_VAR"]


@dataclass
class Split:
    """One split as tensors: x (N, C, H, W) float, normalised; y (N,) int64."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        """The split on another device."""
        return Split(self.x.to(device), self.y.to(device))

    def sample(self, batch_size: int, rng: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """A uniformly random batch (with replacement across calls), on the split's device."""
        dev = rng.device if rng is not None else self.x.device
        idx = torch.randint(len(self.y), (batch_size,), generator=rng, device=dev).to(self.x.device)
        return self.x[idx], self.y[idx]


@dataclass
class Dataset:
    """Train, validation and test splits with their metadata.

    Attributes:
        name: dataset name.
        train: split used for the inner loop of baselines and the meta-loss.
        val: held-out part of the official training set (for tuning).
        test: the official test set (for reporting).
        mean: per-channel mean used for normalisation.
        std: per-channel standard deviation used for normalisation.
        key: a fingerprint of the images and labels as read from the files and of the split
            (`load_dataset` sets it; a run folder records it, so a resume on other files is
            refused). Not of the normalised floats: their last bits vary with the thread count.
    """

    name: str
    train: Split
    val: Split
    test: Split
    mean: Tensor
    std: Tensor
    key: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return int(self.train.y.max()) + 1

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in label order (`classes[y]` names label y)."""
        return CLASS_NAMES[self.name]

    def to(self, device: torch.device | str) -> Dataset:
        """All splits on another device."""
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                       self.mean, self.std, self.key)

    def denormalise(self, x: Tensor) -> Tensor:
        """Undo the normalisation (for showing real images)."""
        shape = (1, -1, 1, 1)
        return x * self.std.to(x).view(shape) + self.mean.to(x).view(shape)


def fingerprint(*items: torch.nn.Module | Tensor | Split) -> str:
    """A short SHA-256 (16 hex digits) of modules' state dicts, tensors and splits, bytes and all.

    A module is named by its class, or by the `fingerprint_name` its class itself sets when
    it computes the same function as another (`gtn_edu.fast.FusedSGD` is `UnrolledSGD` run
    faster), so a speed path keeps the plain one's cache keys; a subclass is named anew.
    """
    h = hashlib.sha256()
    for item in items:
        named = {"x": item.x, "y": item.y} if isinstance(item, Split) else (
            {"": item} if isinstance(item, Tensor) else item.state_dict())
        h.update(vars(type(item)).get("fingerprint_name", type(item).__name__).encode())
        for key, t in sorted(named.items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.flatten().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: the argument, else $GTN_EDU_DATA, else ~/.cache/gtn_edu."""
    if root is None:
        root = os.environ.get(ENV_VAR) or Path.home() / ".cache" / "gtn_edu"
    return Path(root).expanduser()


def load_dataset(name: str, root: str | os.PathLike | None = None, *, download: bool = True,
                 val_size: int | None = None, seed: int = 0, device: torch.device | str = "cpu") -> Dataset:
    """Load a dataset as normalised tensors, split into train / validation / test.

    Args:
        name: "mnist", "fashion-mnist" or "cifar10" (or a name added with
            `gtn_edu.datasets.register_dataset`).
        root: data root (default: $GTN_EDU_DATA, else ~/.cache/gtn_edu).
        download: let the loader download missing files (torchvision, for the built-in datasets).
        val_size: images held out of the training set (default: the spec's `val_size`; paper:
            10k MNIST, 5k CIFAR-10).
        seed: seed of the uniform train/validation split.
        device: where to keep the tensors (the whole set fits on any GPU).

    Returns:
        A `Dataset`.

    Raises:
        DataNotFoundError: the files are missing and cannot be downloaded; the message says
            which files to put where.
        DataFileError: a file is present but corrupt, altered (its md5 differs from the published
            one; `GTN_EDU_SKIP_DIGESTS=1` accepts it) or paired with the wrong file; the message names it.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(DATASETS)}; to add one, register it with "
                         "gtn_edu.datasets.register_dataset")
    spec = DATASETS[name]
    root = data_root(root)
    x_tr, y_tr, x_te, y_te = spec.check_loaded(spec.load(root, download))
    val_size = spec.val_size if val_size is None else val_size
    if val_size == spec.val_size and len(y_tr) < spec.full_train:  # a partial copy: keep the ratio
        val_size = round(len(y_tr) * spec.val_size / spec.full_train)
    if not 0 <= val_size < len(y_tr):
        raise ValueError(f"val_size must be in [0, {len(y_tr)}), got {val_size}")
    perm = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(seed))
    tr, va = perm[val_size:], perm[:val_size]
    mean = x_tr[tr].mean(dim=(0, 2, 3))
    std = x_tr[tr].std(dim=(0, 2, 3))
    norm = lambda x: (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)  # noqa: E731
    key = fingerprint(x_tr, y_tr, x_te, y_te, torch.tensor([val_size, seed]))
    ds = Dataset(name, Split(norm(x_tr[tr]), y_tr[tr]), Split(norm(x_tr[va]), y_tr[va]),
                 Split(norm(x_te), y_te), mean, std, key)
    return ds.to(device)

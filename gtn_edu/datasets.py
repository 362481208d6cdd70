"""The dataset registry: a dataset is one `DatasetSpec`, everything needed to load it and size a run.

`DATASETS` maps each name to its spec and `register_dataset(spec)` adds one, as
`gtn_edu.arch_space.register_arch_space` adds a learner space. What reads a spec:
`load_dataset(name)` reads the files through `spec.load` and holds out `spec.val_size`
images for validation; `GTNConfig(dataset=name)` takes its class count; and
`GTNConfig.sized(size, name)` starts from the paper table `spec.table` names.
`CLASS_NAMES` and `NUM_CLASSES` are read-only views of the registry, by name.

The built-in datasets (MNIST, Fashion-MNIST, CIFAR-10) are registered here through
`register_dataset` too. Torchvision reads their files (`TorchvisionLoader`), which are
verified before use (`gtn_edu.data_files`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .checks import one_of, registrar, sizes
from .data_files import (
    ENV_VAR,
    KNOWN_MD5,
    PARTIAL_CIFAR,
    DataNotFoundError,
    check_counts,
    check_digest,
    find_corrupt,
    load_cifar_partial,
)
from .sizes import TABLES

__all__ = ["DatasetSpec", "DATASETS", "register_dataset", "CLASS_NAMES", "NUM_CLASSES", "TorchvisionLoader"]

Tensors = tuple[Tensor, Tensor, Tensor, Tensor]
"""(x_train, y_train, x_test, y_test): images float (N, C, H, W) in [0, 1], labels int64 (N,)."""


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its classes, how to read it, how to split it, the paper table its runs start from.

    A spec checks its fields when it is made (ValueError naming the field and the fix).

    Attributes:
        name: what `load_dataset`, `GTNConfig.dataset` and `--dataset` call it.
        classes: the name of each class label, in label order (label y is `classes[y]`).
        load: `(root, download) -> (x_train, y_train, x_test, y_test)`: the official training
            and test sets under the data root `root` (a `Path`), images float (N, C, H, W) in
            [0, 1], labels int64 (N,). Raise `DataNotFoundError` naming what to put where when
            the files are missing.
        val_size: images of the training set held out for validation (MNIST: 10000).
        full_train: images in the full training set; a smaller copy (a partial download)
            holds out `val_size` in proportion.
        table: the paper table its runs are sized by, a key of `gtn_edu.sizes.TABLES`:
            "mnist" (Table 2 and its quick and tiny changes) or "cifar10" (Table 3 and its).
    """

    name: str
    classes: tuple[str, ...]
    load: Callable[[Path, bool], Tensors]
    val_size: int
    full_train: int
    table: str

    def __post_init__(self) -> None:
        owner = f"DatasetSpec {self.name!r}"
        names = self.classes
        if not (isinstance(names, tuple) and len(names) >= 2 and len(set(names)) == len(names)
                and all(isinstance(c, str) and c for c in names)):
            raise ValueError(f"{owner}: classes must be a tuple of at least two distinct class names, label y "
                             f"named classes[y], e.g. ('cat', 'dog'); got {names!r}")
        if not callable(self.load):
            raise ValueError(f"{owner}: load must be a function (root, download) -> (x_train, y_train, x_test, "
                             f"y_test), got {self.load!r}")
        sizes(owner, val_size=self.val_size, full_train=self.full_train)
        if self.val_size >= self.full_train:
            raise ValueError(f"{owner}: val_size ({self.val_size}) must be smaller than full_train "
                             f"({self.full_train}): the validation images are held out of the training set")
        one_of(f"{owner}: table (the paper table its runs are sized by)", self.table, tuple(TABLES))

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(classes)`."""
        return len(self.classes)

    def check_loaded(self, tensors: Tensors) -> Tensors:
        """`tensors` if they are what `load` must return; else ValueError naming the split and the fix."""
        for split, x, y in (("training", *tensors[:2]), ("test", *tensors[2:])):
            if not (x.is_floating_point() and x.dim() == 4 and y.dtype == torch.long and y.shape == (len(x),)):
                raise ValueError(f"{self.name}: load must return float images (N, C, H, W) and int64 labels (N,) "
                                 f"for each split; the {split} split has images {x.dtype} {tuple(x.shape)} and "
                                 f"labels {y.dtype} {tuple(y.shape)}")
            if len(y) and not 0 <= int(y.min()) <= int(y.max()) < self.num_classes:
                raise ValueError(f"{self.name}: the {split} labels run from {int(y.min())} to {int(y.max())}, but "
                                 f"they must lie in 0..{self.num_classes - 1}, one per name in classes")
        return tensors


DATASETS: dict[str, DatasetSpec] = {}
"""Dataset name -> `DatasetSpec`, in registration order (the built-in three first)."""


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to `DATASETS` under `spec.name` and return it.

    `load_dataset(spec.name)`, `GTNConfig(dataset=spec.name)` and
    `GTNConfig.sized(size, spec.name)` then accept the name. A name is registered once
    (ValueError naming how to replace it).

    Args:
        spec: the dataset; its fields were checked when it was made.
    """
    if not isinstance(spec, DatasetSpec):
        raise ValueError(f"register_dataset takes a DatasetSpec(name, classes, load, val_size, full_train, table), "
                         f"got {spec!r}")
    return registrar(DATASETS, "dataset", spec.name, "DATASETS")(spec)


class _Column(Mapping):
    """A read-only view of one attribute of every registered spec, by dataset name."""

    def __init__(self, attribute: str) -> None:
        self._attribute = attribute

    def __getitem__(self, name: str):
        return getattr(DATASETS[name], self._attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(DATASETS)

    def __len__(self) -> int:
        return len(DATASETS)

    def __repr__(self) -> str:
        return repr(dict(self))


CLASS_NAMES: Mapping[str, tuple[str, ...]] = _Column("classes")
"""Dataset name -> the name of each class label, in label order (a view of `DATASETS`)."""

NUM_CLASSES: Mapping[str, int] = _Column("num_classes")
"""Dataset name -> its number of classes: inner batches hold the same number of examples of each."""


@dataclass(frozen=True)
class TorchvisionLoader:
    """The `load` of the built-in datasets: torchvision reads the files under the data root, verified.

    Attributes:
        name: the dataset's name, for messages.
        tv_class: its class in `torchvision.datasets`, e.g. "MNIST".
        folder: the folder of its files under the data root.
        files: the files the "not found" message asks for.
        idx: the files are IDX files (MNIST's format): refuse a split whose images and labels
            differ in number, and raw files that are not the published ones. (Torchvision loads
            CIFAR-10's batches only when each has the expected md5.)
        partial: (folder, reader) of a partial copy, read by `reader(root)` when torchvision
            fails and the folder exists under the root.
    """

    name: str
    tv_class: str
    folder: str
    files: tuple[str, ...]
    idx: bool = True
    partial: tuple[str, Callable[[Path], Tensors]] | None = None

    def __call__(self, root: Path, download: bool) -> Tensors:
        """(x_train, y_train, x_test, y_test), as `DatasetSpec.load` returns them."""
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        if not root.is_dir() and not download:
            raise DataNotFoundError(self._missing(root, "the folder does not exist"))
        try:
            train, test = cls(str(root), train=True, download=download), cls(str(root), train=False, download=download)
        except DataNotFoundError:
            raise
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
            find_corrupt(root / self.folder, list(self.files))  # a present but broken file is named, not "missing"
            if self.partial is not None and (root / self.partial[0]).is_dir():
                return self.partial[1](root)
            raise DataNotFoundError(self._missing(root, f"{type(err).__name__}: {err}")) from err
        if self.idx:
            self._verify(root, train, test)

        def as_tensors(ds) -> tuple[Tensor, Tensor]:
            x = torch.as_tensor(ds.data)
            x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
            return x.float().div_(255), torch.as_tensor(ds.targets, dtype=torch.long)

        return (*as_tensors(train), *as_tensors(test))

    def _missing(self, root: Path, reason: str) -> str:
        return (f"{self.name} was not found under the data root {root} and could not be downloaded ({reason}).\n"
                f"Either let torchvision download it (needs internet), or put these files in {root / self.folder}:\n  "
                + "\n  ".join(self.files)
                + f"\nthen pass --data-root {root} or set {ENV_VAR}={root}.")

    def _verify(self, root: Path, train, test) -> None:
        """Refuse splits whose images and labels differ in number, and raw files that are not the published ones."""
        for ds, prefix in ((train, "train"), (test, "t10k")):
            files = [root / self.folder / f"{prefix}-{kind}" for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")]
            if not all(path.is_file() for path in files):  # read from torchvision's older processed/ layout
                files = [Path(ds.processed_folder) / (ds.training_file if prefix == "train" else ds.test_file)] * 2
            check_counts(tuple(files), len(ds.data), len(ds.targets))
        for rel in KNOWN_MD5:  # only raw files that exist are compared; .gz and processed/ files are not
            if rel.startswith(self.folder + "/"):
                check_digest(root, rel)


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
register_dataset(DatasetSpec(
    "mnist", classes=tuple(str(d) for d in range(10)),
    load=TorchvisionLoader("mnist", "MNIST", "MNIST/raw", _IDX), val_size=10_000, full_train=60_000, table="mnist"))
register_dataset(DatasetSpec(
    "fashion-mnist", classes=("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                              "bag", "ankle boot"),
    load=TorchvisionLoader("fashion-mnist", "FashionMNIST", "FashionMNIST/raw", _IDX),
    val_size=10_000, full_train=60_000, table="mnist"))
register_dataset(DatasetSpec(
    "cifar10", classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    load=TorchvisionLoader("cifar10", "CIFAR10", "cifar-10-batches-py",
                           ("data_batch_1", "...", "data_batch_5", "test_batch", "batches.meta"),
                           idx=False, partial=(PARTIAL_CIFAR, load_cifar_partial)),
    val_size=5_000, full_train=50_000, table="cifar10"))

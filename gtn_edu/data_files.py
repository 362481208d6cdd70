"""Verifying and reading dataset files: known digests, matching counts, pickles that run no code.

`gtn_edu.data` loads MNIST and Fashion-MNIST with torchvision, then checks here that each
split has as many labels as images and that every raw file with a published name has the
published md5 (`KNOWN_MD5`). When torchvision fails on files that are present, `find_corrupt`
names the broken file instead of reporting the dataset as missing. The partial CIFAR-10 copy
is read here, not by torchvision: its pickles go through `SafeUnpickler`, which rebuilds numpy
arrays and nothing else, so a crafted file cannot run code while it loads.

Every problem is a `DataFileError` that names the file and the fix. Setting the environment
variable `GTN_EDU_SKIP_DIGESTS=1` skips the digest comparison, for a copy you trust that
differs from the published one; the other checks always run.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["DataNotFoundError", "DataFileError", "KNOWN_MD5", "SKIP_DIGESTS_VAR", "SafeUnpickler", "check_digest",
           "check_counts", "find_corrupt", "read_cifar_batch", "load_cifar_partial"]

ENV_VAR = "GTN_EDU_DATA"  # the data root, when no root is given (`gtn_edu.data.data_root`)
SKIP_DIGESTS_VAR = "GTN_EDU_SKIP_DIGESTS"
PARTIAL_CIFAR = "cifar-10-batches-py-partial"
PARTIAL_FILES = ("data_batch_1.first4000", "test_batch.first1000")

# md5 digests copied from the README of the offline data copy (shared/data/README.md). MNIST and
# Fashion-MNIST: the published digests of the uncompressed raw files (what torchvision reads with
# download=False). CIFAR-10: the two batch files of the partial copy (images 0-3999 of data_batch_1
# and 0-999 of test_batch), which exist only as that copy.
KNOWN_MD5 = {
    "MNIST/raw/train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "MNIST/raw/train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "MNIST/raw/t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "MNIST/raw/t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    "FashionMNIST/raw/train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "FashionMNIST/raw/train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "FashionMNIST/raw/t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "FashionMNIST/raw/t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    f"{PARTIAL_CIFAR}/data_batch_1.first4000": "60962c14e86600df289317e7dc87d10a",
    f"{PARTIAL_CIFAR}/test_batch.first1000": "1b1ba454043a684eef8b0d98f696af7a",
}
"""md5 of each known file, by its path under the data root."""


class DataNotFoundError(FileNotFoundError):
    """The dataset is not under the data root and could not be downloaded."""


class DataFileError(DataNotFoundError):
    """A dataset file is present but unusable (corrupt, mismatched or altered); the message names it.

    A subclass of `DataNotFoundError`, so code that handles missing data handles this too.
    """


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(root: Path, rel: str) -> None:
    """Refuse `root / rel` if it exists and its md5 differs from `KNOWN_MD5[rel]`.

    Skipped when the environment variable `GTN_EDU_SKIP_DIGESTS` is set to 1.
    """
    path = root / rel
    if os.environ.get(SKIP_DIGESTS_VAR, "") in ("", "0") and path.is_file():
        found = _md5(path)
        if found != KNOWN_MD5[rel]:
            raise DataFileError(f"{path} is not the published file: md5 {found}, expected {KNOWN_MD5[rel]}; restore "
                                f"the original copy (or download it again), or set {SKIP_DIGESTS_VAR}=1 to use a "
                                f"copy you trust")


def check_counts(files: tuple[Path, Path], n_images: int, n_labels: int) -> None:
    """Refuse a split whose image file and label file hold different numbers of items."""
    if n_images != n_labels:
        raise DataFileError(f"{files[0]} holds {n_images} images but {files[1]} holds {n_labels} labels: the two "
                            f"files do not belong together; restore the original copies of both")


def _check_idx(path: Path, ndim: int) -> None:
    """Refuse an IDX file (MNIST's format) whose header does not describe its size."""
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if len(head) < 4 + 4 * ndim or head[:4] != bytes([0, 0, 8, ndim]):
        raise DataFileError(f"{path} is corrupt: it does not start with the header of a uint8 IDX file of "
                            f"{ndim} dimension(s); restore the original file")
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected, found = 4 + 4 * ndim + math.prod(dims), path.stat().st_size
    if found != expected:
        raise DataFileError(f"{path} is corrupt (truncated or padded): its header announces {dims[0]} items, "
                            f"{expected} bytes, but the file has {found} bytes; restore the original file")


def find_corrupt(folder: Path, files: list[str]) -> None:
    """After torchvision failed: raise a `DataFileError` naming the first present file that is broken.

    MNIST-style IDX files are checked against their headers; CIFAR-10's batches against the md5 that
    torchvision expects. Absent files are left to the "not found" message.
    """
    from torchvision.datasets import CIFAR10

    cifar_md5 = dict(CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]])
    for name in [*files, *cifar_md5] if folder.name == CIFAR10.base_folder else files:
        path = folder / name
        if not path.is_file():
            continue
        if name in cifar_md5 and (found := _md5(path)) != cifar_md5[name]:
            raise DataFileError(f"{path} is corrupt or altered: md5 {found}, torchvision expects {cifar_md5[name]}; "
                                f"delete it and download it again")
        if "-idx" in name:
            _check_idx(path, 3 if "images" in name else 1)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and nothing else: any other global is refused.

    A CIFAR-10 batch is a dict of strings, lists of ints and one uint8 array; the array is the only
    thing that needs globals (numpy's `_reconstruct`, `ndarray`, `dtype`). Anything else (`os.system`,
    `builtins.open`, ...) would be a file crafted to run code, and raises `pickle.UnpicklingError`.
    """

    @staticmethod
    def _allowed() -> dict[tuple[str, str], object]:
        try:  # numpy 2 moved numpy.core to numpy._core; pickles name either
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # pragma: no cover - numpy 1
            from numpy.core.multiarray import _reconstruct
        return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
                ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
                ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}

    def find_class(self, module: str, name: str) -> object:
        """The allowed numpy global, else `pickle.UnpicklingError`."""
        try:
            return self._allowed()[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-10 batch never needs (a file "
                                         f"crafted to run code?); nothing was run") from None


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3072) uint8, channel-major, and labels (N,) int64 of one CIFAR-10 batch file, run no code."""
    try:
        entry = SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except OSError:
        raise
    except Exception as err:  # UnpicklingError, EOFError, ValueError, ... from a broken or crafted file
        raise DataFileError(f"{path} is corrupt or not a CIFAR-10 batch: {type(err).__name__}: {err}") from err
    if not isinstance(entry, dict) or not {"data", "labels"} <= set(entry):
        raise DataFileError(f"{path} is not a CIFAR-10 batch: expected a dict with 'data' and 'labels'")
    data, labels = entry["data"], np.asarray(entry["labels"])
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise DataFileError(f"{path} is not a CIFAR-10 batch: 'data' must be a uint8 array of shape (N, 3072), got "
                            f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    if labels.shape != (len(data),) or labels.dtype.kind not in "iu" or ((labels < 0) | (labels > 9)).any():
        raise DataFileError(f"{path} is not a CIFAR-10 batch: 'labels' must be {len(data)} integers in 0..9")
    return data, labels.astype(np.int64)


def load_cifar_partial(root: Path) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The partial CIFAR-10 copy some offline machines carry (4000 train / 1000 test images), verified.

    Each file must have its known md5 (unless `GTN_EDU_SKIP_DIGESTS=1`) and is unpickled by
    `SafeUnpickler`. Returns train images (N, 3, 32, 32) in [0, 1], train labels, test images, test labels.
    """
    folder = root / PARTIAL_CIFAR
    out = []
    try:
        for name in PARTIAL_FILES:
            check_digest(root, f"{PARTIAL_CIFAR}/{name}")
            data, labels = read_cifar_batch(folder / name)
            out += [torch.from_numpy(data).view(-1, 3, 32, 32).float().div_(255), torch.from_numpy(labels)]
    except DataFileError as err:
        raise DataFileError(f"cifar10: the partial copy in {folder} does not load: {err}") from err
    except OSError as err:  # a file is missing or unreadable
        raise DataNotFoundError(f"cifar10: the partial copy in {folder} does not load ({err}); it needs the files "
                                f"{' and '.join(PARTIAL_FILES)}") from err
    print(f"cifar10: using the PARTIAL copy in {folder}: {len(out[1])} train and "
          f"{len(out[3])} test images (the full set has 50000 and 10000); splits keep the full set's proportions",
          file=sys.stderr)
    return tuple(out)

"""Dataset files are verified before use: digests, counts, corrupt files named, pickles that run no code.

Issue 23, defects 3, 5 and 15. Fixtures are copies (or symlinks) of the offline data in tmp_path,
some of them altered; the shared copy itself is read-only.
"""

import hashlib
import io
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gtn_edu.cli import main
from gtn_edu.data import DataNotFoundError, load_dataset
from gtn_edu.datasets import DATASETS

SKIP = "GTN_EDU_SKIP_DIGESTS"  # the documented escape for a trusted copy that differs from the published one
PARTIAL = "cifar-10-batches-py-partial"
PARTIAL_MD5 = {"data_batch_1.first4000": "60962c14e86600df289317e7dc87d10a",
               "test_batch.first1000": "1b1ba454043a684eef8b0d98f696af7a"}
MNIST_TRAIN_LABELS_MD5 = "a25bea736e30d166cdddb491f175f624"


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def partial_root(data_root) -> Path:
    """The shared folder that holds the partial CIFAR-10 copy (skip where it is absent)."""
    if not (data_root / PARTIAL / "data_batch_1.first4000").is_file():
        pytest.skip(f"no {PARTIAL}/ in {data_root}")
    return data_root


def _copy_partial(src: Path, dst: Path) -> Path:
    (dst / PARTIAL).mkdir(parents=True)
    for name in [*PARTIAL_MD5, "batches.meta"]:
        shutil.copyfile(src / PARTIAL / name, dst / PARTIAL / name)
    return dst / PARTIAL


def _copy_raw(src: Path, dst: Path, folder: str = "MNIST") -> Path:
    """`dst/<folder>/raw/` with the image files symlinked (47 MB) and the label files copied."""
    raw = dst / folder / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        (raw / f"{split}-images-idx3-ubyte").symlink_to(src / folder / "raw" / f"{split}-images-idx3-ubyte")
        shutil.copyfile(src / folder / "raw" / f"{split}-labels-idx1-ubyte", raw / f"{split}-labels-idx1-ubyte")
    return raw


class _OpensAFile:
    """Unpickling this creates `path`: a stand-in for a `__reduce__` that calls os.system."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def _crafted_batch(marker: Path) -> bytes:
    return pickle.dumps({"batch_label": "crafted", "labels": [0], "data": _OpensAFile(marker)}, protocol=2)


# --- defect 3: a data folder can run code ---------------------------------------------------------------------


def test_crafted_fixture_would_run_code_under_plain_pickle(tmp_path):
    """The fixture is a real attack: plain `pickle.loads` creates the marker file."""
    marker = tmp_path / "ran"
    pickle.loads(_crafted_batch(marker)).get("data").close()
    assert marker.exists()


@pytest.mark.parametrize("skip_digests", [False, True], ids=["digests", "no-digests"])
def test_crafted_partial_cifar_pickle_runs_no_code(tmp_path, monkeypatch, skip_digests):
    """Refused by its digest; with digests skipped, refused by the unpickler. Either way nothing runs."""
    if skip_digests:
        monkeypatch.setenv(SKIP, "1")
    marker = tmp_path / "ran"
    (tmp_path / PARTIAL).mkdir()
    crafted = tmp_path / PARTIAL / "data_batch_1.first4000"
    crafted.write_bytes(_crafted_batch(marker))
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    assert not marker.exists(), "unpickling the data folder ran code"
    msg = str(err.value)
    assert str(crafted) in msg and "\n" not in msg
    if skip_digests:
        assert "io.open" in msg and "nothing was run" in msg  # open pickles as io.open
    else:
        assert PARTIAL_MD5["data_batch_1.first4000"] in msg and _md5(crafted) in msg and "restore" in msg


def test_cli_refuses_a_crafted_partial_cifar_pickle_with_exit_2(tmp_path, capsys):
    marker = tmp_path / "ran"
    (tmp_path / PARTIAL).mkdir()
    (tmp_path / PARTIAL / "data_batch_1.first4000").write_bytes(_crafted_batch(marker))
    rc = main(["train", "--dataset", "cifar10", "--quick", "--data-root", str(tmp_path), "--no-download",
               "--out", str(tmp_path / "run")])
    assert rc == 2 and not marker.exists()
    assert "data_batch_1.first4000" in capsys.readouterr().err


def test_partial_cifar_copy_loads_as_torchvision_read_it(partial_root, tmp_path, capsys):
    """A faithful copy gives the 4000 / 1000 images torchvision's unrestricted loader gives."""
    from torchvision.datasets import CIFAR10

    class CIFAR10Partial(CIFAR10):  # the stock approach (unpickles anything): only on the trusted shared copy
        base_folder = PARTIAL
        train_list = [["data_batch_1.first4000", None]]
        test_list = [["test_batch.first1000", None]]

        def _check_integrity(self) -> bool:
            return True

    _copy_partial(partial_root, tmp_path)
    x_tr, y_tr, x_te, y_te = DATASETS["cifar10"].load(tmp_path, download=False)
    assert "PARTIAL" in capsys.readouterr().err
    for x, y, train in ((x_tr, y_tr, True), (x_te, y_te, False)):
        stock = CIFAR10Partial(str(partial_root), train=train, download=False)
        assert len(y) == (4000 if train else 1000)
        assert torch.equal(x, torch.as_tensor(stock.data).permute(0, 3, 1, 2).float().div(255))
        assert torch.equal(y, torch.as_tensor(stock.targets, dtype=torch.long))
    ds = load_dataset("cifar10", tmp_path, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3600, 400, 1000)


def test_partial_cifar_copy_with_a_changed_byte_is_refused(partial_root, tmp_path, monkeypatch):
    folder = _copy_partial(partial_root, tmp_path)
    path = folder / "data_batch_1.first4000"
    data = bytearray(path.read_bytes())
    data[6_000_000] ^= 0xFF  # one pixel
    path.write_bytes(bytes(data))
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and PARTIAL_MD5[path.name] in msg and _md5(path) in msg
    assert "restore the original copy" in msg and SKIP in msg
    monkeypatch.setenv(SKIP, "1")  # a copy the user trusts: the pixel changed, everything else still checked
    assert len(load_dataset("cifar10", tmp_path, download=False).train) == 3600


def test_truncated_partial_pickle_is_named_as_corrupt(partial_root, tmp_path, monkeypatch):
    monkeypatch.setenv(SKIP, "1")  # past the digest, to reach the unpickler
    folder = _copy_partial(partial_root, tmp_path)
    path = folder / "test_batch.first1000"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("cifar10", tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and "corrupt" in msg and "was not found" not in msg


def test_safe_unpickler_reads_arrays_under_numpy_1_and_2_module_names():
    from gtn_edu.data_files import SafeUnpickler

    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    blob = pickle.dumps(arr, protocol=3)  # 2 would add _codecs.encode (Python 3 bytes)
    other = {b"numpy._core.multiarray": b"numpy.core.multiarray",
             b"numpy.core.multiarray": b"numpy._core.multiarray"}
    name = next(k for k in other if k in blob)
    for variant in (blob, blob.replace(name, other[name])):
        assert np.array_equal(SafeUnpickler(io.BytesIO(variant)).load(), arr)
    with pytest.raises(pickle.UnpicklingError, match="os.system|posix.system"):
        SafeUnpickler(io.BytesIO(pickle.dumps(os.system))).load()


# --- defect 5: mismatched dataset files pass --------------------------------------------------------------------


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
@pytest.mark.parametrize("skip_digests", [False, True], ids=["digests", "no-digests"])
def test_train_labels_replaced_by_test_labels_are_refused(data_root, tmp_path, monkeypatch, name, folder,
                                                          skip_digests):
    """60000 training images with the 10000 test labels: the count check runs even without digests."""
    if not (data_root / folder / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"no {folder}/raw in {data_root}")
    if skip_digests:
        monkeypatch.setenv(SKIP, "1")
    raw = _copy_raw(data_root, tmp_path, folder)
    shutil.copyfile(raw / "t10k-labels-idx1-ubyte", raw / "train-labels-idx1-ubyte")
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(name, tmp_path, download=False)
    msg = str(err.value)
    assert str(raw / "train-images-idx3-ubyte") in msg and str(raw / "train-labels-idx1-ubyte") in msg
    assert "60000" in msg and "10000" in msg and "\n" not in msg


def test_mnist_label_file_with_another_digest_is_refused_unless_skipped(data_root, tmp_path, monkeypatch):
    raw = _copy_raw(data_root, tmp_path)
    path = raw / "train-labels-idx1-ubyte"
    labels = bytearray(path.read_bytes())
    labels[8] = (labels[8] + 1) % 10  # the first training label: same count, different file
    path.write_bytes(bytes(labels))
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and MNIST_TRAIN_LABELS_MD5 in msg and _md5(path) in msg and SKIP in msg
    monkeypatch.setenv(SKIP, "1")
    x_tr, y_tr, _, _ = DATASETS["mnist"].load(tmp_path, download=False)
    assert len(y_tr) == 60000 and y_tr[0].item() == labels[8]


def test_faithful_mnist_copy_loads_and_gz_files_are_not_checked(data_root, tmp_path, monkeypatch):
    """Only the uncompressed raw files that exist are compared; torchvision does not read a stray .gz."""
    monkeypatch.delenv(SKIP, raising=False)
    raw = _copy_raw(data_root, tmp_path)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not the published archive")
    ds = load_dataset("mnist", tmp_path, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)


# --- defect 15: a corrupt data file is reported as "not found" without naming it --------------------------------


def test_truncated_label_file_is_named_as_corrupt_not_missing(data_root, tmp_path, capsys):
    raw = _copy_raw(data_root, tmp_path)
    path = raw / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and "corrupt" in msg and "was not found" not in msg and "\n" not in msg
    rc = main(["train", "--quick", "--data-root", str(tmp_path), "--no-download", "--out", str(tmp_path / "run")])
    assert rc == 2 and str(path) in capsys.readouterr().err

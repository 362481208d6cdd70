"""A dataset is one registered `DatasetSpec`: one `register_dataset` call makes it loadable, configurable and sizable.

The toy dataset here (3 classes of 1x8x8 images, made from a seed, no files) goes through
every place that reads a dataset's name: `load_dataset` (splits and normalisation),
`GTNConfig`, `GTNConfig.sized` and a tiny run of two arms. The built-in specs must hold
exactly the values the dicts they replaced held. The fixture restores the registry after
each test, so the names added here stay here.
"""

import math
from dataclasses import replace

import pytest
import torch

from gtn_edu.config import NUM_CLASSES, PAPER_TABLES, CIFARConfig, GTNConfig, MNISTConfig, config_for
from gtn_edu.data import CLASS_NAMES, DATASETS, load_dataset
from gtn_edu.data_files import PARTIAL_CIFAR, load_cifar_partial
from gtn_edu.datasets import DatasetSpec, TorchvisionLoader, register_dataset
from gtn_edu.experiment import run_arm
from gtn_edu.sizes import CIFAR_QUICK_CHANGES, CIFAR_TINY_CHANGES, QUICK_CHANGES, TABLES, TINY_CHANGES

SHAPE = (1, 8, 8)
CLASSES = ("dark", "grey", "light")


def load_toy(root, download):
    """120 training and 30 test images in [0, 1], each class a little brighter than the last."""
    rng = torch.Generator().manual_seed(0)

    def split(n):
        y = torch.arange(n) % 3
        return torch.rand(n, *SHAPE, generator=rng) * 0.5 + 0.25 * y.view(-1, 1, 1, 1), y

    return (*split(120), *split(30))


TOY = DatasetSpec("toy", CLASSES, load_toy, val_size=24, full_train=120, table="mnist")


@pytest.fixture(autouse=True)
def restore_registry():
    """Put the registry back as it was: other tests must not see the datasets registered here."""
    before = dict(DATASETS)
    yield
    DATASETS.clear()
    DATASETS.update(before)


def test_the_built_in_specs_hold_the_values_of_the_dicts_they_replaced():
    assert list(DATASETS) == ["mnist", "fashion-mnist", "cifar10"]
    assert {n: (s.val_size, s.full_train, s.table) for n, s in DATASETS.items()} == {
        "mnist": (10_000, 60_000, "mnist"), "fashion-mnist": (10_000, 60_000, "mnist"),
        "cifar10": (5_000, 50_000, "cifar10")}
    assert dict(CLASS_NAMES) == {
        "mnist": ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"),
        "fashion-mnist": ("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                          "ankle boot"),
        "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")}
    assert dict(NUM_CLASSES) == {"mnist": 10, "fashion-mnist": 10, "cifar10": 10}
    idx = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    assert DATASETS["mnist"].load == TorchvisionLoader("mnist", "MNIST", "MNIST/raw", idx)
    assert DATASETS["fashion-mnist"].load == TorchvisionLoader("fashion-mnist", "FashionMNIST", "FashionMNIST/raw", idx)
    assert DATASETS["cifar10"].load == TorchvisionLoader(
        "cifar10", "CIFAR10", "cifar-10-batches-py", ("data_batch_1", "...", "data_batch_5", "test_batch",
                                                      "batches.meta"), idx=False,
        partial=(PARTIAL_CIFAR, load_cifar_partial))
    # the tables: Table 2 and its changes for MNIST and Fashion-MNIST, Table 3 and its for CIFAR-10
    assert PAPER_TABLES == {"mnist": MNISTConfig, "cifar10": CIFARConfig} and set(TABLES) == set(PAPER_TABLES)
    assert TABLES == {"mnist": {"quick": QUICK_CHANGES, "tiny": TINY_CHANGES},
                      "cifar10": {"quick": CIFAR_QUICK_CHANGES, "tiny": CIFAR_TINY_CHANGES}}


def test_a_registered_dataset_is_accepted_by_the_config_and_sized_from_its_table():
    with pytest.raises(ValueError, match=r"dataset must be one of 'mnist', 'fashion-mnist', 'cifar10', got 'toy'; "
                                         r"to add one, register it with gtn_edu.datasets.register_dataset"):
        GTNConfig(dataset="toy")
    with pytest.raises(ValueError, match="dataset must be one of .*register_dataset"):
        GTNConfig.sized("tiny", "toy")
    assert register_dataset(TOY) is TOY and DATASETS["toy"] is TOY
    assert CLASS_NAMES["toy"] == CLASSES and NUM_CLASSES["toy"] == 3 and "toy" in CLASS_NAMES  # the views follow
    tiny = GTNConfig.sized("tiny", "toy")
    # Table 2 with the tiny changes; the inner batch is the nearest multiple of the 3 classes (20 -> 21)
    assert tiny == replace(MNISTConfig(), **{**TINY_CHANGES, "dataset": "toy", "inner_batch": 21})
    assert tiny.num_classes == 3
    assert GTNConfig.sized("quick", "toy") == replace(MNISTConfig(), **{**QUICK_CHANGES, "dataset": "toy",
                                                                       "inner_batch": 69})
    assert config_for("toy") == GTNConfig.sized("paper", "toy") == MNISTConfig(dataset="toy", inner_batch=129)
    assert GTNConfig.sized("tiny", "toy", inner_batch=6, seed=4).inner_batch == 6  # changes are taken as given
    with pytest.raises(ValueError, match="inner_batch must be a multiple of the 3 classes of toy"):
        GTNConfig(dataset="toy")  # Table 2's 130
    register_dataset(replace(TOY, name="toy_cifar", table="cifar10"))
    assert GTNConfig.sized("tiny", "toy_cifar") == replace(CIFARConfig(), **{**CIFAR_TINY_CHANGES,
                                                                             "dataset": "toy_cifar", "inner_batch": 21})
    del DATASETS["toy"]
    assert "toy" not in CLASS_NAMES and "toy" not in NUM_CLASSES and list(NUM_CLASSES)[-1] == "toy_cifar"


def test_a_registered_dataset_loads_split_and_normalised(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'toy'; choose one of .*register_dataset"):
        load_dataset("toy", tmp_path)
    register_dataset(TOY)
    ds = load_dataset("toy", tmp_path, seed=3)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (96, 24, 30)
    assert ds.image_shape == SHAPE and ds.num_classes == 3 and ds.classes == CLASSES
    x_tr, y_tr, x_te, y_te = load_toy(tmp_path, True)
    perm = torch.randperm(120, generator=torch.Generator().manual_seed(3))
    train, val = perm[24:], perm[:24]
    mean, std = x_tr[train].mean(dim=(0, 2, 3)), x_tr[train].std(dim=(0, 2, 3))
    assert torch.equal(ds.train.y, y_tr[train]) and torch.equal(ds.val.y, y_tr[val]) and torch.equal(ds.test.y, y_te)
    torch.testing.assert_close(ds.train.x, (x_tr[train] - mean) / std)
    torch.testing.assert_close(ds.test.x, (x_te - mean) / std)
    assert abs(float(ds.train.x.mean())) < 1e-5 and abs(float(ds.train.x.std()) - 1) < 1e-5
    assert ds.key == load_dataset("toy", tmp_path, seed=3).key != load_dataset("toy", tmp_path, seed=4).key
    assert len(load_dataset("toy", tmp_path, val_size=10).val) == 10
    # a copy smaller than full_train (a partial download) holds out val_size in proportion: 120 * 24 / 240
    register_dataset(replace(TOY, name="half_toy", full_train=240))
    assert (len(load_dataset("half_toy", tmp_path).train), len(load_dataset("half_toy", tmp_path).val)) == (108, 12)


def test_a_tiny_run_trains_on_a_registered_dataset(tmp_path):
    register_dataset(TOY)
    data = load_dataset("toy", tmp_path)
    cfg = GTNConfig.sized("tiny", "toy", outer_steps=2)
    for kind in ("gtn", "real"):
        out = run_arm(kind, cfg, data, tmp_path / kind, data_key=data.key)
        assert out["outer_iterations"] == 2 and len(out["test_accuracies"]) == cfg.eval_learners
        assert all(math.isfinite(v) for v in out["meta_loss"]) and 0 <= out["test_accuracy_mean"] <= 1
    assert (tmp_path / "gtn" / "samples.png").is_file()


@pytest.mark.parametrize("changes, match", [
    (dict(classes=("one",)), r"'toy': classes must be a tuple of at least two distinct class names.*got \('one',\)"),
    (dict(classes=["a", "b", "c"]), "classes must be a tuple"),
    (dict(classes=("a", "a")), "classes must be a tuple of at least two distinct"),
    (dict(classes=("a", "")), "classes must be a tuple"),
    (dict(load="toy.npz"), r"'toy': load must be a function \(root, download\) -> \(x_train, y_train, x_test"),
    (dict(val_size=0), "DatasetSpec 'toy': val_size must be a positive integer, got 0"),
    (dict(full_train=12.5), "DatasetSpec 'toy': full_train must be a positive integer, got 12.5"),
    (dict(val_size=120), r"val_size \(120\) must be smaller than full_train \(120\)"),
    (dict(table="svhn"), r"'toy': table \(the paper table its runs are sized by\) must be one of 'mnist', 'cifar10', "
                         "got 'svhn'"),
])
def test_an_invalid_spec_is_refused_naming_the_fix(changes, match):
    with pytest.raises(ValueError, match=match):
        replace(TOY, **changes)
    assert "toy" not in DATASETS


def test_a_duplicate_or_malformed_registration_is_refused():
    kept = DATASETS["mnist"]
    with pytest.raises(ValueError, match=r"dataset 'mnist' is already registered; .*del DATASETS\['mnist'\]"):
        register_dataset(replace(TOY, name="mnist"))
    assert DATASETS["mnist"] is kept and GTNConfig().num_classes == 10
    with pytest.raises(ValueError, match="dataset names must be non-empty strings"):
        register_dataset(replace(TOY, name=""))
    with pytest.raises(ValueError, match=r"register_dataset takes a DatasetSpec\(name, classes, load"):
        register_dataset("toy")
    assert list(DATASETS) == ["mnist", "fashion-mnist", "cifar10"]
    register_dataset(TOY)
    del DATASETS["toy"]  # the documented way to replace one
    assert register_dataset(replace(TOY, val_size=12)).val_size == 12


@pytest.mark.parametrize("broken, match", [
    (lambda x, y: (x.mul(255).to(torch.uint8), y), r"toy: load must return float images .* the training split has "
                                                   r"images torch.uint8 \(120, 1, 8, 8\)"),
    (lambda x, y: (x, y.float()), "labels torch.float32"),
    (lambda x, y: (x[:, 0], y), r"images torch.float32 \(120, 8, 8\)"),
    (lambda x, y: (x, y[:-1]), r"labels torch.int64 \(119,\)"),
    (lambda x, y: (x, y + 1), r"toy: the training labels run from 1 to 3, but they must lie in 0..2"),
])
def test_a_loader_returning_the_wrong_tensors_is_named(tmp_path, broken, match):
    def load(root, download):
        x_tr, y_tr, x_te, y_te = load_toy(root, download)
        return (*broken(x_tr, y_tr), x_te, y_te)

    register_dataset(replace(TOY, load=load))
    with pytest.raises(ValueError, match=match):
        load_dataset("toy", tmp_path)

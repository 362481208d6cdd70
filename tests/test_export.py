"""`gtn-edu export`: GTN data as a plain .npz, read back by gtn_edu and by a plain-PyTorch script."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gtn_edu import MLPLearner, few_step_accuracy, load_dataset
from gtn_edu.cli import main
from gtn_edu.experiment import load_arm
from gtn_edu.export import FORMAT, load_synthetic, save_synthetic

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "train_on_gtn_data.py"
TINY = ["--quick", "--no-download", "--steps", "3", "--inner-batch", "20", "--outer-batch", "20",
        "--outer-steps", "3", "--eval-learners", "2", "--teacher-hidden", "16", "--teacher-channels", "4",
        "--teacher-conv-channels", "4", "--arch-scale", "0.1", "--no-parallel-arms"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data_root):
    """A tiny MNIST run, exported with the CLI: (run folder, .npz path)."""
    run = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", *TINY, "--data-root", str(data_root), "--out", str(run)]) == 0
    assert main(["export", str(run), "--data-root", str(data_root)]) == 0
    return run, run / "gtn_data.npz"


def test_the_file_holds_the_run_s_batches_and_schedule_and_loads_without_pickle(exported, data_root):
    run, path = exported
    assert path.with_suffix(".png").exists()
    with np.load(path, allow_pickle=False) as f:  # plain arrays and one JSON string
        assert set(f.files) == {"x", "y", "lr", "momentum", "meta"}
        assert f["x"].shape == (3, 20, 1, 28, 28) and f["y"].shape == (3, 20) and f["lr"].shape == (3,)
    data = load_synthetic(path)
    assert data.meta["format"] == FORMAT and data.meta["dataset"] == "mnist" and data.meta["steps"] == 3
    ds = load_dataset("mnist", data_root, download=False)
    arm = load_arm("gtn", run / "gtn_checkpoint.pt", ds)
    batches = arm.teacher.batches(arm.curriculum)
    with torch.no_grad():
        for t in range(3):
            x, y = batches.batch(t, batches.tensors)
            assert torch.equal(data.x[t], x) and torch.equal(data.y[t], y)
    torch.testing.assert_close(data.lr, arm.sgd.lr.detach().expand(3), rtol=0, atol=0)
    torch.testing.assert_close(data.momentum, arm.sgd.momentum.detach().expand(3), rtol=0, atol=0)
    # what the file teaches is what the run reported for its GTN (the full curriculum's batches are the file's)
    summary = json.loads((run / "summary.json").read_text())
    assert data.meta["few_step_accuracy"]["accuracies"] == summary["arms"]["gtn"]["test_accuracies"]
    again = few_step_accuracy(data.teacher(), data.curriculum(), data.sgd(), arm.arch_space, ds.test, n_learners=2,
                              seed=arm.trainer.config["seed"])
    assert again.accuracies == summary["arms"]["gtn"]["test_accuracies"]
    # the real-data arm's tuned schedule travels too (the NAS tutorial's real-data judge trains with it)
    real = load_arm("real", run / "real_checkpoint.pt", ds).sgd
    control = data.real_data_sgd()
    assert torch.equal(control.lr, real.lr.detach().expand(3)) and torch.equal(control.momentum_t,
                                                                               real.momentum.detach().expand(3))
    assert not torch.equal(control.lr, data.sgd().lr)  # two arms, two learned schedules
    del data.meta["real_data_schedule"]
    with pytest.raises(ValueError, match="no real-data schedule.*without --no-baseline"):
        data.real_data_sgd()


def test_dataset_view_float16_and_refusals(exported, tmp_path):
    _, path = exported
    data = load_synthetic(path)
    ds = data.dataset()
    assert len(ds) == 60
    x, y, t = ds[21]
    assert t == 1 and torch.equal(x, data.x[1, 1]) and y == data.y[1, 1]
    with pytest.raises(IndexError):
        ds[60]
    half = save_synthetic(data, tmp_path / "half.npz", float16=True)
    assert half.stat().st_size < path.stat().st_size
    back = load_synthetic(half)
    assert back.meta["dtype"] == "float16" and back.x.dtype == torch.float32
    torch.testing.assert_close(back.x, data.x, rtol=1e-3, atol=1e-3)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="lacks"):
        load_synthetic(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="T=3 batches of B=20"):
        data.teacher().batches(data.curriculum().__class__(4, 20, 10, latent_dim=1, variant="none"))
    assert main(["export", str(tmp_path)]) == 2  # a folder without a GTN checkpoint: one line, no traceback


def test_plain_pytorch_script_reports_what_gtn_edu_computes(exported, data_root, tmp_path):
    """The docs' script, importing nothing from gtn_edu, trains the same MLP to the same test accuracy."""
    _, path = exported
    torch.manual_seed(0)
    learner = MLPLearner((1, 28, 28), 10, (64,), batch_norm=False, weight_norm=False)
    init = {"1.weight": learner.layers[0].weight, "1.bias": learner.layers[0].bias,
            "3.weight": learner.head.weight, "3.bias": learner.head.bias}
    torch.save({k: v.detach().clone() for k, v in init.items()}, tmp_path / "init.pt")
    out = subprocess.run([sys.executable, str(SCRIPT), str(path), "--data-root", str(data_root), "--hidden", "64",
                          "--init", str(tmp_path / "init.pt")], capture_output=True, text=True, check=True).stdout
    source = SCRIPT.read_text()
    assert "gtn_edu" not in source.split('"""', 2)[2]  # the code after the docstring never names the library
    reported = float(re.search(r"test accuracy after 3 steps: ([0-9.]+)", out).group(1))
    data = load_synthetic(path)
    state = data.sgd().unroll(learner, data.teacher().batches(), differentiable=False)
    ds = load_dataset("mnist", data_root, download=False)
    assert reported == pytest.approx(learner.accuracy(state, ds.test.x, ds.test.y), abs=5e-5)


def test_shipped_cifar10_data_loads_and_teaches(data_root):
    """The package's CIFAR-10 quick data: small, self-describing, and it trains fresh learners past real data's 30%."""
    from gtn_edu import CIFARConfig
    from gtn_edu.config import quick
    from gtn_edu.experiment import build_arch_space
    from gtn_edu.export import SHIPPED, shipped

    assert (SHIPPED / "cifar10_quick.npz").stat().st_size <= 2 * 2**20
    data = shipped("cifar10")
    assert data.x.shape == (8, 50, 3, 32, 32) and data.meta["dataset"] == "cifar10" and data.meta["dtype"] == "float16"
    assert data.meta["few_step_accuracy"]["mean"] > 0.33  # what export measured (10 learners; real data: 29.94%)
    assert data.real_data_sgd().lr.shape == (8,)  # the run's real-data arm's schedule, for tutorial 3's judge
    with pytest.raises(ValueError, match="no shipped GTN data for 'svhn'"):
        shipped("svhn")
    ds = load_dataset("cifar10", data_root, download=False)
    cfg = quick(CIFARConfig())
    res = few_step_accuracy(data.teacher(), data.curriculum(), data.sgd(), build_arch_space(cfg, ds.image_shape),
                            ds.test, n_learners=2, seed=cfg.seed, bn_images=ds.train.x[:512])
    assert res.mean > 0.28  # 2 of the 10 learners export scored (36.1% +- 2.7 over 10)


def test_shipped_mnist_data_loads_and_teaches(mnist):
    """The package's MNIST quick data (float16, 0.3 MB): what it teaches 2 fresh learners of the quick space."""
    from gtn_edu import MNISTConfig
    from gtn_edu.config import quick
    from gtn_edu.experiment import build_arch_space
    from gtn_edu.export import SHIPPED, shipped

    assert (SHIPPED / "mnist_quick.npz").stat().st_size <= 2 * 2**20
    data = shipped("mnist")
    assert data.x.shape == (4, 70, 1, 28, 28) and data.meta["dataset"] == "mnist"
    assert data.meta["few_step_accuracy"]["mean"] > 0.88  # export's 10 learners (real data at these steps: 81.5%)
    cfg = quick(MNISTConfig())
    res = few_step_accuracy(data.teacher(), data.curriculum(), data.sgd(), build_arch_space(cfg, mnist.image_shape),
                            mnist.test, n_learners=2, seed=cfg.seed)
    # The same 2 learners on the same data: equal up to the float rounding of another thread count or CPU kind.
    # Measured on AMD only: 1 of 10000 images between 1 and 2 threads; the bar allows 100 (Intel is unmeasured).
    assert res.accuracies == pytest.approx(data.meta["few_step_accuracy"]["accuracies"][:2], abs=0.01)

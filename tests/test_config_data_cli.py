"""Configs, data loading and the `gtn-edu` command."""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gtn_edu.cli import build_parser, main
from gtn_edu.config import GTNConfig, MNISTConfig, quick, validate
from gtn_edu.data import ENV_VAR, DataNotFoundError, data_root, load_dataset


def test_config_defaults_follow_table_2():
    cfg = MNISTConfig()
    table2 = (cfg.outer_lr, cfg.init_lr, cfg.init_momentum, cfg.latent_dim, cfg.outer_batch)
    assert table2 == (0.01, 0.02, 0.5, 128, 128)
    assert cfg.adam_betas == (0.9, 0.999) and cfg.inner_steps == 32


def test_quick_is_small():
    q = quick(MNISTConfig())
    assert q.inner_steps <= 16 and q.inner_batch >= 64


def test_cifar_quick_shrinks_table_3_with_its_own_changes():
    from gtn_edu.config import CIFAR_QUICK_CHANGES, QUICK_CHANGES, CIFARConfig
    q = quick(CIFARConfig())
    assert {k: getattr(q, k) for k in CIFAR_QUICK_CHANGES} == CIFAR_QUICK_CHANGES
    assert CIFAR_QUICK_CHANGES != QUICK_CHANGES
    # what quick mode keeps from Table 3: the dataset and the augmentation of the meta-loss batch
    assert (q.dataset, q.augment) == ("cifar10", True)
    # and what it changes, measured in session 11: A.1's learners, real BN statistics, Adam that moves
    assert (q.arch, q.bn_stats, q.outer_lr, q.hyper_lr, q.adam_betas) == ("mnist", "real", 0.01, 0.03, (0.9, 0.999))
    assert CIFARConfig().bn_stats == "synthetic" and CIFARConfig().arch == "cifar"  # Table 3 itself is unchanged
    assert quick(MNISTConfig(dataset="fashion-mnist")).inner_steps == QUICK_CHANGES["inner_steps"]


def test_one_call_picks_a_run_size():
    """`GTNConfig.sized` is what the tutorials' old switches built, for every size and both datasets."""
    from gtn_edu.config import CIFARConfig
    from gtn_edu.sizes import device_for

    tiny = dict(inner_steps=4, inner_batch=20, outer_batch=32, outer_steps=3, init_lr=0.1, per_step_hyper=True,
                latent_dim=16, teacher_hidden=32, teacher_channels=8, teacher_conv_channels=8, mode="full",
                eval_learners=2)
    assert GTNConfig.sized("tiny", "mnist") == MNISTConfig(**tiny, arch_scale=0.125)
    assert GTNConfig.sized("tiny", "cifar10") == CIFARConfig(**tiny, arch="mnist", arch_scale=0.0625, bn_stats="real")
    assert GTNConfig.sized("quick") == quick(MNISTConfig())
    assert GTNConfig.sized("quick", "cifar10") == quick(CIFARConfig())
    assert GTNConfig.sized("paper", "cifar10") == CIFARConfig()
    assert GTNConfig.sized("quick", "fashion-mnist", seed=3) == quick(MNISTConfig(dataset="fashion-mnist", seed=3))
    with pytest.raises(ValueError, match="unknown size 'huge'; choose one of"):
        GTNConfig.sized("huge")
    with pytest.raises(ValueError, match="dataset must be one of"):
        GTNConfig.sized("quick", "svhn")
    assert device_for("tiny") == device_for("quick") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="paper size needs a GPU.*quick size on a CPU"):
            device_for("paper")
    with pytest.raises(ValueError, match="unknown size"):
        device_for("medium")


@pytest.mark.parametrize("field,value,match", [
    ("inner_steps", 0, "inner_steps must be a positive integer"),
    ("inner_steps", -3, "inner_steps must be a positive integer"),
    ("inner_batch", 64, "multiple of the 10 classes"),
    ("init_momentum", 1.5, "init_momentum"),
    ("curriculum", "random", "curriculum must be"),
    ("mode", "fast", "mode must be"),
    ("hyper_lr", 0.0, "hyper_lr must be a finite number > 0, got 0.0"),
    # issue 23: every number checked for its real range, finite included, and the value shown
    ("grad_clip", -1.0, "grad_clip must be a finite number > 0, got -1.0"),  # would climb the meta-loss
    ("grad_clip", 0.0, "grad_clip must be a finite number > 0"),             # would freeze training
    ("grad_clip", float("nan"), "grad_clip must be a finite number > 0, got nan"),
    ("outer_lr", float("inf"), "outer_lr must be a finite number > 0, got inf"),
    ("arch_scale", float("inf"), "arch_scale must be a finite number > 0, got inf"),
    ("adam_betas", (0.9, 1.0), r"adam_betas\[1\] must be a number in \[0, 1\), got 1.0"),
    ("adam_eps", 0.0, "adam_eps must be a finite number > 0"),
    ("init_lr", float("nan"), "init_lr must be a finite number > 0, got nan"),
    ("seed", -1, "seed must be an integer >= 0, got -1"),
    ("inner_steps", True, "inner_steps must be a positive integer, got True"),
    ("augment", 1, "augment must be True or False, got 1"),
])
def test_invalid_config_values(field, value, match):
    with pytest.raises(ValueError, match=match):
        validate(replace(GTNConfig(), **{field: value}))


def test_config_round_trip():
    cfg = quick(MNISTConfig())
    assert GTNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config keys"):
        GTNConfig.from_dict({"inner_stepz": 3})


def test_data_root_from_argument_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert data_root() == tmp_path
    assert data_root("/x/y").as_posix() == "/x/y"
    monkeypatch.delenv(ENV_VAR)
    assert data_root().name == "gtn_edu"


def test_missing_data_says_where_to_put_which_files(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", tmp_path / "nowhere", download=False)
    msg = str(err.value)
    assert "MNIST/raw" in msg and "train-images-idx3-ubyte" in msg and ENV_VAR in msg and "--data-root" in msg


def test_mnist_splits_and_normalisation(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (50_000, 10_000, 10_000)
    assert mnist.image_shape == (1, 28, 28) and mnist.num_classes == 10
    assert abs(mnist.train.x.mean().item()) < 1e-3 and abs(mnist.train.x.std().item() - 1) < 1e-3


def test_cli_options_come_from_config_fields():
    args = build_parser().parse_args(["train", "--steps", "3", "--inner-batch", "20", "--no-weight-norm"])
    assert (args.inner_steps, args.inner_batch, args.weight_norm) == (3, 20, False)


def test_compile_step_and_stack_learners_switches_reach_the_trainer(data_root):
    from gtn_edu.experiment import build_arm

    assert _parse("--compile-step").compile_step and not _parse().compile_step
    with pytest.raises(ValueError, match="compile_step must be True or False"):
        GTNConfig(compile_step="yes")
    ds = load_dataset("mnist", data_root, download=False)
    cfg = replace(quick(_parse("--compile-step")), inner_steps=2, inner_batch=10, teacher_hidden=8,
                  teacher_channels=2, teacher_conv_channels=2, arch_scale=0.05)
    assert build_arm("gtn", cfg, ds, progress=False).trainer.sgd.compile_step
    assert not build_arm("gtn", replace(cfg, compile_step=False), ds, progress=False).trainer.sgd.compile_step
    # --stack-learners (k learners of one architecture as one) reaches the trainer; not with compile_step
    assert _parse("--stack-learners").stack_learners and not _parse().stack_learners
    stacked = replace(cfg, compile_step=False, stack_learners=True)
    assert build_arm("gtn", stacked, ds, progress=False).trainer.stack_learners
    with pytest.raises(ValueError, match="stack_learners and compile_step"):
        replace(stacked, compile_step=True)
    with pytest.raises(ValueError, match="stack_learners must be True or False"):
        GTNConfig(stack_learners=1)


def test_cli_bad_value_is_a_clear_error(capsys, tmp_path):
    assert main(["train", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "--inner-steps must be a positive integer, got 0" in capsys.readouterr().err  # the flag, not the field


def test_cli_missing_data_is_a_clear_error(capsys, tmp_path):
    rc = main(["train", "--quick", "--data-root", str(tmp_path / "none"), "--no-download", "--out", str(tmp_path)])
    assert rc == 2 and "train-images-idx3-ubyte" in capsys.readouterr().err


@pytest.mark.parametrize("parallel", [True, False])
def test_cli_train_smoke(data_root, tmp_path, parallel):
    torch.manual_seed(0)
    rc = main(["train", "--quick", "--data-root", str(data_root), "--no-download", "--out", str(tmp_path),
               "--steps", "2", "--inner-batch", "20", "--outer-batch", "20", "--outer-steps", "2",
               "--eval-learners", "2", "--teacher-hidden", "16", "--teacher-channels", "4",
               "--teacher-conv-channels", "4", "--arch-scale", "0.1",
               "--parallel-arms" if parallel else "--no-parallel-arms"])
    assert rc == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["parallel_arms"] is parallel
    for arm in ("gtn", "real"):
        assert summary["arms"][arm]["outer_iterations"] == 2
        assert len(summary["arms"][arm]["meta_loss"]) == 2
        assert (tmp_path / f"{arm}_checkpoint.pt").exists()
        assert 0 <= summary["arms"][arm]["test_accuracy_mean"] <= 1
    assert (tmp_path / "curriculum.png").stat().st_size > 100
    assert (tmp_path / "samples.png").stat().st_size > 100
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_arch_scale_shrinks_widths_with_a_floor_on_the_hidden_layer():
    from gtn_edu.experiment import build_arch_space
    space = build_arch_space(replace(GTNConfig(), arch_scale=0.25), (1, 28, 28))
    assert space.channel_ranges == ((8, 32), (16, 64))
    assert space.hidden_range == (32, 64)  # not (16, 64): narrow FC layers cap few-step accuracy
    mlp = build_arch_space(replace(GTNConfig(), arch="mlp", arch_scale=0.5), (1, 28, 28))
    assert mlp.width_range == (32, 128)


def _parse(*argv):
    from gtn_edu.train_options import config_of as _config
    return _config(build_parser().parse_args(["train", *argv]))


def test_each_dataset_starts_from_its_own_paper_table():
    cifar = _parse("--dataset", "cifar10")  # Table 3, not MNIST's Table 2
    assert (cifar.inner_steps, cifar.outer_lr, cifar.adam_betas, cifar.adam_eps, cifar.outer_batch,
            cifar.meta_loss_every, cifar.arch) == (128, 0.002, (0.9, 0.9), 1e-5, 256, 16, "cifar")
    quick_cifar = _parse("--dataset", "cifar10", "--quick")  # --quick shrinks Table 3
    assert quick_cifar.inner_steps < 128 and quick_cifar.augment and quick_cifar.bn_stats == "real"
    assert _parse("--dataset", "cifar10", "--quick", "--bn-stats", "synthetic").bn_stats == "synthetic"
    assert _parse().inner_steps == 32 and _parse("--dataset", "fashion-mnist").dataset == "fashion-mnist"
    assert _parse("--dataset", "cifar10", "--steps", "64").inner_steps == 64  # options still override


def test_config_validates_itself_with_its_datasets_classes():
    with pytest.raises(ValueError, match="multiple of the 10 classes of cifar10"):
        replace(GTNConfig(dataset="cifar10"), inner_batch=25)
    with pytest.raises(ValueError, match="dataset must be one of"):
        GTNConfig(dataset="imagenet")


def test_cuda_without_cuda_is_a_one_line_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device cpu" in err and "Traceback" not in err
    assert main(["train", "--device", "gpu0", "--out", str(tmp_path)]) == 2
    assert "use cpu or cuda" in capsys.readouterr().err


TINY = ["--quick", "--no-download", "--steps", "2", "--inner-batch", "20", "--outer-batch", "20",
        "--outer-steps", "4", "--eval-learners", "2", "--teacher-hidden", "16", "--teacher-channels", "4",
        "--teacher-conv-channels", "4", "--arch-scale", "0.1", "--no-parallel-arms", "--checkpoint-every", "2"]


def test_cli_resume_continues_an_interrupted_run_exactly(data_root, tmp_path, monkeypatch, capsys):
    from gtn_edu.meta import MetaTrainer

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert main(["train", *TINY, "--data-root", str(data_root), "--out", str(whole)]) == 0
    step = MetaTrainer.outer_step

    def interrupted(self):  # Ctrl-C during the GTN arm's 4th iteration, before it changes anything
        if self.iteration == 3:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(MetaTrainer, "outer_step", interrupted)
    assert main(["train", *TINY, "--data-root", str(data_root), "--out", str(cut)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert torch.load(cut / "gtn_checkpoint.pt", weights_only=True)["iteration"] == 3
    monkeypatch.setattr(MetaTrainer, "outer_step", step)
    # options that would change the run are refused, not silently applied
    assert main(["train", "--resume", str(cut), "--steps", "3"]) == 2
    assert "inner_steps (saved 2, given 3)" in capsys.readouterr().err
    assert main(["train", "--resume", str(cut), "--data-root", str(data_root), "--no-download",
                 "--no-parallel-arms"]) == 0
    a, b = (json.loads((d / "summary.json").read_text())["arms"] for d in (whole, cut))
    for arm in ("gtn", "real"):
        assert b[arm]["meta_loss"] == a[arm]["meta_loss"] and b[arm]["test_accuracies"] == a[arm]["test_accuracies"]
        ta = torch.load(whole / f"{arm}_checkpoint.pt", weights_only=True)["state_dict"]["teacher"]
        tb = torch.load(cut / f"{arm}_checkpoint.pt", weights_only=True)["state_dict"]["teacher"]
        assert all(torch.equal(ta[k], tb[k]) for k in ta)
    logged = [json.loads(line)["iteration"] for line in (cut / "gtn_log.jsonl").read_text().splitlines()]
    assert logged == [0, 1, 2, 3]


def test_partial_cifar10_loads_proportionally_and_says_so(data_root, capsys):
    if not (data_root / "cifar-10-batches-py-partial").is_dir():
        msg = "no partial CIFAR-10 copy beside MNIST (CI lays ../shared/data with one)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    ds = load_dataset("cifar10", data_root, download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3600, 400, 1000)  # 45k / 5k / 10k, scaled
    assert ds.image_shape == (3, 32, 32) and ds.num_classes == 10
    per_channel = ds.train.x.transpose(0, 1).flatten(1)
    assert per_channel.mean(1).abs().max() < 1e-4 and (per_channel.std(1) - 1).abs().max() < 1e-3
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "PARTIAL" in line]) == 1 and "4000 train" in err


def test_datasets_name_their_classes(data_root, mnist):
    from gtn_edu.data import CLASS_NAMES, DATASETS
    assert set(CLASS_NAMES) == set(DATASETS) and all(len(v) == 10 for v in CLASS_NAMES.values())
    assert mnist.classes[7] == "7"
    assert CLASS_NAMES["cifar10"][3] == "cat" and CLASS_NAMES["fashion-mnist"][9] == "ankle boot"


def test_corrupt_partial_cifar10_names_the_files(tmp_path):
    folder = tmp_path / "cifar-10-batches-py-partial"
    folder.mkdir()
    (folder / "data_batch_1.first4000").write_bytes(b"not a pickle")
    with pytest.raises(DataNotFoundError, match="data_batch_1") as err:
        load_dataset("cifar10", tmp_path, download=False)
    assert "does not load" in str(err.value)


def test_cifar_runs_augment_the_real_batches_with_black_padding(data_root):
    from gtn_edu.augment import RandomCropFlip
    from gtn_edu.experiment import build_arm

    assert _parse("--dataset", "cifar10").augment and not _parse().augment
    ds = load_dataset("cifar10", data_root, download=False)
    cfg = replace(quick(_parse("--dataset", "cifar10")), inner_steps=2, inner_batch=10, teacher_hidden=8,
                  teacher_channels=2, teacher_conv_channels=2, arch_scale=0.05)
    aug = build_arm("real", cfg, ds, progress=False).trainer.objective.augment
    assert isinstance(aug, RandomCropFlip)
    black = (-ds.mean / ds.std).tolist()  # pixel value 0 after normalisation
    assert aug.fill.tolist() == pytest.approx(black)
    assert build_arm("real", replace(cfg, augment=False), ds, progress=False).trainer.objective.augment is None


def _live_workers(parent: int) -> list[int]:
    """Process ids of `parent`'s multiprocessing workers that are alive (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and b"spawn_main" in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the arm workers")
def test_killing_the_cli_stops_its_arm_workers_with_a_checkpoint(data_root, tmp_path):
    """`kill PID` reaches only the CLI; its two arm workers notice, save their checkpoints and exit."""
    cmd = [sys.executable, "-m", "gtn_edu", "train", *TINY, "--parallel-arms", "--outer-steps", "100000",
           "--checkpoint-every", "0", "--data-root", str(data_root), "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        logs = [tmp_path / f"{kind}_log.jsonl" for kind in ("gtn", "real")]
        while not all(p.exists() and p.stat().st_size > 0 for p in logs):  # both arms are training
            assert proc.poll() is None and time.monotonic() < deadline, "the arms did not start"
            time.sleep(0.5)
        workers = _live_workers(proc.pid)
        assert len(workers) == 2
        assert not any((tmp_path / f"{kind}_checkpoint.pt").exists() for kind in ("gtn", "real"))
        proc.terminate()  # SIGTERM to the CLI alone
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "arm workers still running after the CLI was killed"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
    for kind in ("gtn", "real"):  # each worker went through the Ctrl-C path: checkpoint at an iteration boundary
        ckpt = torch.load(tmp_path / f"{kind}_checkpoint.pt", weights_only=True)
        assert ckpt["iteration"] >= 1

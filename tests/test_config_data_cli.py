"""Configs, data loading and the `gtn-edu` command."""

import json
from dataclasses import replace

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


@pytest.mark.parametrize("field,value,match", [
    ("inner_steps", 0, "inner_steps must be a positive integer"),
    ("inner_steps", -3, "inner_steps must be a positive integer"),
    ("inner_batch", 64, "multiple of the 10 classes"),
    ("init_momentum", 1.5, "init_momentum"),
    ("curriculum", "random", "curriculum must be"),
    ("mode", "fast", "mode must be"),
    ("hyper_lr", 0.0, "hyper_lr must be > 0"),
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


def test_cli_bad_value_is_a_clear_error(capsys, tmp_path):
    assert main(["train", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "inner_steps must be a positive integer" in capsys.readouterr().err


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
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_arch_scale_shrinks_widths_with_a_floor_on_the_hidden_layer():
    from gtn_edu.experiment import build_arch_space
    space = build_arch_space(replace(GTNConfig(), arch_scale=0.25), (1, 28, 28))
    assert space.channel_ranges == ((8, 32), (16, 64))
    assert space.hidden_range == (32, 64)  # not (16, 64): narrow FC layers cap few-step accuracy
    mlp = build_arch_space(replace(GTNConfig(), arch="mlp", arch_scale=0.5), (1, 28, 28))
    assert mlp.width_range == (32, 128)

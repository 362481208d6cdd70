"""Every option of `gtn-edu train` and `gtn-edu rl` at its boundary values: exit 2, one line, no traceback (issue 23).

Most cases call `gtn_edu.cli.main` in this process (bad values are refused before any data
loads, so each takes milliseconds); a few run the real console entry point in a
subprocess to show that what a user sees is the same one line.
"""

import math
import subprocess
import sys

import pytest
import torch

from gtn_edu.cli import main

POSITIVE_INTS = ["--inner-steps", "--inner-batch", "--outer-batch", "--latent-dim", "--teacher-hidden",
                 "--teacher-channels", "--teacher-conv-channels", "--eval-learners", "--learners-per-step"]
NONNEGATIVE_INTS = ["--outer-steps", "--meta-loss-every", "--seed", "--checkpoint-every"]
POSITIVE_FLOATS = ["--outer-lr", "--hyper-lr", "--init-lr", "--adam-eps", "--arch-scale", "--grad-clip"]
CHOICES = ["--dataset", "--curriculum", "--mode", "--arch", "--bn-stats", "--outer-lr-schedule"]


def _train_cases():
    cases = []
    for flag in POSITIVE_INTS:
        cases += [([f"{flag}={v}"], v) for v in ("0", "-1", "nan", "inf", "abc", "2.5")]
    for flag in NONNEGATIVE_INTS:
        cases += [([f"{flag}={v}"], v) for v in ("-1", "nan", "abc", "2.5")]
    for flag in POSITIVE_FLOATS:
        cases += [([f"{flag}={v}"], v) for v in ("0", "-1", "nan", "inf", "-inf", "abc")]  # = : -inf is no option
    cases += [(["--init-momentum", v], v) for v in ("0", "1", "-0.5", "nan", "inf", "abc")]
    cases += [(["--adam-betas", *v.split()], v.split()[0]) for v in ("1 0.9", "-0.1 0.9", "nan 0.9")]
    cases += [(["--adam-betas", "0.9", "inf"], "inf")]
    cases += [(["--adam-betas", "0.9"], "--adam-betas")]  # one value of two
    cases += [([flag, "bogus"], "bogus") for flag in CHOICES]
    cases += [(["--time-limit", v], v) for v in ("-1", "nan", "abc")]
    cases += [(["--device", v], v) for v in ("meta", "xpu", "cpu:abc", "gpu0", "cuda:x")]
    cases += [(["--quick", "--outer-steps", "0"], "--outer-steps")]  # cosine schedule over 0 steps
    cases += [(["--inner-batch", "25"], "25")]                     # not a multiple of the 10 classes
    cases += [(["--stack-learners", "--compile-step"], "--compile-step")]
    cases += [(["--no-such-option"], "--no-such-option")]
    return cases


RL_CASES = (
    [([flag, v], v) for flag in ("--outer-steps", "--num-envs", "--max-steps", "--eval-learners")
     for v in ("0", "-1", "abc", "2.5")]
    + [(["--outer-lr", v], v) for v in ("0", "-1", "nan", "inf", "abc")]
    + [([flag, "-1"], "-1") for flag in ("--a2c-env-steps", "--seed", "--checkpoint-every")]
    + [(["--device", v], v) for v in ("meta", "xpu", "cpu:abc", "gpu0")]
    + [(["--tiny", "--paper"], "--paper")]
)


def _one_line_error(capsys, run, fragment):
    """Run `run()`; it must end with exit 2 and print exactly one line on stderr, naming `fragment`."""
    try:
        rc = run()
    except SystemExit as stop:  # argparse's own errors
        rc = stop.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in err, err
    assert fragment.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize("argv,fragment", _train_cases(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_train_options_at_their_boundaries(argv, fragment, capsys, tmp_path):
    _one_line_error(capsys, lambda: main(["train", *argv, "--out", str(tmp_path / "run")]), fragment)
    assert not (tmp_path / "run" / "run.json").exists()  # nothing of a run was started


@pytest.mark.parametrize("argv,fragment", RL_CASES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_rl_options_at_their_boundaries(argv, fragment, capsys, tmp_path):
    _one_line_error(capsys, lambda: main(["rl", *argv, "--out", str(tmp_path / "run")]), fragment)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("command", ["train", "rl"])
def test_out_that_cannot_be_a_folder(command, capsys, tmp_path):
    """--out that is a file, under a file, or where nothing can be written (issue 23, item 7)."""
    afile = tmp_path / "a_file"
    afile.write_text("")
    extra = ["--tiny", "--no-figures"] if command == "rl" else []
    for out in (afile, afile / "below", "/proc/gtn_edu_cannot_write_here"):
        _one_line_error(capsys, lambda out=out: main([command, *extra, "--out", str(out)]), str(out))


def test_cuda_and_mps_that_are_absent(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _one_line_error(capsys, lambda: main(["train", "--device", "cuda", "--out", str(tmp_path)]), "--device cpu")
    _one_line_error(capsys, lambda: main(["rl", "--device", "cuda", "--out", str(tmp_path)]), "cuda")


def test_numbers_in_the_library_are_checked_too():
    """The same ranges hold for the classes a researcher builds directly."""
    from gtn_edu import ArchSpace, Curriculum, MetaTrainer, RealData, UnrolledSGD
    from gtn_edu.rl import CartPoleConfig

    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="lr must be a finite number > 0"):
            UnrolledSGD(lr=bad)
    teacher = RealData(torch.randn(20, 1, 4, 4), torch.randint(10, (20,)))
    pieces = (teacher, Curriculum(2, 10, 10, variant="none"), UnrolledSGD(), ArchSpace.mlp((1, 4, 4), 10))
    loss = lambda learner, states: (learner.meta_loss(states[-1], torch.randn(4, 1, 4, 4), torch.zeros(4).long()), {})
    for kwargs, match in [({"grad_clip": -1.0}, "grad_clip"), ({"grad_clip": 0.0}, "grad_clip"),
                          ({"grad_clip": math.nan}, "grad_clip"), ({"outer_lr": math.inf}, "outer_lr"),
                          ({"hyper_lr": -0.1}, "hyper_lr"), ({"betas": (0.9, 1.5)}, r"betas\[1\]"),
                          ({"eps": 0.0}, "eps"), ({"meta_loss_every": -1}, "meta_loss_every")]:
        with pytest.raises(ValueError, match=match):
            MetaTrainer(*pieces, loss, **kwargs)
    for field, bad in [("outer_lr", math.inf), ("gamma", math.nan), ("init_momentum", 1.0), ("value_lr", -1.0),
                       ("seed", -1), ("weight_norm", 1)]:
        with pytest.raises(ValueError, match=field):
            CartPoleConfig.sized("tiny", **{field: bad})


@pytest.mark.parametrize("argv,fragment", [
    (["train", "--grad-clip", "-1"], "--grad-clip must be a finite number > 0, got -1.0"),
    (["train", "--outer-lr", "inf"], "--outer-lr must be a finite number > 0, got inf"),
    (["train", "--device", "meta"], "--device meta"),
    (["train", "--steps", "abc"], "invalid int value: 'abc'"),
    (["rl", "--outer-lr", "inf"], "--outer-lr must be a finite number > 0, got inf"),
    (["rl", "--device", "cpu:abc"], "cpu:abc"),
])
def test_the_console_command_prints_one_line(argv, fragment, tmp_path):
    """The real entry point, as a user runs it: exit 2 and one line on stderr, nothing on stdout."""
    proc = subprocess.run([sys.executable, "-m", "gtn_edu", *argv, "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout.strip()


def test_help_shows_each_default_once_and_the_version(capsys):
    """Issue 25, item 4: no "(default 32) (default: None)", no flag listed twice, and `--version`."""
    import gtn_edu

    for command in ("train", "rl"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "(default: None)" not in text and "(default: False)" not in text
        options = [line.split()[0].rstrip(",") for line in text.splitlines() if line.startswith("  --")]
        assert len(options) == len(set(options))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "T, SGD steps of the learner on synthetic data (default 32; --quick: 4; cifar10: 128; cifar10 --quick: 8)" \
        in text
    assert text.count("--outer-steps OUTER_STEPS") == 2  # once in the usage line, once in the list
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith(f"gtn-edu {gtn_edu.__version__}")

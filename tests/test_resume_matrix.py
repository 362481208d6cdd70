"""Resume matrix (issue 23): every way a resume can go wrong is refused; every other one continues bit for bit.

A tiny `gtn-edu train` run (MNIST, T=2, batch 20, 4 outer iterations) is run whole once;
interrupted copies of it are then resumed with a changed setting, a missing arm, a damaged
file, another run's checkpoint, a signal in the middle of an outer iteration. A refusal is
exit 2 with one line naming the file or the setting; a continuation must give the whole
run's meta-losses, test accuracies and teacher weights exactly.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from gtn_edu.checkpoint_io import atomic_save
from gtn_edu.cli import main
from gtn_edu.meta import Callback, MetaTrainer

TINY = ["--quick", "--no-download", "--steps", "2", "--inner-batch", "20", "--outer-batch", "20",
        "--outer-steps", "4", "--eval-learners", "2", "--teacher-hidden", "16", "--teacher-channels", "4",
        "--teacher-conv-channels", "4", "--arch-scale", "0.1", "--no-parallel-arms", "--checkpoint-every", "2"]


def _train(data_root, out, *extra):
    return main(["train", *TINY, "--data-root", str(data_root), "--out", str(out), *extra])


def _resume(data_root, folder, *extra):
    return main(["train", "--resume", str(folder), "--data-root", str(data_root), *extra])


def _refused(capsys, rc, *fragments):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def _same_run(a, b, arms=("gtn", "real")):
    sa, sb = (json.loads((d / "summary.json").read_text())["arms"] for d in (a, b))
    assert sorted(sb) == sorted(arms)
    for arm in arms:
        assert sb[arm]["meta_loss"] == sa[arm]["meta_loss"], arm
        assert sb[arm]["test_accuracies"] == sa[arm]["test_accuracies"], arm
        ta, tb = (torch.load(d / f"{arm}_checkpoint.pt", weights_only=True)["state_dict"]["teacher"] for d in (a, b))
        assert all(torch.equal(ta[k], tb[k]) for k in ta), arm


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    """The whole tiny run (both arms), and one stopped by Ctrl-C at the start of the GTN arm's 4th iteration."""
    base = tmp_path_factory.mktemp("resume")
    whole, cut = base / "whole", base / "cut"
    assert _train(data_root, whole) == 0
    step = MetaTrainer.outer_step

    def interrupted(self):
        if self.iteration == 3:
            raise KeyboardInterrupt
        return step(self)

    MetaTrainer.outer_step = interrupted
    try:
        assert _train(data_root, cut) == 130
    finally:
        MetaTrainer.outer_step = step
    assert torch.load(cut / "gtn_checkpoint.pt", weights_only=True)["iteration"] == 3
    assert not (cut / "real_checkpoint.pt").exists()  # the real arm had not started
    return whole, cut


@pytest.fixture(scope="module")
def solo(data_root, tmp_path_factory):
    """The whole tiny run of the GTN arm alone (--no-baseline)."""
    whole = tmp_path_factory.mktemp("solo") / "whole"
    assert _train(data_root, whole, "--no-baseline") == 0
    return whole


def _copy(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("flag,fragment", [
    (["--steps", "3"], "inner_steps (saved 2, given 3)"),
    (["--seed", "1"], "seed (saved 0, given 1)"),
    (["--outer-lr", "0.05"], "outer_lr (saved 0.03, given 0.05)"),
    (["--outer-steps", "8"], "outer_steps (saved 4, given 8)"),
    (["--no-baseline"], "--no-baseline (the run trains the arms gtn, real)"),
    (["--parallel-arms"], "--parallel-arms (the run has parallel_arms=False)"),
    (["--device", "cpu:0"], "--device cpu:0 (the run's: cpu)"),
    (["--out", "elsewhere"], "continues in its own folder"),
])
def test_a_setting_changed_at_resume_is_refused(runs, data_root, tmp_path, capsys, flag, fragment):
    folder = _copy(runs[1], tmp_path)
    before = (folder / "gtn_checkpoint.pt").read_bytes()
    _refused(capsys, _resume(data_root, folder, *flag), fragment)
    assert (folder / "gtn_checkpoint.pt").read_bytes() == before  # nothing was trained or written


def test_a_resume_with_agreeing_flags_continues_exactly(runs, data_root, tmp_path):
    folder = _copy(runs[1], tmp_path)
    assert _resume(data_root, folder, "--quick", "--no-parallel-arms", "--steps", "2", "--device", "cpu") == 0
    _same_run(runs[0], folder)


@pytest.mark.parametrize("arm", ["gtn", "real"])
def test_an_arm_without_checkpoint_starts_over_and_matches(runs, data_root, tmp_path, arm):
    """An arm whose checkpoint is missing (not started, or deleted) trains from its seed: the same numbers."""
    folder = _copy(runs[0], tmp_path)
    (folder / f"{arm}_checkpoint.pt").unlink()
    assert _resume(data_root, folder) == 0
    _same_run(runs[0], folder)


def test_a_no_baseline_run_resumes_without_the_flag_and_without_a_new_arm(solo, data_root, tmp_path, monkeypatch):
    """Issue 23, item 4: the arms (and the thread layout) come from the run folder, not from the flags."""
    whole, cut = solo, tmp_path / "cut"
    step = MetaTrainer.outer_step

    def interrupted(self):
        if self.iteration == 2:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(MetaTrainer, "outer_step", interrupted)
    assert _train(data_root, cut, "--no-baseline") == 130
    monkeypatch.setattr(MetaTrainer, "outer_step", step)
    torch.set_num_threads(1)  # another thread count in this process: the run's own must come back
    try:
        assert _resume(data_root, cut) == 0
    finally:
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    _same_run(whole, cut, arms=("gtn",))
    assert not (cut / "real_checkpoint.pt").exists()


def test_another_runs_checkpoint_or_an_extra_arm_is_refused(runs, data_root, tmp_path, capsys):
    other = tmp_path / "other"
    assert _train(data_root, other, "--seed", "1", "--no-baseline", "--outer-steps", "2") == 0
    capsys.readouterr()
    folder = _copy(runs[1], tmp_path)
    shutil.copy(other / "gtn_checkpoint.pt", folder / "gtn_checkpoint.pt")  # same arm, another run
    _refused(capsys, _resume(data_root, folder), "gtn_checkpoint.pt belongs to another run",
             "seed (checkpoint 1, this run 0)")
    solo = _copy(other, tmp_path, "solo")  # a --no-baseline run with a real arm's checkpoint beside it
    shutil.copy(runs[0] / "real_checkpoint.pt", solo / "real_checkpoint.pt")
    _refused(capsys, _resume(data_root, solo), "real_checkpoint.pt is not an arm of this run")


def test_another_dataset_is_refused(runs, data_root, tmp_path, capsys):
    folder = _copy(runs[1], tmp_path)
    manifest = json.loads((folder / "run.json").read_text())
    manifest["data"] = "0123456789abcdef"  # as if the run had trained on other files
    (folder / "run.json").write_text(json.dumps(manifest))
    _refused(capsys, _resume(data_root, folder), "differ from the run's", "0123456789abcdef")


@pytest.mark.parametrize("damage", ["truncate", "empty", "random", "text"])
@pytest.mark.parametrize("name", ["gtn_checkpoint.pt", "run.json"])
def test_a_damaged_file_is_named(runs, data_root, tmp_path, capsys, damage, name):
    folder = _copy(runs[1], tmp_path)
    path = folder / name
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "empty": b"", "random": os.urandom(4000),
                      "text": b"not a checkpoint\n"}[damage])
    _refused(capsys, _resume(data_root, folder), name)


def test_a_missing_manifest_is_named(runs, data_root, tmp_path, capsys):
    folder = _copy(runs[1], tmp_path)
    (folder / "run.json").unlink()
    _refused(capsys, _resume(data_root, folder), "no run.json")


def test_a_fresh_run_into_another_runs_folder_is_refused(runs, data_root, tmp_path, capsys):
    """The issue's repro: a one-arm run into a two-arm run's folder (stopped at once) used to train beside it."""
    folder = _copy(runs[0], tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    rc = _train(data_root, folder, "--no-baseline", "--seed", "1", "--outer-lr", "0.05", "--time-limit", "0")
    _refused(capsys, rc, "already holds a run", f"gtn-edu train --resume {folder}")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_checkpoint_writes_leave_no_temporary_and_stale_ones_are_removed(runs, data_root, tmp_path, monkeypatch,
                                                                       capsys):
    folder = _copy(runs[1], tmp_path)
    (folder / "gtn_checkpoint.pt.tmp").write_bytes(b"half a checkpoint")  # what a crash mid-write left
    real_save = torch.save

    def crash(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": 1}, folder / "probe.pt")
    assert not (folder / "probe.pt.tmp").exists() and not (folder / "probe.pt").exists()
    monkeypatch.setattr(torch, "save", real_save)
    assert _resume(data_root, folder) == 0
    assert "removed" in capsys.readouterr().out and not list(folder.glob("*.tmp"))
    _same_run(runs[0], folder)


def test_a_signal_in_mid_iteration_stops_after_it_and_resumes_exactly(solo, data_root, tmp_path, monkeypatch,
                                                                      capsys):
    """SIGTERM (issue 23, item 9) or Ctrl-C while an outer iteration runs: it finishes, is saved, the run stops."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        folder = tmp_path / sig.name

        def signalled(self, sig=sig, step=MetaTrainer.outer_step):
            if self.iteration == 1:  # in the middle of an iteration: after the learner's inner steps
                self.callbacks.append(_KillDuringInnerStep(sig))
            return step(self)

        monkeypatch.setattr(MetaTrainer, "outer_step", signalled)
        assert _train(data_root, folder, "--no-baseline") == 130
        assert "stopping after this outer iteration" in capsys.readouterr().err
        monkeypatch.undo()
        assert torch.load(folder / "gtn_checkpoint.pt", weights_only=True)["iteration"] == 2  # iteration 1 finished
        assert _resume(data_root, folder) == 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        _same_run(solo, tmp_path / sig.name, arms=("gtn",))


class _KillDuringInnerStep(Callback):
    """Sends `sig` to this process during the first inner step it sees (once)."""

    def __init__(self, sig):
        self.sig, self.sent = sig, False

    def on_inner_step(self, trainer, t, state, inner_loss):
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.sig)


@pytest.mark.parametrize("command", ["train", "rl"])
def test_kill_of_a_single_process_run_saves_its_checkpoint(data_root, tmp_path, command):
    """`kill PID` of a one-process run (`--no-parallel-arms`, `rl`): exit 130 with a checkpoint, not a lost run."""
    if command == "train":
        argv = ["train", *TINY, "--no-baseline", "--outer-steps", "100000", "--checkpoint-every", "0",
                "--data-root", str(data_root)]
        log, ckpt = tmp_path / "gtn_log.jsonl", tmp_path / "gtn_checkpoint.pt"
    else:
        argv = ["rl", "--tiny", "--no-figures", "--outer-steps", "100000", "--checkpoint-every", "100000"]
        log, ckpt = tmp_path / "log.jsonl", tmp_path / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-m", "gtn_edu", *argv, "--out", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (log.exists() and log.stat().st_size > 0):
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        assert not ckpt.exists()
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err, err
    saved = torch.load(ckpt, weights_only=True)
    assert saved["iteration"] >= 1 and len(saved["history"]) == saved["iteration"]


# ---- gtn-edu rl: the same promises for CartPole runs ----

def _rl(out, *extra):
    return main(["rl", "--tiny", "--no-figures", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def rl_whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("rl") / "whole"
    assert _rl(out) == 0
    return out


def _same_rl(a, b):
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sb["final"] == sa["final"] and sb["gtn_curve"] == sa["gtn_curve"]
    ta, tb = (torch.load(d / "checkpoint.pt", weights_only=True)["state_dict"]["teacher"] for d in (a, b))
    assert all(torch.equal(ta[k], tb[k]) for k in ta)


def test_rl_refuses_another_runs_folder_and_a_damaged_checkpoint(rl_whole, tmp_path, capsys):
    folder = _copy(rl_whole, tmp_path)
    _refused(capsys, _rl(folder, "--seed", "3"), "already holds a run", "gtn-edu rl --resume ")
    ckpt = folder / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    _refused(capsys, main(["rl", "--resume", "--no-figures", "--out", str(folder)]), "checkpoint.pt is damaged")


def test_rl_signal_in_mid_iteration_then_resume_is_exact(rl_whole, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "cut"

    def signalled(self, step=MetaTrainer.outer_step):
        if self.iteration == 1:
            self.callbacks.append(_KillDuringInnerStep(signal.SIGTERM))
        return step(self)

    monkeypatch.setattr(MetaTrainer, "outer_step", signalled)
    assert _rl(folder) == 130
    assert "stopping after this outer iteration" in capsys.readouterr().err
    monkeypatch.undo()
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["iteration"] == 2
    assert main(["rl", "--resume", "--no-figures", "--out", str(folder)]) == 0
    _same_rl(rl_whole, folder)

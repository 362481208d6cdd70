"""A long run from the command line: the folder it owns, a device that works, a clean stop.

`gtn-edu train` and `gtn-edu rl` write everything of a run into one folder (`--out`). The
first file of a `train` run is `run.json`, its *manifest*: the config, the arms, a
fingerprint of the dataset, the device and the thread layout, everything that decides the
numbers. A resume takes all of that from the manifest, so it cannot mix two runs:

* a fresh run refuses a folder that already holds a run (a manifest or a checkpoint);
* `--resume` refuses a flag that disagrees with the manifest, a dataset whose fingerprint
  differs, and a checkpoint whose config, arm or dataset is not the manifest's
  (`MetaTrainer.load` compares them: `checkpoint_io.py`);
* a checkpoint write cut short by a crash leaves a `*.pt.tmp`, which the next run removes.

`check_device` runs one small computation on a device before a run depends on it, and
`StopOnSignal` stops a run on Ctrl-C or `kill PID` at the end of the outer iteration in
flight, with a checkpoint from which the resumed run repeats the uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path

import torch

from .checkpoint_io import _plain
from .meta import Callback

__all__ = ["MANIFEST", "OneDefaultHelp", "writable_folder", "refuse_other_run", "write_manifest", "read_manifest",
           "differences", "with_flags", "remove_stale_temporaries", "check_device", "StopOnSignal", "RunKilled"]

MANIFEST = "run.json"
"""The manifest's file name in a run folder."""
RUN_FILES = (MANIFEST, "*_checkpoint.pt", "checkpoint.pt")
"""Files that mark a folder as holding a run."""


class OneDefaultHelp(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with "(default: X)" only where the help does not state a default itself, never for None or False."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def writable_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Make the folder `path` (and its parents) and check that a file can be written in it.

    Raises:
        ValueError: naming `flag`, the folder and why (a file in the way, no permission, ...).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise ValueError(f"{flag} {path}: cannot write a run folder there ({why}: {err.filename or path}); give "
                         "a folder you can write, not a file or a path under one") from None
    return path


def refuse_other_run(folder: Path, resume_hint: str) -> None:
    """Raise ValueError if `folder` already holds a run: a fresh run never trains beside another's files."""
    found = sorted({p.name for pattern in RUN_FILES for p in folder.glob(pattern)})
    if found:
        raise ValueError(f"{folder} already holds a run ({', '.join(found)}); continue it with `{resume_hint}`, "
                         "or give another --out (or delete those files to start over there)")


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write `manifest` as `folder/run.json` (atomically)."""
    path = folder / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)
    return path


def read_manifest(folder: Path) -> dict:
    """The manifest of the run in `folder`; ValueError naming the file if it is missing or unreadable."""
    path = folder / MANIFEST
    if not path.exists():
        raise ValueError(f"--resume {folder}: no {MANIFEST} there, so nothing says which run to continue; give the "
                         "--out folder of a run started by this version of gtn-edu, or start a new run")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"--resume {folder}: {path} is damaged ({type(err).__name__}: {err}); restore it, or "
                         "start a new run in another folder") from None
    if not isinstance(manifest, dict) or "config" not in manifest or "arms" not in manifest:
        raise ValueError(f"--resume {folder}: {path} is not a gtn-edu run manifest (no config or arms); restore "
                         "it, or start a new run in another folder")
    return manifest


def with_flags(message: str, names, prefix: str = "") -> str:
    """`message` with each config field name in `names` (after `prefix`, e.g. "CartPoleConfig.") as its flag."""
    pattern = re.escape(prefix) + r"\b(" + "|".join(map(re.escape, names)) + r")\b"
    return re.sub(pattern, lambda m: "--" + m.group(1).replace("_", "-"), message)


def differences(saved: dict, given: dict) -> list[str]:
    """`"key (saved a, given b)"` for each key of `given` whose value differs from `saved`'s."""
    return [f"{k} (saved {_plain(saved.get(k))!r}, given {_plain(v)!r})" for k, v in given.items()
            if _plain(saved.get(k)) != _plain(v)]


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the `*.pt.tmp` files a crash during a checkpoint write left in `folder`; return them."""
    stale = sorted(folder.glob("*.pt.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def check_device(name: str) -> torch.device:
    """The torch device `name`, after one small computation on it; ValueError naming what to use if it fails."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"--device {name!r} is not a device torch knows ({err}); use cpu or cuda") from None
    if dev.type == "meta":
        raise ValueError(f"--device {name}: meta tensors hold no values, so nothing can train there; use cpu or cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise ValueError(f"--device {name}: CUDA is not available here ({why}); use --device cpu (add --quick for "
                         "a CPU-sized run)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: Apple's MPS backend is not available here; use --device cpu")
    try:
        ok = torch.ones(2, device=dev).add(1).sum().cpu().item() == 4.0
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a device it cannot use
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"--device {name}: torch cannot compute there ({first}); use cpu or cuda") from None
    if not ok:
        raise ValueError(f"--device {name}: a test sum came out wrong there; use cpu or cuda")
    return dev


class RunKilled(BaseException):
    """A second stop signal: the run ends at once, without saving the half-done outer iteration.

    Not a KeyboardInterrupt, so `MetaTrainer.fit` does not write the checkpoint: the one on
    disk (the last consistent state) stays.
    """


class StopOnSignal(Callback):
    """Stop a run cleanly on Ctrl-C (SIGINT) or `kill PID` (SIGTERM): at the end of the outer iteration in flight.

    Use it as a context manager around training and add it to the trainer's callbacks.
    While the trainer is inside an outer iteration, the first signal only asks for a stop;
    when the iteration has finished (weights, Adam, random streams and history all at the
    next iteration), `on_outer_step` raises KeyboardInterrupt and `MetaTrainer.fit` saves
    the checkpoint, so the resumed run repeats the uninterrupted one exactly. A signal
    outside training raises KeyboardInterrupt at once; a second signal raises `RunKilled`.
    Outside the main thread (where Python cannot install handlers) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, say=None) -> None:
        self.training, self.pending, self._previous = False, False, {}
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))

    def _handle(self, signum, frame) -> None:
        if self.pending:
            raise RunKilled(f"signal {signum} again: stopped without saving the iteration in flight")
        if not self.training:
            raise KeyboardInterrupt(f"signal {signum}")
        self.pending = True
        self.say(f"\ngtn-edu: {signal.Signals(signum).name}: stopping after this outer iteration, with its "
                 "checkpoint (send it again to stop at once, losing that iteration)")

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous, self.training = {}, False

    def on_inner_step(self, trainer, t, state, inner_loss) -> None:
        self.training = True

    def on_outer_step(self, trainer, record: dict) -> None:
        if self.pending:
            raise KeyboardInterrupt("stopped by a signal after a finished outer iteration")

    def on_fit_end(self, trainer) -> None:
        self.training = False
        if self.pending:  # the signal came during the last iteration: the final checkpoint is written
            raise KeyboardInterrupt("stopped by a signal")

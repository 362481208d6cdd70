"""The `gtn-edu` command.

    gtn-edu train --dataset mnist --quick --data-root ../shared/data --out runs/mnist

`train` meta-trains a GTN, meta-trains the real-data baseline the same way (learned lr
and momentum, same T and batch, as many outer iterations), reports the few-step test
accuracy of fresh learners trained on each, and writes figures and a JSON summary into
`--out`. Each dataset starts from its paper table (MNIST: Table 2, CIFAR-10: Table 3);
`--quick` shrinks it, and every `GTNConfig` field is also an option (`--inner-batch 64`).
Each arm keeps a checkpoint in `--out`, rewritten every `--checkpoint-every` iterations
and on Ctrl-C (arms in worker processes also when the CLI process is killed); `--resume
RUN_FOLDER` continues an interrupted run exactly.

`rl` runs the CartPole GTN of appendix H (`gtn_edu.rl.cli`; needs the `rl` extra).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import multiprocessing
import os
import re
import sys
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
import torch.distributed as dist

from . import __version__
from .config import CIFARConfig, GTNConfig, MNISTConfig, config_for, quick
from .data import DataNotFoundError, load_dataset
from .distributed import init_process_group, is_main, rank_and_world
from .evaluate import bn_images_for, few_step_accuracy
from .experiment import build_arm
from .meta import Callback, MetaLossDivergedError
from .runs import (
    MANIFEST,
    OneDefaultHelp,
    RunKilled,
    StopOnSignal,
    check_device,
    differences,
    read_manifest,
    refuse_other_run,
    remove_stale_temporaries,
    with_flags,
    writable_folder,
    write_manifest,
)
from .viz import class_images, curriculum_images, plot_curves, save_image_grid

__all__ = ["main", "build_parser"]

_ALIASES = {"inner_steps": "--steps"}


def _field_help() -> dict[str, str]:
    """Each GTNConfig field's help: the first sentence of its entry in the class docstring, and its defaults.

    The defaults are the MNIST table's, then what `--quick` and `--dataset cifar10` (and both) make
    of them where they differ, so `--help` shows each default once with the value a run will use.
    """
    docs, name = {}, None
    for line in inspect.getdoc(GTNConfig).split("Attributes:")[1].splitlines():
        if m := re.match(r" {4}(\w+): (.*)", line):
            name, docs[m.group(1)] = m.group(1), m.group(2)
        elif name and line.startswith(" " * 8):
            docs[name] += " " + line.strip()
    mnist, cifar = MNISTConfig(), CIFARConfig()  # each variant against what it changes
    tables = {"--quick": (quick(mnist), mnist), "cifar10": (cifar, mnist), "cifar10 --quick": (quick(cifar), cifar)}
    show = lambda v: " ".join(map(str, v)) if isinstance(v, tuple) else str(v)  # noqa: E731
    out = {}
    for f in dataclasses.fields(GTNConfig):
        where = "; ".join(f"{label}: {show(getattr(cfg, f.name))}" for label, (cfg, base) in tables.items()
                          if getattr(cfg, f.name) != getattr(base, f.name) and f.name != "dataset")
        sentence = re.split(r"(?<=[a-z)])\. ", docs.get(f.name, ""))[0].rstrip(".")
        out[f.name] = f"{sentence} (default {show(f.default)}" + (f"; {where})" if where else ")")
    return out


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per GTNConfig field (defaults left None so --quick can fill them)."""
    hints, helps = typing.get_type_hints(GTNConfig), _field_help()
    for f in dataclasses.fields(GTNConfig):
        flags = [f"--{f.name.replace('_', '-')}"] + ([_ALIASES[f.name]] if f.name in _ALIASES else [])
        kind, say = hints[f.name], helps[f.name].replace("%", "%%")
        if kind is bool:
            p.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=say)
        elif f.name == "adam_betas":
            p.add_argument(*flags, dest=f.name, type=float, nargs=2, default=None, help=say,
                           metavar=("BETA1", "BETA2"))
        else:
            typ = {int: int, float: float, str: str}.get(kind, float)
            p.add_argument(*flags, dest=f.name, type=typ, default=None, help=say)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): the message, and where the options are listed."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `gtn-edu`."""
    parser = _Parser(prog="gtn-edu", description="Generative Teaching Networks, for learning.")
    parser.add_argument("--version", action="version", version=f"gtn-edu {__version__} (torch {torch.__version__})")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="meta-train a GTN and compare it with tuned real data",
                       formatter_class=OneDefaultHelp)
    t.add_argument("--quick", action="store_true",
                   help="CPU-sized run (minutes): smaller generator and learners, fewer inner steps; see "
                        "config.QUICK_CHANGES (MNIST) and config.CIFAR_QUICK_CHANGES")
    t.add_argument("--data-root", default=None, help="dataset folder (else $GTN_EDU_DATA, else ~/.cache/gtn_edu)")
    t.add_argument("--no-download", action="store_true", help="never try to download the dataset")
    t.add_argument("--device", default=None,
                   help="cpu or cuda (default: cuda if available, else cpu; with --resume, the run's own)")
    t.add_argument("--out", default=None,
                   help="a new folder for logs, figures, checkpoints and summary (default runs/gtn; a folder that "
                        "holds another run is refused)")
    t.add_argument("--resume", default=None, metavar="RUN_FOLDER",
                   help="continue the run in this folder with the settings in its run.json (arms, config, "
                        "device, threads; a flag that disagrees is an error); it continues exactly where each "
                        "arm's checkpoint was written")
    t.add_argument("--checkpoint-every", type=int, default=50, metavar="N",
                   help="rewrite each arm's checkpoint every N outer iterations (0: only at the end and on Ctrl-C)")
    t.add_argument("--time-limit", type=float, default=None,
                   help="stop each arm's meta-training after this many seconds")
    t.add_argument("--no-baseline", action="store_true", help="skip the tuned real-data arm")
    t.add_argument("--parallel-arms", action=argparse.BooleanOptionalAction, default=None,
                   help="train the GTN and real-data arms side by side, one process each with its share of "
                        "the cores (default: yes on a CPU with at least 2 cores)")
    _add_config_options(t)
    from .rl.cli import add_parser as add_rl_parser  # `gtn-edu rl`: CartPole (needs the rl extra to run)

    add_rl_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    """The config fields given on the command line."""
    out = {f.name: getattr(args, f.name) for f in dataclasses.fields(GTNConfig) if getattr(args, f.name) is not None}
    if "adam_betas" in out:
        out["adam_betas"] = tuple(out["adam_betas"])
    return out


def _config(args: argparse.Namespace) -> GTNConfig:
    """The dataset's paper table, shrunk by --quick, with the options given; or a resumed run's own."""
    overrides = _overrides(args)
    if args.resume is not None:
        return _resumed_config(args, overrides)
    try:
        cfg = config_for(overrides.get("dataset", "mnist"))
        if args.quick:
            cfg = quick(cfg)
        return dataclasses.replace(cfg, **overrides)
    except ValueError as err:  # name the flags, not the config's fields
        raise ValueError(with_flags(str(err), [f.name for f in dataclasses.fields(GTNConfig)])) from None


def _resume_folder(args: argparse.Namespace) -> Path:
    path = Path(args.resume)
    return path.parent if path.suffix == ".pt" else path


def _resumed_config(args: argparse.Namespace, overrides: dict) -> GTNConfig:
    """The config in the resumed run's manifest; ValueError if a given option disagrees with it."""
    saved = read_manifest(_resume_folder(args))["config"]
    said = differences(saved, overrides)
    if said:
        raise ValueError(f"--resume continues a run with the settings it was started with, but these options differ: "
                         f"{', '.join(said)}. Leave them out, or start a new run without --resume.")
    try:
        return GTNConfig.from_dict(saved)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--resume {args.resume}: the config in {MANIFEST} is not valid ({err}); start a new run") \
            from None


def _run_settings(args: argparse.Namespace, n_arms: int) -> dict:
    """What else decides a run's numbers besides its config: arms, device, process and thread layout."""
    parallel = _parallel(args, n_arms)
    threads = max(1, (os.cpu_count() or 1) // n_arms) if parallel else torch.get_num_threads()
    return {"arms": ["gtn"] + ([] if args.no_baseline else ["real"]), "device": args.device, "quick": bool(args.quick),
            "parallel_arms": parallel, "threads": threads}


def _resumed_settings(args: argparse.Namespace, manifest: dict, device: str) -> dict:
    """The manifest's run settings; ValueError naming each flag given with --resume that disagrees."""
    said = []
    if args.no_baseline and manifest["arms"] != ["gtn"]:
        said.append(f"--no-baseline (the run trains the arms {', '.join(manifest['arms'])})")
    if args.quick and not manifest["quick"]:
        said.append("--quick (the run was started without it)")
    if args.parallel_arms is not None and args.parallel_arms != manifest["parallel_arms"]:
        said.append(f"--{'' if args.parallel_arms else 'no-'}parallel-arms (the run has "
                    f"parallel_arms={manifest['parallel_arms']})")
    if device != manifest["device"]:
        said.append(f"--device {device} (the run's: {manifest['device']})")
    if said:
        raise ValueError(f"--resume continues a run with the settings it was started with, but these options differ: "
                         f"{', '.join(said)}. Leave them out, or start a new run without --resume.")
    return {k: manifest[k] for k in ("arms", "device", "quick", "parallel_arms", "threads")}


class _StopWhenOrphaned(Callback):
    """In an arm's worker process: stop the run once the CLI process `parent` is gone.

    A terminal's Ctrl-C reaches every process of the group, but `kill PID` of the CLI reaches
    only the CLI: its workers would train on, unseen. After each outer iteration this
    callback checks the worker's parent; when the CLI is gone it raises KeyboardInterrupt,
    so the trainer saves its checkpoint (as on Ctrl-C) and `_train_arm` exits the worker.
    A callback, not a signal: a worker started from a background job ignores SIGINT.
    """

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def on_outer_step(self, trainer, record: dict) -> None:
        if os.getppid() != self.parent:
            raise KeyboardInterrupt


def _train_arm(kind: str, cfg: GTNConfig, data, args: argparse.Namespace, out: Path, data_key: str,
               threads: int | None = None, position: int | None = None, parent: int | None = None) -> dict:
    """Meta-train one arm, save its checkpoint (and the GTN's curriculum grid), score it on TEST.

    Runs in the CLI's process, or in a worker process of its own when arms run in parallel
    (then `data` is None and the worker loads the dataset itself, and `parent`, the CLI's
    process id, is watched: see `_StopWhenOrphaned`). `data_key` is the dataset's
    fingerprint, kept in the checkpoint so a resume on other data is refused.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if data is None:
        data = load_dataset(cfg.dataset, args.data_root, download=False, device=args.device)
    log, ckpt = out / f"{kind}_log.jsonl", out / f"{kind}_checkpoint.pt"
    stop = StopOnSignal()
    watch = [_StopWhenOrphaned(parent)] if parent is not None else []
    arm = build_arm(kind, cfg, data, device=args.device, log_path=log, callbacks=[*watch, stop])
    arm.trainer.run_info = {"arm": kind, "data": data_key}
    if args.resume is not None and ckpt.exists():
        arm.trainer.load(ckpt)  # refuses another run's checkpoint (config, arm, data), naming the fields
        # The log again holds exactly the checkpoint's iterations (an interrupted run may have logged more).
        if is_main():
            log.write_text("".join(json.dumps(r) + "\n" for r in arm.trainer.history))
    elif is_main():  # a new run, or an arm the interrupted run had not started
        log.unlink(missing_ok=True)
    remaining = max(0, cfg.outer_steps - arm.trainer.iteration)
    try:
        with stop:  # Ctrl-C or kill: stop after the outer iteration in flight, with its checkpoint
            arm.trainer.fit(remaining, desc=f"{kind} arm", time_limit=args.time_limit, position=position,
                            checkpoint=ckpt, checkpoint_every=args.checkpoint_every)
    except KeyboardInterrupt:
        if parent is not None and os.getppid() != parent:  # orphaned: the checkpoint is saved, nobody
            os._exit(130)                                   # waits for a result (the pool would block)
        raise
    if not is_main():  # under torchrun: rank 0 scores, draws and reports
        return {}
    hist = arm.trainer.history
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test,
                            n_learners=cfg.eval_learners, seed=cfg.seed,  # its own streams ("eval/...")
                            bn_images=bn_images_for(cfg.bn_stats, data.train))
    if kind == "gtn":
        save_image_grid(curriculum_images(arm.teacher, arm.curriculum), out / "curriculum.png")
        per_class = min(10, cfg.inner_steps * cfg.inner_batch // cfg.num_classes)
        save_image_grid(class_images(arm.teacher, arm.curriculum, per_class), out / "samples.png", nrow=per_class)
    return {"test_accuracy_mean": res.mean, "test_accuracy_std": res.std, "test_accuracies": res.accuracies,
            "outer_iterations": arm.trainer.iteration, "meta_train_seconds": sum(r["seconds"] for r in hist),
            "torch_threads": torch.get_num_threads(),
            "lr": arm.sgd.lr.detach().cpu().tolist(), "momentum": arm.sgd.momentum.detach().cpu().tolist(),
            "meta_loss": [r["meta_loss"] for r in hist], "summary": str(res)}


def _parallel(args: argparse.Namespace, n_arms: int) -> bool:
    """Run the arms side by side? `--parallel-arms`, else yes on a CPU with a core per arm."""
    if args.parallel_arms is not None:
        return args.parallel_arms and n_arms > 1
    return n_arms > 1 and torch.device(args.device).type == "cpu" and (os.cpu_count() or 1) >= n_arms


def train(args: argparse.Namespace) -> dict:
    """Run `gtn-edu train`; returns the summary it writes to `out/summary.json`."""
    _check_run_options(args)
    manifest = read_manifest(_resume_folder(args)) if args.resume is not None else None
    if args.device is None:  # the run's own device on a resume, else the best one here
        args.device = manifest["device"] if manifest else ("cuda" if torch.cuda.is_available() else "cpu")
    requested = args.device
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and "RANK" in os.environ:  # launched by torchrun
        args.device = str(init_process_group("gloo" if args.device == "cpu" else None))
        args.parallel_arms = False
    try:
        return _train(args, manifest, requested)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _check_run_options(args: argparse.Namespace) -> None:
    """The options that are not config fields: ranges, and what goes with --resume."""
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be an integer >= 0, got {args.checkpoint_every}")
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit >= 0):
        raise ValueError(f"--time-limit must be a finite number of seconds >= 0, got {args.time_limit}")
    if args.resume is not None and args.out is not None and \
            Path(args.out).resolve() != _resume_folder(args).resolve():
        raise ValueError(f"--resume {args.resume} continues in its own folder; leave out --out {args.out} (or give "
                         "the same folder)")


def _train(args: argparse.Namespace, manifest: dict | None, requested_device: str) -> dict:
    check_device(args.device)
    main = is_main()
    say = print if main else (lambda *a, **k: None)
    cfg = _config(args)
    if manifest is None:
        out = writable_folder(args.out if args.out is not None else "runs/gtn")
        if main:  # rank 0 alone: the others would see the manifest it writes
            refuse_other_run(out, f"gtn-edu train --resume {out}")
        run = _run_settings(args, 1 if args.no_baseline else 2)
        run["device"] = requested_device
    else:
        out = writable_folder(_resume_folder(args), "--resume")
        run = _resumed_settings(args, manifest, requested_device)
        for ckpt in sorted(out.glob("*_checkpoint.pt")):
            if ckpt.name.removesuffix("_checkpoint.pt") not in run["arms"]:
                raise ValueError(f"--resume {out}: {ckpt.name} is not an arm of this run (its arms: "
                                 f"{', '.join(run['arms'])}); move it away, or resume the run it belongs to")
    for stale in remove_stale_temporaries(out) if main else []:
        say(f"removed {stale}, left by a checkpoint write that was cut short")
    start = time.perf_counter()
    if not run["parallel_arms"]:  # the run's thread count from the start: normalising the data rounds with it
        torch.set_num_threads(run["threads"])
    data = load_dataset(cfg.dataset, args.data_root, download=not args.no_download, device=args.device)
    data_key = data.key
    if manifest is None:
        if main:
            write_manifest(out, {"version": 1, "config": cfg.to_dict(), **run, "data": data_key})
    elif manifest.get("data") != data_key:
        raise ValueError(f"--resume {out}: the {cfg.dataset} files under the data root differ from the run's (dataset "
                         f"fingerprint {data_key}, the run's {manifest.get('data')}); give the --data-root it was "
                         "started with")
    arms, parallel, threads = run["arms"], run["parallel_arms"], run["threads"]
    world = rank_and_world()[1]
    say(f"{cfg.dataset}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
        f"device {args.device}, T={cfg.inner_steps}, batch {cfg.inner_batch}, {cfg.outer_steps} outer steps"
        + (f", {cfg.learners_per_step} learner(s) per step on each of {world} processes" if world > 1 else "")
        + (f", arms in parallel ({len(arms)} processes)" if parallel else "")
        + (f"; resuming from {_resume_folder(args)}" if args.resume else ""))
    summary = {"config": cfg.to_dict(), "device": str(args.device), "quick": run["quick"],
               "resumed_from": str(_resume_folder(args)) if args.resume else None,
               "torch_threads": torch.get_num_threads(), "parallel_arms": parallel, "arms": {}}
    if parallel:
        # One process per arm, the cores split between them: on a small CPU two single-thread
        # processes get more done than one two-thread process (the learners' tensors are too
        # small for torch to keep two threads busy). The thread count stays fixed, so a rerun
        # repeats the numbers (a mid-run change alters float rounding, and the GTN's meta-
        # training amplifies it). Workers load the data again (seconds).
        del data
        ctx = multiprocessing.get_context("spawn")  # not fork: OpenMP thread pools do not survive it
        with ProcessPoolExecutor(len(arms), mp_context=ctx) as pool:
            futures = {kind: pool.submit(_train_arm, kind, cfg, None, args, out, data_key, threads, i, os.getpid())
                       for i, kind in enumerate(arms)}
            results = {kind: f.result() for kind, f in futures.items()}
    else:  # the thread count the run started with (a change alters float rounding)
        results = {kind: _train_arm(kind, cfg, data, args, out, data_key, threads) for kind in arms}
    if not main:
        return {}
    summary["world_size"] = world
    for kind in arms:
        res = results[kind]
        print(f"{kind:>4}: few-step TEST accuracy {res.pop('summary')} after {cfg.inner_steps} steps of batch "
              f"{cfg.inner_batch} ({res['outer_iterations']} outer iterations, {res['meta_train_seconds']:.0f} s)")
        summary["arms"][kind] = res
    try:
        plot_curves({k: v["meta_loss"] for k, v in summary["arms"].items()}, out / "learning_curve.png",
                    smooth=10, title=f"{cfg.dataset}: meta-loss (T={cfg.inner_steps})", logy=True)
    except ImportError as err:
        print(f"skipping learning_curve.png: {err}")
    summary["total_seconds"] = time.perf_counter() - start
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"done in {summary['total_seconds']:.0f} s; figures and summary in {out}/")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `gtn-edu` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            train(args)
        elif args.command == "rl":
            from .rl.cli import run as run_rl

            run_rl(args)
    except (DataNotFoundError, MetaLossDivergedError, ValueError, ImportError) as err:
        print(f"gtn-edu: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, RunKilled) as err:
        out = args.out or (args.resume or "runs/gtn")
        again = f"gtn-edu rl --resume --out {out}" if args.command == "rl" else f"gtn-edu train --resume {out}"
        held = "the last saved iteration" if isinstance(err, RunKilled) else "the last finished iteration"
        print(f"\ngtn-edu: interrupted; the checkpoints in {out}/ hold {held}. Continue with: {again}",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

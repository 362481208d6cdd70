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
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.distributed as dist

from . import __version__
from .data import DataNotFoundError, load_dataset
from .experiment import run_arm
from .export import export_run
from .fast.distributed import init_process_group, is_main, rank_and_world
from .meta import MetaLossDivergedError
from .runs import (
    OneDefaultHelp,
    RunKilled,
    check_device,
    read_manifest,
    refuse_other_run,
    remove_stale_temporaries,
    writable_folder,
    write_manifest,
)
from .train_options import (
    add_config_options,
    check_run_options,
    config_of,
    resume_folder,
    resumed_settings,
    run_settings,
)
from .viz import plot_curves

__all__ = ["main", "build_parser"]

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
    add_config_options(t)
    e = sub.add_parser("export", help="write a trained run's GTN data as a plain .npz file (and a PNG grid)")
    e.add_argument("run", metavar="RUN_DIR", help="the --out folder of a `gtn-edu train` run")
    e.add_argument("--out", default=None, help="the .npz file to write (default RUN_DIR/gtn_data.npz)")
    e.add_argument("--float16", action="store_true", help="store the images in float16 (about half the size)")
    e.add_argument("--data-root", default=None, help="dataset folder, to measure what the data teaches "
                                                        "(else $GTN_EDU_DATA)")
    from .rl.cli import add_parser as add_rl_parser  # `gtn-edu rl`: CartPole (needs the rl extra to run)

    add_rl_parser(sub)
    return parser


def train(args: argparse.Namespace) -> dict:
    """Run `gtn-edu train`; returns the summary it writes to `out/summary.json`."""
    check_run_options(args)
    manifest = read_manifest(resume_folder(args)) if args.resume is not None else None
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


def _train(args: argparse.Namespace, manifest: dict | None, requested_device: str) -> dict:
    check_device(args.device)
    main = is_main()
    say = print if main else (lambda *a, **k: None)
    cfg = config_of(args)
    if manifest is None:
        out = writable_folder(args.out if args.out is not None else "runs/gtn")
        if main:  # rank 0 alone: the others would see the manifest it writes
            refuse_other_run(out, f"gtn-edu train --resume {out}")
        run = run_settings(args, 1 if args.no_baseline else 2)
        run["device"] = requested_device
    else:
        out = writable_folder(resume_folder(args), "--resume")
        run = resumed_settings(args, manifest, requested_device)
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
        + (f"; resuming from {resume_folder(args)}" if args.resume else ""))
    summary = {"config": cfg.to_dict(), "device": str(args.device), "quick": run["quick"],
               "resumed_from": str(resume_folder(args)) if args.resume else None,
               "torch_threads": torch.get_num_threads(), "parallel_arms": parallel, "arms": {}}
    arm_options = dict(device=args.device, data_root=args.data_root, resume=args.resume is not None,
                       time_limit=args.time_limit, checkpoint_every=args.checkpoint_every)
    if parallel:
        # One process per arm, the cores split between them: on a small CPU two single-thread
        # processes get more done than one two-thread process (the learners' tensors are too
        # small for torch to keep two threads busy). The thread count stays fixed, so a rerun
        # repeats the numbers (a mid-run change alters float rounding, and the GTN's meta-
        # training amplifies it). Workers load the data again (seconds).
        del data
        ctx = multiprocessing.get_context("spawn")  # not fork: OpenMP thread pools do not survive it
        with ProcessPoolExecutor(len(arms), mp_context=ctx) as pool:
            futures = {kind: pool.submit(run_arm, kind, cfg, None, out, data_key=data_key, threads=threads,
                                         position=i, parent=os.getpid(), **arm_options)
                       for i, kind in enumerate(arms)}
            results = {kind: f.result() for kind, f in futures.items()}
    else:  # the thread count the run started with (a change alters float rounding)
        results = {kind: run_arm(kind, cfg, data, out, data_key=data_key, threads=threads, **arm_options)
                   for kind in arms}
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
        elif args.command == "export":
            path, meta = export_run(args.run, args.out, data_root=args.data_root, float16=args.float16)
            acc = meta["few_step_accuracy"]
            print(f"wrote {path} and {path.with_suffix('.png')}: T={meta['steps']} batches of {meta['batch_size']}; "
                  f"fresh learners reach {100 * acc['mean']:.2f}% +- {100 * acc['std']:.2f} on the test split")
        elif args.command == "rl":
            from .rl.cli import run as run_rl

            run_rl(args)
    except (DataNotFoundError, MetaLossDivergedError, ValueError, ImportError, FileNotFoundError) as err:
        print(f"gtn-edu: error: {err}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, RunKilled) as err:
        if args.command == "export":  # nothing half-written: the file is saved last, in one call
            print("\ngtn-edu: export interrupted; nothing was written", file=sys.stderr)
            return 130
        out = args.out or (args.resume or "runs/gtn")
        again = f"gtn-edu {args.command} --resume {out}"
        held = "the last saved iteration" if isinstance(err, RunKilled) else "the last finished iteration"
        print(f"\ngtn-edu: interrupted; the checkpoints in {out}/ hold {held}. Continue with: {again}",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

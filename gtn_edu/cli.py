"""The `gtn-edu` command.

    gtn-edu train --dataset mnist --quick --data-root ../shared/data --out runs/mnist

`train` meta-trains a GTN, meta-trains the real-data baseline the same way (learned lr
and momentum, same T and batch, as many outer iterations), reports the few-step test
accuracy of fresh learners trained on each, and writes figures and a JSON summary into
`--out`. Every `GTNConfig` field is also an option (`--inner-batch 64`, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
import typing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from .config import GTNConfig, MNISTConfig, quick, validate
from .data import DataNotFoundError, load_dataset
from .evaluate import few_step_accuracy
from .experiment import build_arm
from .meta import MetaLossDivergedError
from .viz import curriculum_images, plot_curves, save_image_grid

__all__ = ["main", "build_parser"]

_ALIASES = {"inner_steps": "--steps", "outer_steps": "--outer-steps"}


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per GTNConfig field (defaults left None so --quick can fill them)."""
    hints = typing.get_type_hints(GTNConfig)
    for f in dataclasses.fields(GTNConfig):
        flags = [f"--{f.name.replace('_', '-')}"] + ([_ALIASES[f.name]] if f.name in _ALIASES else [])
        kind = hints[f.name]
        if kind is bool:
            p.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                           help=f"(default {f.default})")
        elif f.name == "adam_betas":
            p.add_argument(*flags, dest=f.name, type=float, nargs=2, default=None, help=f"(default {f.default})")
        else:
            typ = {int: int, float: float, str: str}.get(kind, float)
            p.add_argument(*flags, dest=f.name, type=typ, default=None, help=f"(default {f.default})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `gtn-edu`."""
    parser = argparse.ArgumentParser(prog="gtn-edu", description="Generative Teaching Networks, for learning.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="meta-train a GTN and compare it with tuned real data",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--quick", action="store_true",
                   help="CPU-sized run (minutes): smaller generator and learners, T=16; see config.QUICK_CHANGES")
    t.add_argument("--data-root", default=None, help="dataset folder (else $GTN_EDU_DATA, else ~/.cache/gtn_edu)")
    t.add_argument("--no-download", action="store_true", help="never try to download the dataset")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    t.add_argument("--out", default="runs/gtn", help="folder for logs, figures, checkpoint and summary")
    t.add_argument("--time-limit", type=float, default=None,
                   help="stop each arm's meta-training after this many seconds")
    t.add_argument("--no-baseline", action="store_true", help="skip the tuned real-data arm")
    t.add_argument("--parallel-arms", action=argparse.BooleanOptionalAction, default=None,
                   help="train the GTN and real-data arms side by side, one process each with its share of "
                        "the cores (default: yes on a CPU with at least 2 cores)")
    _add_config_options(t)
    return parser


def _config(args: argparse.Namespace) -> GTNConfig:
    cfg = MNISTConfig()
    if args.quick:
        cfg = quick(cfg)
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(GTNConfig)
                 if getattr(args, f.name) is not None}
    if "adam_betas" in overrides:
        overrides["adam_betas"] = tuple(overrides["adam_betas"])
    if args.dataset is not None and args.dataset == "cifar10" and "arch" not in overrides:
        overrides["arch"] = "cifar"
    return validate(dataclasses.replace(cfg, **overrides))


def _train_arm(kind: str, cfg: GTNConfig, data, args: argparse.Namespace, out: Path, threads: int | None = None,
               position: int | None = None) -> dict:
    """Meta-train one arm, save its checkpoint (and the GTN's curriculum grid), score it on TEST.

    Runs in the CLI's process, or in a worker process of its own when arms run in parallel
    (then `data` is None and the worker loads the dataset itself).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if data is None:
        data = load_dataset(cfg.dataset, args.data_root, download=False, device=args.device)
    (out / f"{kind}_log.jsonl").unlink(missing_ok=True)
    arm = build_arm(kind, cfg, data, device=args.device, log_path=out / f"{kind}_log.jsonl")
    t0 = time.perf_counter()
    arm.trainer.fit(cfg.outer_steps, desc=f"{kind} arm", time_limit=args.time_limit, position=position)
    train_s = time.perf_counter() - t0
    arm.trainer.save(out / f"{kind}_checkpoint.pt")
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test,
                            n_learners=cfg.eval_learners, seed=cfg.seed + 1000)
    if kind == "gtn":
        save_image_grid(curriculum_images(arm.teacher, arm.curriculum), out / "curriculum.png")
    return {"test_accuracy_mean": res.mean, "test_accuracy_std": res.std, "test_accuracies": res.accuracies,
            "outer_iterations": arm.trainer.iteration, "meta_train_seconds": train_s,
            "torch_threads": torch.get_num_threads(),
            "lr": arm.sgd.lr.detach().cpu().tolist(), "momentum": arm.sgd.momentum.detach().cpu().tolist(),
            "meta_loss": [r["meta_loss"] for r in arm.trainer.history], "summary": str(res)}


def _parallel(args: argparse.Namespace, n_arms: int) -> bool:
    """Run the arms side by side? `--parallel-arms`, else yes on a CPU with a core per arm."""
    if args.parallel_arms is not None:
        return args.parallel_arms and n_arms > 1
    return n_arms > 1 and torch.device(args.device).type == "cpu" and (os.cpu_count() or 1) >= n_arms


def train(args: argparse.Namespace) -> dict:
    """Run `gtn-edu train`; returns the summary it writes to `out/summary.json`."""
    cfg = _config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, args.data_root, download=not args.no_download, device=args.device)
    arms = ["gtn"] + ([] if args.no_baseline else ["real"])
    parallel = _parallel(args, len(arms))
    print(f"{cfg.dataset}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
          f"device {args.device}, T={cfg.inner_steps}, batch {cfg.inner_batch}, {cfg.outer_steps} outer steps"
          + (f", arms in parallel ({len(arms)} processes)" if parallel else ""))
    summary = {"config": cfg.to_dict(), "device": str(args.device), "quick": bool(args.quick),
               "torch_threads": torch.get_num_threads(), "parallel_arms": parallel, "arms": {}}
    if parallel:
        # One process per arm, the cores split between them: on a small CPU two single-thread
        # processes get more done than one two-thread process (the learners' tensors are too
        # small for torch to keep two threads busy). The thread count stays fixed, so a rerun
        # repeats the numbers (a mid-run change alters float rounding, and the GTN's meta-
        # training amplifies it). Workers load the data again (seconds).
        threads = max(1, (os.cpu_count() or 1) // len(arms))
        del data
        ctx = multiprocessing.get_context("spawn")  # not fork: OpenMP thread pools do not survive it
        with ProcessPoolExecutor(len(arms), mp_context=ctx) as pool:
            futures = {kind: pool.submit(_train_arm, kind, cfg, None, args, out, threads, i)
                       for i, kind in enumerate(arms)}
            results = {kind: f.result() for kind, f in futures.items()}
    else:
        results = {kind: _train_arm(kind, cfg, data, args, out) for kind in arms}
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
    except (DataNotFoundError, MetaLossDivergedError, ValueError) as err:
        print(f"gtn-edu: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

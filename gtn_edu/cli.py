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
import sys
import time
import typing
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


def train(args: argparse.Namespace) -> dict:
    """Run `gtn-edu train`; returns the summary it writes to `out/summary.json`."""
    cfg = _config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    data = load_dataset(cfg.dataset, args.data_root, download=not args.no_download, device=args.device)
    print(f"{cfg.dataset}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
          f"device {args.device}, T={cfg.inner_steps}, batch {cfg.inner_batch}, {cfg.outer_steps} outer steps")
    summary = {"config": cfg.to_dict(), "device": str(args.device), "quick": bool(args.quick),
               "torch_threads": torch.get_num_threads(), "arms": {}}
    arms = ["gtn"] + ([] if args.no_baseline else ["real"])
    for kind in arms:
        (out / f"{kind}_log.jsonl").unlink(missing_ok=True)
        arm = build_arm(kind, cfg, data, device=args.device, log_path=out / f"{kind}_log.jsonl")
        t0 = time.perf_counter()
        arm.trainer.fit(cfg.outer_steps, desc=f"{kind} arm", time_limit=args.time_limit)
        train_s = time.perf_counter() - t0
        arm.trainer.save(out / f"{kind}_checkpoint.pt")
        res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test,
                                n_learners=cfg.eval_learners, seed=cfg.seed + 1000)
        summary["arms"][kind] = {
            "test_accuracy_mean": res.mean, "test_accuracy_std": res.std, "test_accuracies": res.accuracies,
            "outer_iterations": arm.trainer.iteration, "meta_train_seconds": train_s,
            "lr": arm.sgd.lr.detach().cpu().tolist(), "momentum": arm.sgd.momentum.detach().cpu().tolist()}
        print(f"{kind:>4}: few-step TEST accuracy {res} after {cfg.inner_steps} steps of batch {cfg.inner_batch} "
              f"({arm.trainer.iteration} outer iterations, {train_s:.0f} s)")
        if kind == "gtn":
            save_image_grid(curriculum_images(arm.teacher, arm.curriculum), out / "curriculum.png")
        summary["arms"][kind]["meta_loss"] = [r["meta_loss"] for r in arm.trainer.history]
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

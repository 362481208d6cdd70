"""One arm of a CIFAR-10 quick variant: the probe behind the lever table in CHANGELOG.md ("Session 11").

    python benchmarks/cifar10_levers.py --arm gtn --set arch=mnist arch_scale=0.25 outer_steps=150
    python benchmarks/cifar10_levers.py --arm real --set arch=mnist arch_scale=0.25 outer_steps=150 bn_stats=synthetic

Starts from `quick(CIFARConfig())` with `--set FIELD=VALUE` changes on top (JSON values;
strings may go bare), meta-trains one arm in one thread, and prints one JSON line: the
mean meta-loss of every 25 outer iterations and the few-step accuracy of 10 fresh learners
(the config's eval seed, so the same learners for both arms) on the *validation* split,
with the BatchNorm statistics `bn_stats` asks for. Settings are chosen on validation and
reported on test (`gtn-edu train`). Run the two arms as two processes side by side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from gtn_edu import CIFARConfig, load_dataset
from gtn_edu.config import quick
from gtn_edu.evaluate import bn_images_for, few_step_accuracy
from gtn_edu.experiment import build_arm


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare string, e.g. arch=mnist


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arm", choices=["gtn", "real"], required=True)
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="config changes on top of quick")
    ap.add_argument("--data-root", default=None, help="CIFAR-10 folder (else $GTN_EDU_DATA)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    changes = {}
    for item in args.set:
        if "=" not in item:
            ap.error(f"--set takes FIELD=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        changes[key] = _value(text)
    if "adam_betas" in changes:
        changes["adam_betas"] = tuple(changes["adam_betas"])
    cfg = dataclasses.replace(quick(CIFARConfig()), **changes)
    data = load_dataset("cifar10", args.data_root, download=False)
    arm = build_arm(args.arm, cfg, data, progress=False)
    start = time.perf_counter()
    arm.trainer.fit(cfg.outer_steps)
    losses = [r["meta_loss"] for r in arm.trainer.history]
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.val,
                            n_learners=cfg.eval_learners, seed=cfg.seed,
                            bn_images=bn_images_for(cfg.bn_stats, data.train))
    out = {"arm": args.arm, "changes": changes, "seconds": round(time.perf_counter() - start, 1),
           "meta_loss_per_25": [round(sum(losses[i:i + 25]) / len(losses[i:i + 25]), 3)
                                for i in range(0, len(losses), 25)],
           "val_accuracy": round(100 * res.mean, 2), "val_std": round(100 * res.std, 2),
           "val_accuracies": res.accuracies}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()

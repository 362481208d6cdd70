"""Appendix F, Figure 4: the conditioned generator against the XY-generator with soft labels.

    python benchmarks/xy_teacher.py --quick --arm conditioned --threads 1 &   # one arm a process;
    python benchmarks/xy_teacher.py --quick --arm xy --threads 1 &            # each writes its JSON
    wait; python benchmarks/xy_teacher.py --quick                             # the figure and table
    python benchmarks/xy_teacher.py --smoke                                   # seconds (the tests)

Three GTN arms on MNIST at `gtn-edu train --quick`'s settings, identical but for the teacher:
`conditioned` (the paper's generator, $G(z, y)$ with the one-hot label as input; the arm
`gtn-edu train` runs), `xy` (appendix F's XY-generator, `XYTeacher(conditional=False)`: the
code alone in, image *and* soft label out; the learner trains on cross-entropy against the
soft label) and `xy_conditioned` (`XYTeacher(conditional=True)`: the label in, and a soft
label out that refines it). Every arm meta-trains its inner lr and momentum too, from the
same seed. Reported: the meta-loss over outer iterations (Figure 4's curves) and the
few-step test accuracy of 10 fresh learners (the run's eval learners) after the last
iteration. Outputs in `--out`: `xy_teacher_<plan>.json`, `.png` and a markdown fragment
pasted into docs/benchmarks/mnist.md between the `xy_teacher` markers when `--out` is
docs/figures; per-arm results in `--runs` (`runs/xy_teacher_<plan>/`), so the arms can run
in parallel processes and a finished arm is not trained again.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from report import arm_args, environment, is_docs_folder, pyplot, train_arms, update_docs, write_json

from gtn_edu import MNISTConfig, XYTeacher, few_step_accuracy, load_dataset
from gtn_edu.config import quick
from gtn_edu.evaluate import bn_images_for
from gtn_edu.experiment import build_arm

ARMS = {"conditioned": {}, "xy": dict(generator=XYTeacher, conditional=False),
        "xy_conditioned": dict(generator=XYTeacher, conditional=True)}
LABELS = {"conditioned": "conditioned G(z, y)", "xy": "XY-generator G(z) -> (x, p)",
          "xy_conditioned": "XY-generator, label in: G(z, y) -> (x, p)"}
SMOKE = dict(inner_steps=2, inner_batch=20, outer_batch=20, outer_steps=3, eval_learners=2, teacher_hidden=16,
             teacher_channels=4, teacher_conv_channels=4, arch_scale=0.1)
PLANS = {"smoke": SMOKE, "quick": {}}


def config(plan: str) -> MNISTConfig:
    return replace(quick(MNISTConfig()), **PLANS[plan])


def train_arm(name: str, plan: str, data, runs: Path) -> dict:
    """Meta-train one arm (or read its stored result) and score 10 fresh learners on the test split."""
    path = runs / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    cfg = config(plan)
    arm = build_arm("gtn", cfg, data, progress=plan != "smoke", **ARMS[name])
    start = time.perf_counter()
    arm.trainer.fit(cfg.outer_steps, desc=name)
    seconds = time.perf_counter() - start
    res = few_step_accuracy(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, data.test, seed=cfg.seed,
                            n_learners=cfg.eval_learners, bn_images=bn_images_for(cfg.bn_stats, data.train))
    out = {"arm": name, "meta_loss": [r["meta_loss"] for r in arm.trainer.history], "seconds": seconds,
           "test_accuracies": res.accuracies, "mean": res.mean, "std": res.std,
           "lr": arm.sgd.lr.detach().tolist(), "threads": torch.get_num_threads()}
    write_json(path, out)
    return out


def smooth(values: list[float], k: int) -> list[float]:
    return [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


def summary(result: dict) -> str:
    """One line on a trained arm (`--arm`)."""
    return f"{100 * result['mean']:.2f}% +- {100 * result['std']:.2f} in {result['seconds'] / 60:.1f} min"


def main(argv=None) -> int:
    args, runs = arm_args(__doc__, PLANS, ARMS, "xy_teacher", argv)
    data = load_dataset("mnist", args.data_root, download=False)
    results = train_arms(args, ARMS, lambda name: train_arm(name, args.plan, data, runs), summary)
    if results is None:  # one arm only
        return 0
    cfg = config(args.plan)
    stem = f"xy_teacher_{args.plan}"
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, r in results.items():
        ax.plot(smooth(r["meta_loss"], 20), label=f"{LABELS[name]}: {100 * r['mean']:.1f}%")
    ax.set(xlabel="outer iteration", ylabel="meta-loss (20-iteration mean)", yscale="log",
           title=f"MNIST, T={cfg.inner_steps}: conditioned vs XY-generator")
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / f"{stem}.png", dpi=110)
    plt.close(fig)
    env = environment("cpu")
    res = {"plan": args.plan, "env": env, "config": cfg.to_dict(), "arms": results}
    write_json(args.out / f"{stem}.json", res)
    text = "\n".join([
        f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}; plan "
        f"`{args.plan}` (`gtn-edu train --dataset mnist --quick`'s settings, seed {cfg.seed}, {cfg.outer_steps} outer "
        f"iterations, T={cfg.inner_steps}, batch {cfg.inner_batch}). Few-step test accuracy of {cfg.eval_learners} "
        "fresh learners after the last iteration, mean +- sd:", "",
        "| teacher | few-step test accuracy | learned lr (mean) | meta-training min (threads) |", "|---|---|---|---|",
        *[f"| {LABELS[n]} | {100 * r['mean']:.2f}% +- {100 * r['std']:.2f} | {sum(r['lr']) / len(r['lr']):.3f} | "
          f"{r['seconds'] / 60:.1f} ({r['threads']}) |" for n, r in results.items()], "",
        f"![{stem}](figures/{stem}.png)"]) + "\n"
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out) and args.plan != "smoke":
        update_docs("xy_teacher", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

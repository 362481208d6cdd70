"""The paper's CIFAR-10 few-step result: Figure 3a (accuracy across inner steps) and 3b (samples).

    python benchmarks/reproduce_cifar10.py --quick --data-root ../shared/data   # 2 CPU cores, <= 25 min
    python benchmarks/reproduce_cifar10.py --full --device cuda                 # Table 3, one GPU
    python benchmarks/reproduce_cifar10.py --full --device cuda --resume        # continue a stopped run

Two stages:

1. `train`: the `gtn-edu train` command meta-trains the GTN and the tuned real-data arm
   (same T, batch, outer iterations; lr and momentum meta-learned both ways), keeping
   checkpoints in `--run-dir`, so `--time-limit` and `--resume` work as they do there.
2. `evaluate`: fresh learners (architectures and initialisations never used in meta-
   training) train on each arm's data; their accuracy after every inner step, on a
   subset of the training set (what the paper's Figure 3a plots) and on the test set, as
   mean and spread over the learners; where the curves cross; the GTN's images one row
   per inner step and one column per class (Figure 3b); the meta-loss of both arms.

Writes `repro_cifar10_<plan>.json`, `*_fig3a.png`, `*_fig3b.png`, `*_metaloss.png` and
`*.md.txt` into `--out`; with `--out docs/figures` (the default) the fragment goes into
docs/benchmarks/cifar10.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, REPO, environment, is_docs_folder, plan_parser, pyplot, update_docs, write_json

from gtn_edu import accuracy_per_step
from gtn_edu.cli import main as gtn_edu_main
from gtn_edu.config import GTNConfig
from gtn_edu.data import CLASS_NAMES, Split, load_dataset
from gtn_edu.evaluate import bn_images_for
from gtn_edu.experiment import build_arm
from gtn_edu.viz import curriculum_images, save_image_grid

LABEL = {"gtn": "GTN", "real": "real data"}
PLANS = {  # learners per curve, training images scored, extra `gtn-edu train` options
    "smoke": dict(learners=2, train_images=200, options=[
        "--quick", "--steps", "3", "--inner-batch", "20", "--outer-batch", "20", "--outer-steps", "2",
        "--eval-learners", "2", "--teacher-hidden", "16", "--teacher-channels", "4", "--teacher-conv-channels", "4",
        "--arch-scale", "0.0625"]),
    "quick": dict(learners=10, train_images=2000, options=["--quick"]),
    "full": dict(learners=20, train_images=10000, options=[]),
}


def train(plan: str, args: argparse.Namespace) -> None:
    """Stage 1: both arms through `gtn-edu train` (resuming `--run-dir` with `--resume`)."""
    argv = ["train", "--out", str(args.run_dir), "--device", args.device]
    if args.resume and any(args.run_dir.glob("*_checkpoint.pt")):
        argv += ["--resume", str(args.run_dir)]
    else:
        argv += ["--dataset", "cifar10", *PLANS[plan]["options"]]
    if args.data_root:
        argv += ["--data-root", args.data_root]
    if args.time_limit:
        argv += ["--time-limit", str(args.time_limit)]
    print("gtn-edu " + " ".join(argv), flush=True)
    rc = gtn_edu_main(argv)
    if rc != 0:
        raise SystemExit(f"gtn-edu train failed (exit {rc})")


def evaluate(plan: str, args: argparse.Namespace) -> dict:
    """Stage 2: per-step accuracy curves of fresh learners on both arms' data, and the figures' data."""
    summary = json.loads((args.run_dir / "summary.json").read_text())
    cfg = GTNConfig.from_dict(summary["config"])
    data = load_dataset("cifar10", args.data_root, download=False, device=args.device)
    n_train = min(PLANS[plan]["train_images"], len(data.train))
    splits = {"train": Split(data.train.x[:n_train], data.train.y[:n_train]), "test": data.test}
    res = {"env": environment(args.device), "plan": plan, "config": summary["config"], "arms": {},
           "splits": {"train": n_train, "test": len(data.test), "partial_copy": len(data.train) < 45_000},
           "train_summary": {k: {m: v[m] for m in ("test_accuracy_mean", "test_accuracy_std", "outer_iterations",
                                                     "meta_train_seconds", "lr", "momentum")}
                             for k, v in summary["arms"].items()},
           "train_seconds": summary["total_seconds"]}
    arms = {}
    threads = torch.get_num_threads()
    for kind in summary["arms"]:
        # The thread count the training command scored this arm with: float sums (BatchNorm
        # statistics of 512 images, say) round differently with another, and a few predictions flip.
        torch.set_num_threads(summary["arms"][kind].get("torch_threads", threads))
        arm = build_arm(kind, cfg, data, device=args.device, progress=False)
        arm.trainer.load(args.run_dir / f"{kind}_checkpoint.pt")
        arms[kind] = arm
        curves = {}
        for name, split in splits.items():
            per_step = accuracy_per_step(arm.teacher, arm.curriculum, arm.sgd, arm.arch_space, split,
                                         n_learners=PLANS[plan]["learners"], seed=cfg.seed,
                                         bn_images=bn_images_for(cfg.bn_stats, data.train))
            curves[name] = {"mean": [r.mean for r in per_step], "std": [r.std for r in per_step],
                            "final": per_step[-1].accuracies}
        res["arms"][kind] = {"curves": curves, "meta_loss": [r["meta_loss"] for r in arm.trainer.history]}
        print(f"{LABEL[kind]:>9}: accuracy after {cfg.inner_steps} steps: train "
              f"{100 * curves['train']['mean'][-1]:.2f}%, test {100 * curves['test']['mean'][-1]:.2f}%", flush=True)
    torch.set_num_threads(threads)
    if {"gtn", "real"} <= set(res["arms"]):
        for name in splits:
            g, r = (res["arms"][k]["curves"][name]["mean"] for k in ("gtn", "real"))
            res.setdefault("gtn_ahead_at", {})[name] = [t + 1 for t in range(len(g)) if g[t] > r[t]]
    rows = sorted({round(i * (cfg.inner_steps - 1) / 7) for i in range(8)})  # <= 8 evenly spaced inner steps
    images = curriculum_images(arms["gtn"].teacher, arms["gtn"].curriculum, per_step=10)
    res["fig3b_steps"] = [t + 1 for t in rows]
    res["_fig3b"] = torch.cat([images[10 * t:10 * t + 10] for t in rows])
    return res


def figures(res: dict, out: Path, stem: str) -> list[Path]:
    """Figure 3a (two panels: training subset, test), 3b (image grid) and the meta-loss curves."""
    paths = [out / f"{stem}_fig3b.png"]
    save_image_grid(res.pop("_fig3b"), paths[0], nrow=10)
    plt = pyplot()
    title = f"{stem} ({res['env']['device_label']}, commit {res['env']['commit']})"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for ax, name in zip(axes, ("train", "test")):
        for kind, r in res["arms"].items():
            m = torch.tensor(r["curves"][name]["mean"]) * 100
            s = torch.tensor(r["curves"][name]["std"]) * 100
            steps = range(1, len(m) + 1)
            ax.plot(steps, m, marker="o", ms=3, label=LABEL[kind])
            ax.fill_between(steps, m - s, m + s, alpha=0.2)
        _finish(ax, xlabel="inner step", ylabel="accuracy (%)",
                title=f"Figure 3a: {res['splits'][name]} {name} images")
    paths.append(_save(fig, title, out / f"{stem}_fig3a.png", plt))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for kind, r in res["arms"].items():
        ys = torch.tensor(r["meta_loss"], dtype=torch.float64)
        k = min(10, len(ys))
        ax.plot(range(k, len(ys) + 1), ys.unfold(0, k, 1).mean(1), label=LABEL[kind])
    _finish(ax, xlabel="outer iteration", ylabel="meta-loss (running mean of 10)", title="meta-training")
    paths.append(_save(fig, title, out / f"{stem}_metaloss.png", plt))
    return paths


def _finish(ax, **labels) -> None:
    ax.set(**labels)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _save(fig, title: str, path: Path, plt) -> Path:
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fragment(res: dict, stem: str, pngs: list[Path]) -> str:
    """The markdown of the results: settings, a table of accuracies per inner step, the figures."""
    cfg, env = res["config"], res["env"]
    steps = len(next(iter(res["arms"].values()))["curves"]["test"]["mean"])
    show = sorted({1, steps} | {round(1 + i * (steps - 1) / 7) for i in range(8)})
    out = [f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}; "
           f"plan `{res['plan']}`: T={cfg['inner_steps']} inner steps of batch {cfg['inner_batch']}, "
           f"{next(iter(res['train_summary'].values()))['outer_iterations']} outer iterations per arm, "
           f"learner widths x{cfg['arch_scale']}, meta-training and evaluation "
           f"{res['train_seconds'] / 60:.1f} + {res['eval_seconds'] / 60:.1f} min. "
           + ("Data: the **partial** CIFAR-10 copy (3600 training images after the split)."
              if res["splits"]["partial_copy"] else "Data: the full CIFAR-10."),
           "", f"Accuracy (%) of {len(next(iter(res['arms'].values()))['curves']['test']['final'])} fresh learners "
           "after each inner step, mean +- std:", "",
           "| data | images | " + " | ".join(f"step {t}" for t in show) + " |", "|---" * (2 + len(show)) + "|"]
    for kind, r in res["arms"].items():
        for name in ("train", "test"):
            c = r["curves"][name]
            out.append(f"| {LABEL[kind]} | {res['splits'][name]} {name} | " + " | ".join(
                f"{100 * c['mean'][t - 1]:.1f} +- {100 * c['std'][t - 1]:.1f}" for t in show) + " |")
    for name, ahead in res.get("gtn_ahead_at", {}).items():
        out.append("")
        out.append(f"GTN ahead of real data on the {name} images at inner steps: "
                   f"{', '.join(map(str, ahead)) if ahead else 'none'}.")
    for path in pngs:
        out += ["", f"![{path.stem}](figures/{path.name})"]
        if path.stem.endswith("fig3b"):
            out += ["", f"Figure 3b: columns are the classes ({', '.join(CLASS_NAMES['cifar10'])}); rows the "
                    f"inner steps {', '.join(map(str, res['fig3b_steps']))}; each image stretched to full contrast."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = plan_parser(__doc__, PLANS)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--data-root", default=None, help="CIFAR-10 folder (else $GTN_EDU_DATA, else ~/.cache/gtn_edu)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--run-dir", type=Path, default=None,
                    help="where the arms' checkpoints and logs go (default runs/repro_cifar10_<plan>)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoints")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds of meta-training per arm")
    ap.add_argument("--skip-training", action="store_true", help="only evaluate the finished run in --run-dir")
    args = ap.parse_args(argv)
    args.run_dir = args.run_dir or REPO / "runs" / f"repro_cifar10_{args.plan}"
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not args.skip_training:
        train(args.plan, args)
    t0 = time.perf_counter()
    res = evaluate(args.plan, args)
    res["eval_seconds"] = time.perf_counter() - t0
    stem = f"repro_cifar10_{args.plan}"
    try:
        pngs = figures(res, args.out, stem)
    except ImportError as err:  # matplotlib missing: the image grid is still written
        print(f"figures skipped: {err}")
        pngs = [args.out / f"{stem}_fig3b.png"]
    res.pop("_fig3b", None)
    write_json(args.out / f"{stem}.json", res)
    text = fragment(res, stem, pngs)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out):
        update_docs("repro_cifar10_quick" if args.plan == "smoke" else stem, text)
    print(f"done in {(time.perf_counter() - start) / 60:.1f} min; results in {args.out}/{stem}.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure the outcomes of the lab exercises on the "For instructors" page.

Every exercise changes one thing in a small MNIST GTN run and reports the few-step TEST
accuracy of fresh learners. The numbers on the page come from this script:

    GTN_EDU_DATA=../shared/data python docs/scripts/measure_exercises.py

It writes `docs/instructors/measured.json` (everything, with settings and timings) and
`docs/instructors/measured.md` (the table the page includes). Finished runs are kept in the
JSON, so an interrupted measurement resumes where it stopped (`--fresh` starts over).
`--seeds 0 1 2` repeats every run with more seeds (slower, more trustworthy).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from gtn_edu import Curriculum, MetaLossDivergedError, MNISTConfig, few_step_accuracy, load_dataset
from gtn_edu.experiment import build_arch_space, build_arm

OUT = Path(__file__).resolve().parents[1] / "instructors"

# The exercise size: small enough for a 2-core CPU, the same for every run. Written out in
# full (not `quick()`), so the numbers stay reproducible when the quick settings change.
BASE = dict(
    inner_steps=8, inner_batch=40, outer_batch=64, outer_steps=40, outer_lr=0.01, init_lr=0.1,
    init_momentum=0.5, per_step_hyper=True, latent_dim=64, teacher_hidden=256, teacher_channels=32,
    teacher_conv_channels=32, weight_norm=True, curriculum="full", mode="full", meta_loss_every=4,
    arch="mnist", arch_scale=0.25, eval_learners=5)

# name -> (arm kind, config overrides, what the exercise asks)
RUNS = {
    "baseline": ("gtn", {}, "GTN, weight norm, full curriculum"),
    "real": ("real", {}, "real data, lr and momentum meta-learned the same way"),
    "no_weight_norm": ("gtn", {"weight_norm": False}, "exercise 1: weight norm off"),
    "no_weight_norm_lr3x": ("gtn", {"weight_norm": False, "outer_lr": 0.03},
                            "exercise 1: weight norm off, outer lr x3"),
    "weight_norm_lr3x": ("gtn", {"outer_lr": 0.03}, "exercise 1: weight norm on, outer lr x3"),
    "shuffled_batch": ("gtn", {"curriculum": "shuffled_batch"}, "exercise 2: shuffled batch"),
    "all_shuffled": ("gtn", {"curriculum": "all_shuffled"}, "exercise 2: all shuffled"),
    "no_curriculum": ("gtn", {"curriculum": "none"}, "exercise 2: no curriculum"),
    "gtn_on_mlp": ("gtn", {"arch": "mlp"}, "exercise 3: GTN meta-trained on MLP learners"),
}


def _mean_last(records: list[dict], key: str, n: int = 10) -> float:
    vals = [r[key] for r in records[-n:]]
    return statistics.fmean(vals) if vals else float("nan")


def run_one(name: str, seed: int, data, results: dict, n_eval: int) -> dict:
    kind, overrides, _ = RUNS[name]
    cfg = MNISTConfig(**{**BASE, **overrides, "seed": seed})
    arm = build_arm(kind, cfg, data, progress=False)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    diverged = None
    try:
        arm.trainer.fit(cfg.outer_steps)
    except MetaLossDivergedError as err:
        diverged = f"iteration {arm.trainer.iteration}: {err}".split(";")[0]
    rec = {"config": cfg.to_dict(), "outer_iterations": arm.trainer.iteration,
           "meta_train_cpu_s": time.process_time() - cpu0, "meta_train_wall_s": time.perf_counter() - wall0,
           "final_meta_loss": _mean_last(arm.trainer.history, "meta_loss"),
           "final_meta_acc": _mean_last(arm.trainer.history, "meta_acc"),
           "meta_loss_curve": [r["meta_loss"] for r in arm.trainer.history], "diverged": diverged}
    evals = {}
    if diverged is None:
        test = data.test
        ev = lambda cur, space, sgd=arm.sgd: few_step_accuracy(  # noqa: E731
            arm.teacher, cur, sgd, space, test, n_learners=n_eval, seed=seed + 1000).accuracies
        evals["own"] = ev(arm.curriculum, arm.arch_space)
        if name in ("baseline", "real"):
            # exercise 3: hold out an architecture family (MLP learners never seen in meta-training)
            evals["mlp"] = ev(arm.curriculum, build_arch_space(replace(cfg, arch="mlp"), data.image_shape))
        if name == "baseline":
            # exercise 2b: shuffle the LEARNED curriculum at test time (same codes, new order)
            shuffled = Curriculum.shuffled_batch(cfg.inner_steps, cfg.inner_batch, 10, cfg.latent_dim)
            shuffled.load_state_dict(arm.curriculum.state_dict())
            evals["order_shuffled"] = ev(shuffled, arm.arch_space)
            reversed_ = Curriculum.full(cfg.inner_steps, cfg.inner_batch, 10, cfg.latent_dim)
            with torch.no_grad():
                reversed_.codes.copy_(arm.curriculum.codes.flip(0))
            # per-step lr/momentum stay in their learned order; only the data order flips
            evals["order_reversed"] = ev(reversed_, arm.arch_space)
    rec["test_accuracy"] = evals
    rec["eval_cpu_s"] = time.process_time() - cpu0 - rec["meta_train_cpu_s"]
    return rec


def _fmt(accs: list[float]) -> str:
    if not accs:
        return "n/a"
    m = 100 * statistics.fmean(accs)
    s = 100 * statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{m:.1f}% ± {s:.1f}"


def _pool(results: dict, name: str, key: str) -> list[float]:
    """All learners' accuracies of run `name`, pooled over seeds."""
    out = []
    for rec in results["runs"].get(name, {}).values():
        out += rec["test_accuracy"].get(key, [])
    return out


def _cell(results: dict, name: str, key: str = "own") -> str:
    recs = results["runs"].get(name, {})
    div = [r["diverged"] for r in recs.values() if r["diverged"]]
    if div:
        return f"diverged ({len(div)}/{len(recs)} seeds; {div[0]})"
    return _fmt(_pool(results, name, key))


def _loss(results: dict, name: str) -> str:
    recs = [r for r in results["runs"].get(name, {}).values() if not r["diverged"]]
    return f"{statistics.fmean(r['final_meta_loss'] for r in recs):.3f}" if recs else "n/a"


def write_table(results: dict) -> str:
    s = results["settings"]
    rows = [
        ("Baseline", "GTN: weight norm, full curriculum", _cell(results, "baseline"), _loss(results, "baseline")),
        ("Baseline", "real data (tuned lr and momentum)", _cell(results, "real"), _loss(results, "real")),
        ("1. Weight norm", "off (outer lr 0.01)", _cell(results, "no_weight_norm"), _loss(results, "no_weight_norm")),
        ("1. Weight norm", "on, outer lr x3 (0.03)", _cell(results, "weight_norm_lr3x"),
         _loss(results, "weight_norm_lr3x")),
        ("1. Weight norm", "off, outer lr x3 (0.03)", _cell(results, "no_weight_norm_lr3x"),
         _loss(results, "no_weight_norm_lr3x")),
        ("2. Curriculum", "shuffled batch (meta-trained that way)", _cell(results, "shuffled_batch"),
         _loss(results, "shuffled_batch")),
        ("2. Curriculum", "all shuffled (meta-trained that way)", _cell(results, "all_shuffled"),
         _loss(results, "all_shuffled")),
        ("2. Curriculum", "no curriculum, z ~ N(0, 1) (meta-trained that way)", _cell(results, "no_curriculum"),
         _loss(results, "no_curriculum")),
        ("2. Curriculum", "baseline GTN, batch order shuffled at test time",
         _cell(results, "baseline", "order_shuffled"), "-"),
        ("2. Curriculum", "baseline GTN, batch order reversed at test time",
         _cell(results, "baseline", "order_reversed"), "-"),
        ("3. Held-out arch", "MLP learners on the conv-trained GTN", _cell(results, "baseline", "mlp"), "-"),
        ("3. Held-out arch", "MLP learners on real data (conv-tuned lr)", _cell(results, "real", "mlp"), "-"),
        ("3. Held-out arch", "MLP learners on a GTN meta-trained on MLPs", _cell(results, "gtn_on_mlp"),
         _loss(results, "gtn_on_mlp")),
    ]
    lines = ["| exercise | variant | few-step test accuracy | final meta-loss |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    b = s["base"]
    lines += ["", f"*Measured by `docs/scripts/measure_exercises.py` on {s['device']}, torch {s['torch']}, "
              f"{s['threads']} thread(s); seeds {s['seeds']}. Every run: T={b['inner_steps']} inner steps of "
              f"batch {b['inner_batch']}, {b['outer_steps']} outer iterations (Adam, outer lr {b['outer_lr']}), "
              f"real meta-batch {b['outer_batch']}, learners at {b['arch_scale']}x the paper's widths, "
              f"generator FC {b['teacher_hidden']} / {b['teacher_channels']} channels, latent {b['latent_dim']}. "
              f"Accuracy: mean ± standard deviation over {s['n_eval']} fresh learners per seed on the 10k MNIST test "
              f"images after T steps. Final meta-loss: mean of the last 10 outer iterations. "
              f"Total CPU time {results['total_cpu_s'] / 60:.1f} min.*"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--n-eval", type=int, default=BASE["eval_learners"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device-label", default="a 2-core CPU")
    p.add_argument("--fresh", action="store_true", help="forget earlier results")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "measured.json"
    results = json.loads(path.read_text()) if path.exists() and not args.fresh else {"runs": {}}
    results["settings"] = {"base": BASE, "seeds": args.seeds, "n_eval": args.n_eval, "threads": args.threads,
                           "device": args.device_label, "torch": torch.__version__, "python": platform.python_version()}
    data = load_dataset("mnist", download=False)
    for name in args.runs:
        for seed in args.seeds:
            if str(seed) in results["runs"].get(name, {}):
                continue
            print(f"{name} seed {seed} ...", flush=True)
            rec = run_one(name, seed, data, results, args.n_eval)
            results["runs"].setdefault(name, {})[str(seed)] = rec
            results["total_cpu_s"] = sum(r["meta_train_cpu_s"] + r["eval_cpu_s"]
                                         for runs in results["runs"].values() for r in runs.values())
            path.write_text(json.dumps(results, indent=1))
            print(f"  {rec['test_accuracy']} diverged={rec['diverged']} cpu {rec['meta_train_cpu_s']:.0f}s", flush=True)
    (OUT / "measured.md").write_text(write_table(results))
    print(write_table(results))


if __name__ == "__main__":
    main()

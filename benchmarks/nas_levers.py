"""Issue 22's NAS levers: does GTN evaluation catch up with real data at the same steps?

    python benchmarks/nas_levers.py score --lever inits --seed 102 --threads 1 &   # two more initialisations
    python benchmarks/nas_levers.py score --lever inits --seed 103 --threads 1 &   # per cell, both judges
    python benchmarks/nas_levers.py finetune --arm gtn --threads 1 &                # both arms meta-trained on
    python benchmarks/nas_levers.py finetune --arm real --threads 1 &               # cell networks for a while
    python benchmarks/nas_levers.py score --lever cells --seed 100 --threads 1 &    # then scored like
    python benchmarks/nas_levers.py score --lever cells --seed 101 --threads 1 &    # reproduce_nas --quick
    python benchmarks/nas_levers.py report                                          # the table (seconds)

The baseline is `reproduce_nas.py --quick` (docs/figures/repro_nas_quick.json): the CIFAR-10
quick teacher (`gtn-edu train --dataset cifar10 --quick --out runs/repro_cifar10_quick`,
meta-trained on appendix A.1's conv-pool learners at x0.25), 100 stored cells, each scored
after T=8 inner steps on the 3600 training images with the BatchNorm statistics of 512
real training images, the mean over evaluator seeds 100 and 101. Only the two judges the
target compares are scored here: GTN data and real data at the same steps (its lr and
momentum meta-learned), both with those BatchNorm statistics.

Levers:

* `inits`: the same teacher, two more initialisations per cell (seeds 102 and 103); the
  report pools them with the baseline's stored scores for seeds 100 and 101 (4 per cell,
  twice the cost for both judges). `score --check` first rescored cells with seed 100 and
  compares them with the stored ones, so pooling is pooling the same judge.
* `cells`: both arms continue meta-training for `--iterations` outer iterations (Adam at
  `--lr-factor` of the quick run's outer learning rates, constant) with learners drawn
  from the ground truth's own cell space (N=1, F=8) instead of A.1 networks, then are
  scored with seeds 100 and 101. One such iteration costs about 8 A.1 iterations on a CPU,
  which is why the teacher is fine-tuned, not meta-trained on cells from scratch.

`report` reads the cache only (a lever whose scores are incomplete is listed as not
measured), writes docs/figures/nas_levers.json and .md.txt and pastes the table between the
`nas_levers` markers of docs/benchmarks/nas.md. Scores are cached in `--cache-dir`, so every
stage can be stopped and rerun.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, REPO, environment, update_docs, write_json

from gtn_edu import load_dataset
from gtn_edu.evaluate import BN_IMAGES
from gtn_edu.experiment import load_arm
from gtn_edu.nas import GroundTruth, GTNEvaluation, NASEvaluator, RealDataEvaluation, paired_bootstrap
from gtn_edu.nas.evaluator import canonical
from gtn_edu.nas.stats import bootstrap_ci

BASELINE = DOCS_FIGURES / "repro_nas_quick.json"
ROWS = {"gtn": "GTN data, BN of 512 real images", "real": "real data, same steps, BN of 512 real images"}
LEVERS = {"inits": dict(teacher="repro_cifar10_quick", seeds=(102, 103), stored=(100, 101)),
          "cells": dict(teacher="nas_levers/cells", seeds=(100, 101), stored=())}
N_BOOT = 2000


def _evaluations(teacher: Path, data) -> dict:
    bn = data.train.x[:BN_IMAGES]
    gtn, real = (load_arm(k, teacher / f"{k}_checkpoint.pt", data) for k in ("gtn", "real"))
    return {"gtn": GTNEvaluation.from_arm(gtn, data.train, bn_images=bn),
            "real": RealDataEvaluation.from_arm(real, data.train, data.train, bn_images=bn)}


def score(args, truth: GroundTruth, data, seeds) -> dict:
    """`{arm: {seed: [score per cell]}}` for the lever's teacher, computed or read from the cache."""
    lever = LEVERS[args.lever]
    evaluations, out = _evaluations(args.runs / lever["teacher"], data), {}
    for arm, ev in evaluations.items():
        out[arm] = {}
        for seed in seeds:
            evaluator = NASEvaluator(truth.space, ev, args.cache_dir, seed=seed, progress=False)
            start = time.perf_counter()
            out[arm][seed] = [r.score for r in evaluator.evaluate(truth.genotypes)]
            print(f"{args.lever} {arm} seed {seed}: {len(truth)} cells in {time.perf_counter() - start:.0f} s",
                  flush=True)
    return out


def cached(args, truth: GroundTruth, data, lever: str, seeds) -> dict | None:
    """`{arm: {seed: [score per cell]}}` read from the cache only; None when any score is missing."""
    out = {}
    for arm, ev in _evaluations(args.runs / LEVERS[lever]["teacher"], data).items():
        out[arm] = {}
        for seed in seeds:
            done = NASEvaluator(truth.space, ev, args.cache_dir, seed=seed, progress=False).load_cache()
            scores = [done.get(canonical(spec)) for spec in truth.genotypes]
            if any(r is None for r in scores):
                return None
            out[arm][seed] = [r.score for r in scores]
    return out


def finetune(args, truth: GroundTruth, data) -> None:
    """Continue the quick run's arm `args.arm` on learners from the ground truth's cell space."""
    out = args.runs / LEVERS["cells"]["teacher"]
    out.mkdir(parents=True, exist_ok=True)
    arm = load_arm(args.arm, args.runs / LEVERS["inits"]["teacher"] / f"{args.arm}_checkpoint.pt", data)
    trainer = arm.trainer
    trainer.arch_space, trainer.lr_schedule = truth.space, "constant"
    trainer.base_lrs = [b * args.lr_factor for b in trainer.base_lrs]
    start = time.perf_counter()
    for i in range(args.iterations):
        rec = trainer.outer_step()
        if i % 5 == 0 or i == args.iterations - 1:
            print(f"{args.arm} {i + 1}/{args.iterations}: meta-loss {rec['meta_loss']:.3f}, lr {rec['lr']:.3f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    trainer.save(out / f"{args.arm}_checkpoint.pt")
    (out / f"{args.arm}_finetune.json").write_text(json.dumps(
        {"iterations": args.iterations, "lr_factor": args.lr_factor, "seconds": time.perf_counter() - start,
         "meta_loss": [r["meta_loss"] for r in trainer.history[-args.iterations:]]}))


def check(args, truth: GroundTruth, data, stored: dict, n: int = 3) -> None:
    """Rescore the first `n` cells with seed 100 and compare with the baseline's stored scores."""
    evaluations = _evaluations(args.runs / LEVERS["inits"]["teacher"], data)
    for arm, ev in evaluations.items():
        evaluator = NASEvaluator(truth.space, ev, None, seed=100, progress=False)
        got = [r.score for r in evaluator.evaluate(truth.genotypes[:n])]
        want = stored[ROWS[arm]]["100"][:n]
        print(f"check {arm}: rescored {got}, stored {want}")
        if max(abs(a - b) for a, b in zip(got, want)) > 1e-9:
            raise SystemExit(f"the retrained teacher's {arm} scores differ from the stored baseline's: pooling "
                             "them would mix two judges")


def _mean(per_seed: dict) -> list[float]:
    columns = list(per_seed.values())
    return [sum(c[i] for c in columns) / len(columns) for i in range(len(columns[0]))]


def report(args, truth: GroundTruth, data, base: dict) -> dict:
    mean_truth = truth.mean
    stored = base["scores_per_seed"]
    variants = {"baseline (2 initialisations)": {a: {int(s): v for s, v in stored[ROWS[a]].items()} for a in ROWS}}
    extra = cached(args, truth, data, "inits", LEVERS["inits"]["seeds"])  # the report computes nothing
    if extra is not None:
        variants["4 initialisations per cell"] = {a: {**variants["baseline (2 initialisations)"][a], **extra[a]}
                                                  for a in ROWS}
    cells = cached(args, truth, data, "cells", LEVERS["cells"]["seeds"])
    if cells is not None:
        variants["teacher fine-tuned on cells"] = cells
    missing = [name for name, got in (("4 initialisations per cell", extra), ("teacher fine-tuned on cells", cells))
               if got is None]
    rows = {}
    for name, arms in variants.items():
        means = {a: _mean(arms[a]) for a in arms}
        rho = {a: bootstrap_ci(means[a], mean_truth, n_boot=N_BOOT) for a in arms}
        diff = paired_bootstrap(means["gtn"], means["real"], mean_truth, n_boot=N_BOOT)
        rows[name] = {"inits": len(arms["gtn"]), "gtn": vars(rho["gtn"]), "real": vars(rho["real"]),
                      "difference": vars(diff)}
    folder = args.runs / LEVERS["cells"]["teacher"]
    tuned = {a: json.loads((folder / f"{a}_finetune.json").read_text()) for a in ROWS}
    res = {"env": environment("cpu"), "baseline": BASELINE.name, "truth_n": len(truth), "n_boot": N_BOOT,
           "not_measured": missing,
           "finetune": {a: {k: v for k, v in t.items() if k != "meta_loss"} | {"meta_loss_first5": t["meta_loss"][:5],
                                                                               "meta_loss_last5": t["meta_loss"][-5:]}
                        for a, t in tuned.items()},
           "rows": rows}
    return res


def fragment(res: dict) -> str:
    env, ft = res["env"], res["finetune"]
    out = [f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']} "
           f"(`benchmarks/nas_levers.py`). {res['truth_n']} stored cells; both judges score with the BatchNorm "
           "statistics of 512 real training images on the 3600 training images after T=8 steps; Spearman with the "
           f"ground truth's mean, 95% bootstrap intervals ({res['n_boot']} resamples), and the paired bootstrap "
           "of GTN minus real data on the same resamples.", "",
           "| variant | initialisations a cell | GTN data | real data, same steps | GTN − real [95% CI] | "
           "resamples with GTN ahead |",
           "|---|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        g, q, d = r["gtn"], r["real"], r["difference"]
        out.append(f"| {name} | {r['inits']} | {g['rho']:.2f} [{g['low']:.2f}, {g['high']:.2f}] | "
                   f"{q['rho']:.2f} [{q['low']:.2f}, {q['high']:.2f}] | {d['difference']:+.2f} "
                   f"[{d['low']:+.2f}, {d['high']:+.2f}] | {100 * d['above_zero']:.1f}% |")
    if res["not_measured"]:
        out += ["", f"Not measured (the cache is incomplete): {', '.join(res['not_measured'])}."]
    g, q = ft["gtn"], ft["real"]
    out += ["", f"Fine-tuning on cells: {g['iterations']} outer iterations for each arm at {g['lr_factor']} of the "
            f"quick run's outer learning rates (GTN {g['seconds'] / 60:.1f} min, real data {q['seconds'] / 60:.1f} "
            "min, one thread each, side by side); meta-loss of the first and last five iterations: GTN "
            f"{', '.join(f'{v:.2f}' for v in g['meta_loss_first5'])} → "
            f"{', '.join(f'{v:.2f}' for v in g['meta_loss_last5'])}; real data "
            f"{', '.join(f'{v:.2f}' for v in q['meta_loss_first5'])} → "
            f"{', '.join(f'{v:.2f}' for v in q['meta_loss_last5'])}."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["score", "finetune", "report"])
    ap.add_argument("--lever", choices=sorted(LEVERS), default="inits")
    ap.add_argument("--seed", type=int, default=None, help="score: one evaluator seed (default: the lever's)")
    ap.add_argument("--check", action="store_true", help="score --lever inits: first compare with the baseline")
    ap.add_argument("--arm", choices=["gtn", "real"], default="gtn")
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--lr-factor", type=float, default=0.3)
    ap.add_argument("--runs", type=Path, default=REPO / "runs")
    ap.add_argument("--cache-dir", type=Path, default=REPO / "runs" / "nas_levers" / "cache")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    truth = GroundTruth.stored("cifar10")
    data = load_dataset("cifar10", args.data_root, download=False)
    base = json.loads(BASELINE.read_text())
    if args.stage == "finetune":
        finetune(args, truth, data)
    elif args.stage == "score":
        if args.check:
            check(args, truth, data, base["scores_per_seed"])
        seeds = [args.seed] if args.seed is not None else LEVERS[args.lever]["seeds"]
        truth.check_proxy_seeds(seeds)
        score(args, truth, data, seeds)
    else:
        res = report(args, truth, data, base)
        write_json(DOCS_FIGURES / "nas_levers.json", res)
        text = fragment(res)
        (DOCS_FIGURES / "nas_levers.md.txt").write_text(text)
        update_docs("nas_levers", text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

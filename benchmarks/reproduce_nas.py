"""Figure 3c and the random search of section 3.4: every NAS evaluation ranked against a ground truth.

    python benchmarks/reproduce_nas.py --quick --data-root ../shared/data   # CPU, ~40 min (2 inits a cell)
    python benchmarks/reproduce_nas.py --quick --proxy-seeds 100 --threads 1 &   # the same in two processes:
    python benchmarks/reproduce_nas.py --quick --proxy-seeds 101 --threads 1 &   # one seed each (own cache
    wait; python benchmarks/reproduce_nas.py --quick                             # files), then the table
    python benchmarks/reproduce_nas.py --full --device cuda --truth T.json --teacher DIR --time-limit 3000
    python benchmarks/reproduce_nas.py --smoke --truth T.json               # seconds (the tests)

It scores the architectures of a ground-truth table (`GroundTruth`, from
`benchmarks/nas_groundtruth.py`; `--quick` reads the one the library ships) with seven
evaluations: GTN data (T steps on a trained teacher's curriculum) and real data at the same
T steps with the lr and momentum meta-learned for real data, each scored two ways (with
the BatchNorm statistics of the last inner batch, the library's convention, and with those
of `BN_IMAGES` real training images), a short real training (`--full`: the paper's 3
epochs; `--quick`: one epoch of 900 images, a quarter of the ground truth's first epoch),
and the zero-cost proxies SynFlow and NASWOT. It reports Spearman's rank correlation with
the ground truth over all architectures and over each evaluation's top half, with 95%
bootstrap intervals, the seconds each evaluation costs per architecture, the ground truth's
seed-to-seed correlation, a paired bootstrap of GTN minus real data (same steps) for each
BatchNorm setting (`paired_bootstrap`: the same resampled architectures for both), and
random searches simulated from the table (`simulate_searches`: each search draws
`--search-n` of the table's architectures, every evaluation picks its best, and the pick's
ground truth is what counts). Outputs in `--out`: `repro_nas_<plan>.json`, the figures
`_fig3c.png` and `_search.png`, and a markdown fragment pasted into docs/benchmarks/nas.md when
`--out` is docs/figures.

Seeds. Every evaluation scores each cell once per `--proxy-seeds` seed (default: `PROXY_SEEDS`
100-102 for `--full`, the first two for `--quick` and smoke), a fresh initialisation each, and the table
shows the mean score; its cost column is the *sum* of the seconds over those
initialisations. The proxy seeds must differ from the ground truth's (0 and 1): the same
seed would initialise every cell exactly as the ground truth's training did.

Scoring images. `--score-on val` (`--full` and smoke) scores GTN and real-data evaluation on
the 400 validation images; `--score-on train` (`--quick`) on the 3600 training images of the
partial copy, a less noisy score (binomial error 0.7 points instead of 1.9 at 20%):
GTN evaluation's learners never see a real image while they train (only the BatchNorm
pass of the real-statistics rows does, without labels; the teacher, though, was
meta-trained against training images, with other learners), and the real-data proxy sees
only its T*B training images drawn at random (400 of 3600 at `--quick`'s T=8, B=50). The
short real training is always scored on the validation images (it trains on the first of
the training images).

The teacher: `--teacher DIR` holds `gtn_checkpoint.pt` and `real_checkpoint.pt` of a
CIFAR-10 run (`gtn-edu train --dataset cifar10 --quick --out DIR`, or
`benchmarks/reproduce_cifar10.py --quick`, whose folder is the `--quick` default). The
paper's NAS teacher is its CIFAR-10 GTN, meta-trained on the A.2 learners only.

`--full` is the paper's setting on one GPU: a ground truth at N=3, F=32 that you compute
first (`nas_groundtruth.py --device cuda --filters 32 --cells-per-stage 3 --epochs 20
--n 200`), a Table 3 teacher (T=128) from `gtn-edu train --dataset cifar10 --device
cuda`, and searches of 100 candidates. Every score is cached in `--cache-dir` as it is
computed, so `--time-limit` stops between architectures and a rerun continues.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, REPO, environment, is_docs_folder, plan_parser, pyplot, update_docs, write_json

from gtn_edu import CIFARConfig, Split, load_dataset
from gtn_edu.evaluate import BN_IMAGES
from gtn_edu.experiment import build_arm, load_arm
from gtn_edu.nas import (
    PROXY_SEEDS,
    EpochsEvaluation,
    GroundTruth,
    GTNEvaluation,
    NASEvaluator,
    NASWOTEvaluation,
    RealDataEvaluation,
    SynFlowEvaluation,
    markdown_table,
    mean_over_seeds,
    paired_bootstrap,
    plot_proxies,
    plot_searches,
    proxy_table,
    simulate_searches,
)
from gtn_edu.nas.groundtruth import TABLES

PLANS = {  # search size, simulated searches, bootstrap resamples, NASWOT batch, short real training, proxy seeds,
    # images whose BatchNorm statistics the "BN of ... real images" rows use
    "smoke": dict(search_n=2, searches=20, n_boot=50, naswot_batch=16, short_images=32, short_epochs=1,
                  proxy_seeds=PROXY_SEEDS[:2], bn_images=64, score_on="val"),
    "quick": dict(search_n=10, searches=2000, n_boot=2000, naswot_batch=64, short_images=900, short_epochs=1,
                  proxy_seeds=PROXY_SEEDS[:2], bn_images=BN_IMAGES, score_on="train"),
    "full": dict(search_n=100, searches=2000, n_boot=2000, naswot_batch=128, short_images=None, short_epochs=3,
                 proxy_seeds=PROXY_SEEDS, bn_images=BN_IMAGES, score_on="val"),
}


def real_bn(images: int) -> str:
    """Suffix of the rows scored with BatchNorm statistics of `images` real training images."""
    return f", BN of {images} real images"


def pairs_of(images: int) -> dict[str, tuple[str, str]]:
    """The paired bootstraps, GTN minus real data at the same steps, by BatchNorm statistics."""
    return {"last inner batch": ("GTN data", "real data, same steps"),
            f"{images} real images": ("GTN data" + real_bn(images), "real data, same steps" + real_bn(images))}
SMOKE_TEACHER = dict(inner_steps=2, inner_batch=10, outer_batch=32, outer_steps=2, init_lr=0.1, per_step_hyper=True,
                     latent_dim=8, teacher_hidden=16, teacher_channels=4, teacher_conv_channels=4,
                     arch_scale=0.0625, mode="full", eval_learners=1)


def _shown(path: Path) -> str:
    """`path` relative to the repository when it lies inside it (as the docs show it)."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _reused(path: Path | None) -> dict | None:
    """The ground-truth table's `reused` entry (scores an earlier run computed, and where), or None."""
    raw = json.loads((path or TABLES / "groundtruth_cifar10.json").read_text())
    return raw.get("reused")


def short_name(plan: dict) -> str:
    """The short real training's row name, e.g. "real training, 1 epoch of 900 images"."""
    images = f" of {plan['short_images']} images" if plan["short_images"] else ""
    return f"real training, {plan['short_epochs']} epoch{'s' if plan['short_epochs'] > 1 else ''}{images}"


def arms(args, data) -> dict:
    """The "gtn" and "real" arms: loaded from `--teacher`, or (smoke only) meta-trained for 2 iterations here."""
    out = {}
    for kind in ("gtn", "real"):
        path = args.teacher / f"{kind}_checkpoint.pt" if args.teacher else None
        if path is not None and path.exists():
            out[kind] = load_arm(kind, path, data, device=args.device)
        elif args.plan == "smoke":
            out[kind] = build_arm(kind, CIFARConfig(**SMOKE_TEACHER), data, device=args.device, progress=False)
            out[kind].trainer.fit(2)
        else:
            raise SystemExit(f"no teacher checkpoint {path}: run `python benchmarks/reproduce_cifar10.py "
                             f"--{args.plan}` (or `gtn-edu train --dataset cifar10 --quick --out DIR`) first, or "
                             "pass --teacher DIR")
    return out


def evaluate(args, truth: GroundTruth, evaluations: dict, start: float) -> tuple[dict, dict, bool]:
    """Every evaluation on every architecture with every proxy seed, one at a time so `--time-limit` can stop.

    Returns:
        (`{name: [Result]}` averaged over the seeds by `mean_over_seeds`, `{name: {seed: [score]}}`,
        finished).
    """
    results, per_seed = {}, {}
    for name, ev in evaluations.items():
        per_seed[name] = {}
        for seed in args.proxy_seeds:
            evaluator = NASEvaluator(truth.space, ev, args.cache_dir, seed=seed, progress=False)
            per_seed[name][seed] = []
            for spec in truth.genotypes:
                if args.time_limit and time.perf_counter() - start > args.time_limit:
                    return results, per_seed, False
                per_seed[name][seed] += evaluator.evaluate([spec])
        results[name] = mean_over_seeds(list(per_seed[name].values()))
        median = statistics.median(r.seconds for r in results[name])
        print(f"{name}: {len(truth)} architectures x {len(args.proxy_seeds)} seeds, median {median:.2f} s an "
              "architecture", flush=True)
    return results, {n: {s: [r.score for r in rs] for s, rs in d.items()} for n, d in per_seed.items()}, True


def paired(scores: dict, truth: list[float], n_boot: int, bn_images: int) -> dict:
    """`{BN setting: PairedDifference}`: GTN minus real data (same steps), Spearman with the truth."""
    return {bn: paired_bootstrap(scores[a], scores[b], truth, n_boot=n_boot)
            for bn, (a, b) in pairs_of(bn_images).items()}


def compact(searches: dict) -> dict:
    """`simulate_searches` output for the JSON: each evaluation's picks, the shared baselines once."""
    first = next(iter(searches.values()))
    return {"evaluations": {name: {"mean": r["mean"], "stdev": r["stdev"], "seconds_per_search": r["seconds"][0],
                                   "picked_truth": r["picked_truth"]} for name, r in searches.items()},
            "perfect_mean": statistics.fmean(first["best_possible"]),
            "random_mean": statistics.fmean(first["sample_mean"])}


def fragment(res: dict, stem: str) -> str:
    env, s, gt = res["env"], res["settings"], res["truth"]
    out = [f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}; plan "
           f"`{res['plan']}`, {res['seconds'] / 60:.1f} min. Ground truth: {gt['n']} cells (N={gt['space']['N']}, "
           f"F={gt['space']['F']}) trained {gt['settings'].get('epochs')} epochs on {gt['settings'].get('dataset')} "
           f"with seeds {gt['seeds']}, scored on its {gt['settings'].get('score_split', 'val')} split (computed on "
           f"{gt['env'].get('device_label', '?')}, commit {gt['env'].get('commit', '?')}"
           + (f"; {gt['reused']['scores']} of its scores reused from an earlier table computed on "
              f"{gt['reused']['env'].get('device_label', '?')}, commit {gt['reused']['env'].get('commit', '?')}"
              if gt.get("reused") else "") + "). Teacher: "
           f"{res['teacher']['source']}, T={res['teacher']['steps']} steps of batch {res['teacher']['batch']}; "
           f"GTN and real-data evaluation score on {s['score_images']} {s['score_on']} images, with the BatchNorm "
           f"statistics of the last inner batch or, in the rows \"...{real_bn(s['bn_images'])}\", of the first "
           f"{s['bn_images']} training images. "
           f"Every evaluation is the mean over {len(s['proxy_seeds'])} initialisations per cell (evaluator seeds "
           f"{list(s['proxy_seeds'])}, none a ground-truth seed); its seconds are their sum. Spearman with the "
           f"mean of the ground truth's seeds, 95% bootstrap intervals over architectures ({s['n_boot']} "
           "resamples):", "", res["table"], "",
           "GTN minus real data at the same steps, Spearman over all architectures, paired bootstrap (the same "
           "resampled architectures for both):", "",
           "| BatchNorm statistics | difference [95% CI] | resamples with GTN ahead |", "|---|---|---|"]
    for bn, d in res["paired_bootstrap"].items():
        out.append(f"| {bn} | {d['difference']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | "
                   f"{100 * d['above_zero']:.1f}% |")
    out += ["", f"Random search, simulated from the table: {s['searches']} searches, each of {s['search_n']} "
            "architectures drawn from the table; every evaluation picks its best of the same draw. Ground-truth "
            "accuracy (%) of the pick:", "",
            "| evaluation | picked, mean | picked, sd | seconds a search |", "|---|---|---|---|"]
    for name, r in res["searches"]["evaluations"].items():
        out.append(f"| {name} | {100 * r['mean']:.2f} | {100 * r['stdev']:.2f} | {r['seconds_per_search']:.1f} |")
    out.append(f"| a perfect evaluation | {100 * res['searches']['perfect_mean']:.2f} | | |")
    out.append(f"| a random pick | {100 * res['searches']['random_mean']:.2f} | | 0 |")
    for png in res["figures"]:
        out += ["", f"![{Path(png).stem}](figures/{Path(png).name})"]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = plan_parser(__doc__, PLANS)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-root", default=None, help="CIFAR-10 folder (else $GTN_EDU_DATA)")
    ap.add_argument("--truth", type=Path, default=None, help="ground-truth JSON (default: the stored CIFAR-10 one)")
    ap.add_argument("--teacher", type=Path, default=None,
                    help="folder with gtn_checkpoint.pt and real_checkpoint.pt (default runs/repro_cifar10_<plan>)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--cache-dir", type=Path, default=None, help="score cache (default runs/repro_nas_<plan>)")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds (rerun continues)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--proxy-seeds", type=int, nargs="+", default=None,
                    help=f"evaluator seeds, one initialisation per cell each (default: the plan's; {PROXY_SEEDS})")
    ap.add_argument("--score-on", choices=["val", "train"], default=None,
                    help="what GTN and real-data evaluation score on (default: the plan's; see the docstring)")
    args = ap.parse_args(argv)
    plan = PLANS[args.plan]
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.plan == "full" and args.truth is None:
        ap.error("--full needs --truth: a ground truth at the paper's size (see the docstring)")
    if args.teacher is None and args.plan != "smoke":
        args.teacher = REPO / "runs" / f"repro_cifar10_{args.plan}"
    args.cache_dir = args.cache_dir or REPO / "runs" / f"repro_nas_{args.plan}"
    args.proxy_seeds = list(args.proxy_seeds or plan["proxy_seeds"])
    args.score_on = args.score_on or plan["score_on"]
    if len(set(args.proxy_seeds)) < len(args.proxy_seeds):
        ap.error(f"--proxy-seeds {args.proxy_seeds} repeats a seed: the same initialisation would count twice")
    start = time.perf_counter()

    truth = GroundTruth.load(args.truth) if args.truth else GroundTruth.stored("cifar10")
    try:
        truth.check_proxy_seeds(args.proxy_seeds)
    except ValueError as e:
        ap.error(str(e))
    data = load_dataset(truth.settings.get("dataset", "cifar10"), args.data_root, download=False, device=args.device)
    trained, scored = arms(args, data), data.val if args.score_on == "val" else data.train
    bn = data.train.x[:plan["bn_images"]]
    evaluations = {}
    for suffix, bn_images in (("", None), (real_bn(len(bn)), bn)):
        evaluations["GTN data" + suffix] = GTNEvaluation.from_arm(trained["gtn"], scored, bn_images=bn_images)
        evaluations["real data, same steps" + suffix] = RealDataEvaluation.from_arm(trained["real"], data.train,
                                                                                   scored, bn_images=bn_images)
    short = Split(data.train.x[:plan["short_images"]], data.train.y[:plan["short_images"]])
    evaluations |= {short_name(plan): EpochsEvaluation(short, data.val, plan["short_epochs"], 64, bn_images=256),
                    "SynFlow": SynFlowEvaluation(args.device),
                    "NASWOT": NASWOTEvaluation(data.train.x[:plan["naswot_batch"]])}
    results, per_seed, finished = evaluate(args, truth, evaluations, start)
    if not finished:
        done = sum(len(r) for d in per_seed.values() for r in d.values())
        print(f"stopped by --time-limit after {done} of {len(truth) * len(evaluations) * len(args.proxy_seeds)} "
              "scores; run the same command again to continue")
        return 0

    mean_truth = truth.mean
    rows = proxy_table(results, mean_truth, n_boot=plan["n_boot"])
    ceiling = truth.seed_to_seed() if len(truth.scores) > 1 else None
    scores = {r["name"]: r["scores"] for r in rows}
    pairs = paired(scores, mean_truth, plan["n_boot"], len(bn))
    searches = simulate_searches(scores, mean_truth, n=plan["search_n"],
                                 seeds=range(plan["searches"]), seconds={r["name"]: r["seconds"] for r in rows})
    stem = f"repro_nas_{args.plan}"
    args.out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    figures = []
    for suffix, fig in (("fig3c", plot_proxies(rows, mean_truth)), ("search", plot_searches(searches,
                                                                                               n=plan["search_n"]))):
        figures.append(str(args.out / f"{stem}_{suffix}.png"))
        fig.savefig(figures[-1], dpi=110)
        plt.close(fig)
    gtn = trained["gtn"]
    res = {"plan": args.plan, "env": environment(args.device), "seconds": time.perf_counter() - start,
           "settings": {**plan, "proxy_seeds": args.proxy_seeds, "score_on": args.score_on,
                        "score_images": len(scored), "val_images": len(data.val), "bn_images": len(bn)},
           "teacher": {"source": f"`{_shown(args.teacher)}` ({gtn.trainer.iteration} outer iterations)" if args.teacher
                       else f"meta-trained here ({gtn.trainer.iteration} outer iterations)",
                       "steps": gtn.curriculum.steps, "batch": gtn.curriculum.batch_size},
           "truth": {"n": len(truth), "seeds": sorted(truth.scores), "seed_to_seed": ceiling,
                     "reused": _reused(args.truth),
                     "seconds_per_training": truth.seconds_per_training(), "settings": truth.settings,
                     "env": truth.env, "space": {"N": truth.space.cells_per_stage, "F": truth.space.filters}},
           "rank_correlations": {r["name"]: {k: vars(r[k]) for k in ("all", "top_half")} | {"seconds": r["seconds"]}
                                 for r in rows},
           "paired_bootstrap": {k: vars(d) for k, d in pairs.items()},
           "scores": scores, "scores_per_seed": per_seed, "ground_truth": mean_truth,
           "searches": compact(searches), "figures": [Path(f).name for f in figures],
           "table": markdown_table(rows, truth_seconds=truth.seconds_per_training(), ceiling=ceiling)}
    write_json(args.out / f"{stem}.json", res)
    text = fragment(res, stem)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out):
        update_docs(stem, text)
    print(res["table"])
    for bn, d in pairs.items():
        print(f"GTN minus real data, same steps (BN of {bn}): {d}")
    print(f"done in {res['seconds'] / 60:.1f} min; results in {args.out}/{stem}.*")
    return 0


if __name__ == "__main__":
    sys.exit(main())

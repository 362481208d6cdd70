"""The ground truth of a fixed sample of NAS cells: real training, two or more seeds (issue 11, item 5).

    python benchmarks/nas_groundtruth.py --data-root ../shared/data --seeds 0 --threads 1 &  # 2 CPU cores:
    python benchmarks/nas_groundtruth.py --data-root ../shared/data --seeds 1 --threads 1 &  # ~70 min, seeds
    wait; python benchmarks/nas_groundtruth.py --data-root ../shared/data                   # in parallel
    python benchmarks/nas_groundtruth.py --n 100 --seeds 0 --threads 1 &  # extend the shipped table: only the
    python benchmarks/nas_groundtruth.py --n 100 --seeds 1 --threads 1 &  # 60 new cells train, even with no
    wait; python benchmarks/nas_groundtruth.py --n 100                    # cache (its rows fill the cache)
    python benchmarks/nas_groundtruth.py --dataset fashion-mnist --n 40 --seeds 0 1 2
    python benchmarks/nas_groundtruth.py --device cuda --filters 32 --cells-per-stage 3 --epochs 20 --n 200

Real training of every sampled architecture is what a NAS proxy tries to predict, and too
expensive for a tutorial on a CPU. This script computes it once for the first `--n`
architectures of `sample_specs(space, n, seed=0)` (the same candidates a random search
with seed 0 draws): each trained `--epochs` epochs of real data (`EpochsEvaluation`) with
each seed of `--seeds`, scored on `--score-split` (default: the 1000 test images of the
partial CIFAR-10 copy rather than its 400 validation images, which the proxies use; a
ranking needs the less noisy score). It writes one small JSON
(`--out`, default `gtn_edu/nas/tables/groundtruth_<dataset>.json`, the table the library
ships and `GroundTruth.stored()` reads) with the settings, the
device, the commit and the seconds it took, plus the seeds' own rank correlation, the
ceiling for any proxy. Every architecture is cached as it finishes (`--cache-dir`), so a
stopped run (Ctrl-C, `--time-limit`) continues where it stopped when run again; a bigger
`--n` extends a finished table by evaluating only the new architectures. That holds on a
fresh machine too, without the cache: the rows of the table at `--reuse` (default: `--out`,
so the shipped table) are written into the cache first (those of the run's `--seeds`:
start processes of one seed each together, as above, since each reads the table as it
starts and writes it when done), provided the table was computed with the same space and
settings (all but `--n` and `--seeds`; and the same evaluation key, a hash that includes
the data, when the table records one); otherwise the script says why and computes
everything (`--no-reuse`: never read a table). For a run longer than a session, give each
seed's process its own `--out` and `--progress`: the table is rewritten after every trained
cell (`"complete": false` until the end), so a stop loses one training at most, and the next
session continues with `--reuse` of that file even without the cache:

    python benchmarks/nas_groundtruth.py --n 100 --seeds 0 --threads 1 --progress \
        --out benchmarks/progress/groundtruth_cifar10_n100_seed0.json &      # the same for seed 1
    # later, on any machine: the same with --reuse benchmarks/progress/..._seed0.json

Cost at the defaults (CIFAR-10 partial copy, 3600 training images, N=1, F=8, 2 epochs of
batch 64): about 100 s a training on one CPU thread (50 s an epoch, in channels-last
memory order), so 40 cells x 2 seeds take about 70 minutes with the two seeds run as two
single-thread processes at once (the commands above: the last one finds every score in
the cache and writes the table). The JSON records the measured seconds of every training.
On a GPU, raise `--filters`, `--cells-per-stage`, `--epochs` and `--n` (the last command
at the top); the scores are cached per setting, so a bigger table never reuses small ones.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, REPO, environment, write_json

from gtn_edu.data import Split, load_dataset
from gtn_edu.nas import CellSpace, EpochsEvaluation, NASEvaluator, sample_specs, seed_to_seed
from gtn_edu.nas.evaluator import Result, canonical
from gtn_edu.nas.groundtruth import TABLES

SMOKE = dict(n=3, seeds=[0, 1], epochs=1, filters=4, cells_per_stage=1, num_nodes=2, train_images=64,
             val_images=64, batch_size=16, bn_images=32)
"""The `--smoke` defaults (options given on the command line still win, e.g. `--smoke --n 5`)."""
NOT_SETTINGS = ("out", "cache_dir", "time_limit", "data_root", "threads", "reuse", "no_reuse", "progress")
"""Options that do not change a score: left out of the table's settings."""
GROWS = ("n", "seeds")
"""Settings a run may change and still reuse a stored table's rows."""


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "fashion-mnist", "mnist"])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=40, help="architectures (the first n of the seed-0 search sample)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds per architecture")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--filters", type=int, default=8, help="F of the blueprint (the paper's search: 32)")
    ap.add_argument("--cells-per-stage", type=int, default=1, help="N of the blueprint (the paper's search: 3)")
    ap.add_argument("--num-nodes", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--train-images", type=int, default=None, help="use only this many training images")
    ap.add_argument("--val-images", type=int, default=None, help="score on only this many validation images")
    ap.add_argument("--score-split", default="test", choices=["val", "test"],
                    help="split the trained networks are scored on")
    ap.add_argument("--bn-images", type=int, default=512, help="training images that set BatchNorm's statistics")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 when running seeds in parallel)")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds (resumable)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--reuse", type=Path, default=None,
                    help="a table whose rows need no recomputing if its space and settings match (default: --out)")
    ap.add_argument("--no-reuse", action="store_true", help="read no stored table: only the cache")
    ap.add_argument("--progress", action="store_true",
                    help="rewrite --out after every newly trained architecture (complete: false until the end), so "
                         "a killed run keeps its scores in a file you can commit and --reuse; not for the shipped "
                         "table, which must stay complete")
    ap.add_argument("--smoke", action="store_true", help="a seconds-long run on tiny settings (the tests)")
    args = ap.parse_args(argv)
    if args.smoke:
        ap.set_defaults(**SMOKE)
        args = ap.parse_args(argv)
    if args.out is None:  # the shipped table (GroundTruth.stored), or beside the figures for a smoke run
        args.out = (DOCS_FIGURES / f"nas_groundtruth_{args.dataset}_smoke.json" if args.smoke
                    else TABLES / f"groundtruth_{args.dataset}.json")
    args.cache_dir = args.cache_dir or REPO / "runs" / f"nas_groundtruth_{args.dataset}"
    args.reuse = None if args.no_reuse else (args.reuse or args.out)
    if args.progress and args.out.resolve() == (TABLES / f"groundtruth_{args.dataset}.json").resolve():
        ap.error("--progress writes incomplete tables: give it its own --out (and --reuse the shipped table)")
    return args


def settings_of(args: argparse.Namespace) -> dict:
    """The run's settings as the table records them (JSON values; no paths, threads or time limit)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in NOT_SETTINGS}


def stored_results(path: Path | None, settings: dict, space: dict, key: str,
                   specs: list[dict]) -> tuple[dict[int, list[Result]], str]:
    """The rows of the table at `path` this run would compute the same, by seed, and a line saying what was found.

    A table counts if its space and its settings (but `GROWS`) equal the run's, its
    evaluation key too when it records one, and its genotypes are the first of `specs`.
    """
    if path is None or not path.exists():
        return {}, "no stored table to reuse"
    raw = json.loads(path.read_text())
    old, new = ({k: v for k, v in d.items() if k not in GROWS} for d in (raw.get("settings", {}), settings))
    why = []
    if raw.get("space") != space:
        why.append("its space differs")
    if old != new:
        why.append(f"its settings differ in {sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))}")
    if raw.get("evaluation", {}).get("key", key) != key:
        why.append("its evaluation key differs (other data?)")
    rows = raw.get("architectures", [])[:len(specs)]
    if [canonical(r["genotype"]) for r in rows] != [canonical(g) for g in specs[:len(rows)]]:
        why.append("its architectures are not this run's sample")
    if why:
        return {}, f"not reusing {path}: " + "; ".join(why)
    by_seed: dict[int, list[Result]] = {}
    for r in rows:
        for seed, acc in r["accuracy"].items():
            by_seed.setdefault(int(seed), []).append(Result(r["genotype"], acc, r["seconds"][seed]))
    return by_seed, f"reusing {path}: {sum(map(len, by_seed.values()))} scores of {len(rows)} architectures"


def main(argv=None) -> int:
    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_root, download=False, device=args.device)
    train, val = data.train, getattr(data, args.score_split)
    if args.train_images:
        train = Split(train.x[:args.train_images], train.y[:args.train_images])
    if args.val_images:
        val = Split(val.x[:args.val_images], val.y[:args.val_images])
    space = CellSpace(data.image_shape, data.num_classes, cells_per_stage=args.cells_per_stage,
                      filters=args.filters, num_nodes=args.num_nodes)
    evaluation = EpochsEvaluation(train, val, args.epochs, args.batch_size, args.lr, bn_images=args.bn_images)
    specs = sample_specs(space, args.n, seed=0)
    print(f"ground truth of {args.n} cells x seeds {args.seeds}: {args.epochs} epochs of {len(train)} "
          f"{args.dataset} images, scored on {len(val)} {args.score_split} images, "
          f"N={args.cells_per_stage}, F={args.filters}, on {args.device}; cache "
          f"{args.cache_dir}", flush=True)
    space_json = {"input_shape": list(space.input_shape), "num_classes": space.num_classes,
                  "cells_per_stage": space.cells_per_stage, "filters": space.filters, "num_nodes": space.num_nodes,
                  "ops": list(space.ops), "weight_norm": space.weight_norm}
    key = NASEvaluator(space, evaluation).key
    stored, found = stored_results(args.reuse, settings_of(args), space_json, key, specs)
    print(found, flush=True)
    start, per_seed, finished, copied = time.perf_counter(), {}, True, 0
    reused = sum(len(stored.get(seed, [])) for seed in args.seeds)

    def table(complete: bool) -> dict:
        done = [s for s in args.seeds if len(per_seed.get(s, [])) == len(specs)]
        ceiling = seed_to_seed([[r.score for r in per_seed[s]] for s in done]) if len(done) >= 2 else None
        rows = [{"genotype": spec,
                 "accuracy": {str(s): per_seed[s][i].score for s in args.seeds if i < len(per_seed.get(s, []))},
                 "seconds": {str(s): per_seed[s][i].seconds for s in args.seeds if i < len(per_seed.get(s, []))}}
                for i, spec in enumerate(specs)]
        return {"env": environment(args.device), "complete": complete, "settings": settings_of(args),
                "space": space_json, "evaluation": {"name": evaluation.name, "key": key},
                # scores an earlier run computed (the reused table's env says where), whether this run copied
                # them into its cache or found them there already
                "reused": {"table": str(args.reuse), "scores": reused, "copied_into_cache": copied,
                           "env": json.loads(args.reuse.read_text()).get("env")} if reused else None,
                "splits": {"train": len(train), "val": len(val)}, "seed_to_seed_spearman": ceiling,
                "seconds": sum(r.seconds for rs in per_seed.values() for r in rs), "architectures": rows}

    for seed in args.seeds:
        evaluator = NASEvaluator(space, evaluation, args.cache_dir, seed=seed)
        # only this run's seeds: a process per seed never writes another's cache file
        if stored.get(seed) and (added := evaluator.prefill(stored[seed])):
            print(f"seed {seed}: {added} scores copied from the table into the cache", flush=True)
            copied += added
        results = per_seed[seed] = []
        for spec in specs:  # one at a time, so the time limit can stop between architectures
            if args.time_limit and time.perf_counter() - start > args.time_limit:
                finished = False
                break
            result = evaluator.evaluate([spec])[0]
            results.append(result)
            if args.progress and not result.cached:  # a stop (even a killed session) loses one training at most
                write_json(args.out, table(complete=False))
        if not finished:
            break
    res = table(finished)
    ceiling = res["seed_to_seed_spearman"]
    write_json(args.out, res)
    cost = res["seconds"] / max(1, sum(len(rs) for rs in per_seed.values()))
    print(f"{'done' if finished else 'stopped by --time-limit (run again to continue)'}: "
          f"{sum(len(rs) for rs in per_seed.values())} trainings, {cost:.1f} s each; seed-to-seed Spearman "
          f"{'-' if ceiling is None else f'{ceiling:.3f}'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

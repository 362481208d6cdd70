"""k learners per outer iteration: each generating its own batches, sharing them, or stacked (vmapped)?

    python benchmarks/stack_cost.py                       # CPU, quick size, k=4, MLP and conv learners, 2 curricula
    python benchmarks/stack_cost.py --device cuda         # the same on a GPU
    python benchmarks/stack_cost.py --smoke --out /tmp/s  # seconds (the tests)

With `MetaTrainer(learners_per_step=k)` an outer iteration trains k fresh learners. This
script times whole outer iterations (teacher batches, unroll, meta-loss, meta-gradient, Adam
step) three ways, for a fixed-width MLP learner and a fixed-width conv learner, with the
quick-size generator (`--quick`'s teacher, T and batch):

* each its own batches: the learners one after another, each generating its batches (what
  gtn_edu did before `stacked.BatchesOnce`; forced here by batches that name no source);
* one at a time: the default; when every learner trains on the same batches (the `full`
  curriculum, the paper's: fixed codes in a fixed order), each batch is generated once;
* stacked: `stack_learners=True`, the k states stacked and each inner step vmapped
  (`gtn_edu/fast/stacked.py`).

and two curricula: `full` and `shuffled_batch` (each learner its own batch order, so k
teacher batches a step whichever way; the first way is then the second and is not run).
Repeats alternate the ways; the table gives medians, and medians of the per-repeat ratios.
The warm-up iteration also reports how far the meta-gradients lie apart (float32, norm of
the largest difference over the norm of the whole meta-gradient).
Real data are random tensors of MNIST's shape: the cost does not depend on their values.
Outputs in `--out`: `stack_cost[_cuda].json` and a markdown fragment, pasted into
docs/benchmarks/cost.md when `--out` is docs/figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from report import DOCS_FIGURES, environment, is_docs_folder, update_docs, write_json

from gtn_edu import ArchSpace, Curriculum, MetaTrainer, RealBatchLoss, Teacher, UnrolledSGD
from gtn_edu.config import QUICK_CHANGES
from gtn_edu.data import Split

SHAPE, K = (1, 28, 28), 10
QUICK = dict(T=QUICK_CHANGES["inner_steps"], batch=QUICK_CHANGES["inner_batch"], real=QUICK_CHANGES["outer_batch"],
             teacher=dict(hidden=QUICK_CHANGES["teacher_hidden"], channels=QUICK_CHANGES["teacher_channels"],
                          conv_channels=QUICK_CHANGES["teacher_conv_channels"]),
             spaces={"mlp [128]": lambda: ArchSpace.mlp(SHAPE, K, width_range=(128, 128), max_layers=1),
                     "conv [20, 40] / 40": lambda: ArchSpace.mnist(SHAPE, K, channel_ranges=((20, 20), (40, 40)),
                                                                   hidden_range=(40, 40))})
SMOKE = dict(T=2, batch=10, real=20, teacher=dict(hidden=16, channels=4, conv_channels=4),
             spaces={"mlp [16]": lambda: ArchSpace.mlp(SHAPE, K, width_range=(16, 16), max_layers=1),
                     "conv [2, 4] / 8": lambda: ArchSpace.mnist(SHAPE, K, channel_ranges=((2, 2), (4, 4)),
                                                                hidden_range=(8, 8))})


WAYS = ("separate", "one_at_a_time", "stacked")
"""separate: each learner generates its own batches, as before `BatchesOnce` (the baseline);
one_at_a_time: the default, learners one after another, a batch computed once when all share it;
stacked: `stack_learners=True`."""


def trainer(plan: dict, space, k: int, way: str, mode: str, variant: str, device: str) -> MetaTrainer:
    """The same teacher, codes, data and learners for every way (seeded alike)."""
    g = torch.Generator().manual_seed(0)
    real = Split(torch.randn(2000, *SHAPE, generator=g), torch.arange(2000) % K)
    torch.manual_seed(0)
    teacher = Teacher(SHAPE, K, latent_dim=128, **plan["teacher"]).to(device)
    if way == "separate":  # batches that do not say where they come from are never shared
        teacher.batches = lambda cur, rng=None: dataclasses.replace(Teacher.batches(teacher, cur, rng), source=None)
    cur = Curriculum(plan["T"], plan["batch"], K, variant=variant).to(device)
    return MetaTrainer(teacher, cur, UnrolledSGD(0.1, 0.5, per_step=plan["T"], mode=mode).to(device), space(),
                       RealBatchLoss(real.to(device), plan["real"]), seed=0,
                       progress=False, learners_per_step=k, stack_learners=way == "stacked")


def timed_step(tr: MetaTrainer, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    tr.outer_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure(plan: dict, name: str, k: int, mode: str, variant: str, repeats: int, device: str) -> dict:
    """Seconds per outer iteration of each way, alternating; `separate` only where batches could be shared."""
    names = WAYS if variant == "full" else WAYS[1:]
    ways = {w: trainer(plan, plan["spaces"][name], k, w, mode, variant, device) for w in names}
    for tr in ways.values():  # warm-up (first-call allocations), and the meta-gradients side by side
        tr.outer_step()
    flat = {w: torch.cat([p.grad.flatten() for p in tr.params]) for w, tr in ways.items()}
    ref = flat[names[0]]
    diff = max(float((v - ref).norm() / ref.norm()) for v in flat.values())  # of the whole meta-gradient vector
    times = {w: [] for w in names}
    for r in range(repeats):
        for w in (names if r % 2 == 0 else names[::-1]):
            times[w].append(timed_step(ways[w], device))
    out = {"learner": name, "k": k, "mode": mode, "curriculum": variant, "grad_rel_diff": diff, "times": times,
           **{f"{w}_s": statistics.median(times[w]) for w in names},
           "ratio": statistics.median(s / o for s, o in zip(times["stacked"], times["one_at_a_time"]))}
    if "separate" in times:
        out["once_ratio"] = statistics.median(o / s for o, s in zip(times["one_at_a_time"], times["separate"]))
        out["stacked_vs_separate"] = statistics.median(s / o for s, o in zip(times["stacked"], times["separate"]))
    return out


def fragment(res: dict) -> str:
    env = res["env"]
    lines = [f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}: "
             f"the quick-size generator, T={res['T']}, inner batch {res['batch']}, real batch {res['real']}, "
             f"{res['repeats']} alternating repeats after one warm-up iteration each. Seconds per outer iteration "
             "(medians); ratios are medians of per-repeat ratios.",
             "",
             "| learner | k | curriculum | mode | each its own batches, s | one at a time, s | stacked, s "
             "| one at a time / own batches | stacked / one at a time | gradients differ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        own = f"{r['separate_s']:.3f}" if "separate_s" in r else "-"
        once = f"{r['once_ratio']:.2f}" if "once_ratio" in r else "-"
        lines.append(f"| {r['learner']} | {r['k']} | {r['curriculum']} | {r['mode']} | {own} "
                     f"| {r['one_at_a_time_s']:.3f} | {r['stacked_s']:.3f} | {once} | {r['ratio']:.2f} "
                     f"| {r['grad_rel_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--learners", type=int, nargs="+", default=[4], help="k, learners per outer iteration")
    ap.add_argument("--modes", nargs="+", choices=["full", "recompute"], default=["full", "recompute"])
    ap.add_argument("--curricula", nargs="+", choices=["full", "shuffled_batch"], default=["full", "shuffled_batch"],
                    help="full: every learner trains on the same batches (computed once when stacked)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = SMOKE if args.smoke else QUICK
    rows = []
    for name in plan["spaces"]:
        for k, variant, mode in itertools.product(args.learners, args.curricula, args.modes):
            rows.append(measure(plan, name, k, mode, variant, args.repeats, args.device))
            r = rows[-1]
            print(f"{name:20s} k={k} {variant:14s} {mode:10s} own batches {r.get('separate_s', float('nan')):.3f} s, "
                  f"one at a time {r['one_at_a_time_s']:.3f} s, stacked {r['stacked_s']:.3f} s, "
                  f"grads differ {r['grad_rel_diff']:.1e}", flush=True)
    res = {"env": environment(args.device), "T": plan["T"], "batch": plan["batch"], "real": plan["real"],
           "repeats": args.repeats, "rows": rows}
    stem = "stack_cost" + ("_cuda" if args.device.startswith("cuda") else "") + ("_smoke" if args.smoke else "")
    text = fragment(res)
    write_json(args.out / f"{stem}.json", res)
    (args.out / f"{stem}.md.txt").write_text(text)
    print(text)
    if is_docs_folder(args.out) and not args.smoke:
        update_docs(stem, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

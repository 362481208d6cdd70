"""Profile one meta-gradient variant of `metagrad_cost.py` with torch.profiler.

    python benchmarks/profile_metagrad.py gtn_recompute --steps 8 --threads 1
    python benchmarks/profile_metagrad.py gtn_recompute --steps 8 --phases

Prints the operators that take the most self time (CPU, or CUDA with `--device cuda`)
or, with `--phases`, the two halves of each unroll mode (the `full` unroll and its
backward pass; the recomputing forward sweep and its reverse sweep) as multiples of
plain training.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from metagrad_variants import VARIANTS, build_problem
from torch.profiler import ProfilerActivity, profile


def phases(p, T: int, repeats: int = 3) -> None:
    """CPU time of the forward and backward halves of each unroll mode, as multiples of plain training."""
    def plain():
        VARIANTS["plain"](p, T)()

    rows = {"plain": [], "full: unroll": [], "full: backward": [], "recompute: forward sweep": [],
            "recompute: reverse sweep": []}
    clock = time.process_time  # CPU time: robust on a shared machine with one thread (on CUDA: host time only)
    for _ in range(repeats):
        t0 = clock()
        plain()
        rows["plain"].append(clock() - t0)
        for mode, names in (("full", ("full: unroll", "full: backward")),
                            ("recompute", ("recompute: forward sweep", "recompute: reverse sweep"))):
            p.sgd.mode = mode
            t0 = clock()
            loss = p.learner.meta_loss(p.sgd.unroll(p.learner, p.teacher.batches(p.curriculum(T))), p.x_real, p.y_real)
            t1 = clock()
            torch.autograd.grad(loss, p.targets(T))
            t2 = clock()
            rows[names[0]].append(t1 - t0)
            rows[names[1]].append(t2 - t1)
    base = statistics.median(rows["plain"])
    for name, ts in rows.items():
        print(f"{name:>28}: {statistics.median(ts) / base:5.2f} x plain")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variant", choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=70)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--phases", action="store_true", help="time the halves of each unroll mode instead")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    p = build_problem(batch=args.batch, device=args.device)
    VARIANTS[args.variant](p, 2)()  # warm-up
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device.startswith("cuda") else [])
    if args.phases:
        phases(p, args.steps)
        return
    run = VARIANTS[args.variant](p, args.steps)
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        run()
    print(f"{args.variant} T={args.steps}: {time.perf_counter() - t0:.2f} s under the profiler")
    key = "self_cuda_time_total" if args.device.startswith("cuda") else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()

"""How many operations does one inner step launch, and what does an outer iteration cost?

    python benchmarks/step_cost.py                      # CPU, paper size (appendix A generator, MNIST learner)
    python benchmarks/step_cost.py --device cuda        # also counts CUDA kernels
    python benchmarks/step_cost.py --smoke --out /tmp/s # seconds (the tests)
    python benchmarks/step_cost.py --compile-step       # the learner step through torch.compile (minutes to compile)

A paper-size outer iteration on a GPU is bound by operator launches, not by arithmetic
(issue 13: 47,811 CUDA kernels for one recompute-mode iteration at T=32). The number of
aten operations per step is the same on CPU and CUDA, so it is measured here with
torch.profiler on any machine:

* **forward step**: one inner step as the recomputing forward sweep runs it (no graph);
* **backward step**: one step of the recomputing reverse sweep (recompute with a graph,
  back-propagate the adjoint);
* **full step**: one step of the `full` unroll and its share of the backward pass.

Each is counted three ways: every aten operator call (`aten ops`), the calls that call no
other aten operator (`leaf ops`), and the leaf calls that compute something (`compute ops`:
leaves other than views, reshapes, allocations, detach and dtype no-ops; on CUDA these
are the kernel launches). With `--compile-step` the learner's half of each step runs
through `torch.compile` (`gtn_edu.fast.compile_steps`, as in `CompiledSGD`), and so does the
teacher's batch (`gtn_edu.fast.compile_teacher`); the kernels inductor generates
are counted as compute ops too (`cpp_fused_*` on CPU, made visible to the profiler with
`torch._inductor.config.cpp.enable_kernel_profile`). The script also times whole outer iterations (unroll, meta-loss,
backward) in both modes on `--device`, as the median of `--repeats`. Outputs in `--out`:
`step_cost[_cuda].json` and a markdown fragment, pasted into docs/benchmarks/cost.md when
`--out` is docs/figures.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from metagrad_variants import build_problem, learner_summary
from report import DOCS_FIGURES, environment, is_docs_folder, update_docs, write_json
from torch.profiler import ProfilerActivity, profile

from gtn_edu.fast import compile_steps, compile_teacher

NOT_COMPUTE = {"aten::view", "aten::as_strided", "aten::_reshape_alias", "aten::reshape", "aten::flatten",
               "aten::detach", "aten::empty", "aten::empty_strided", "aten::empty_like", "aten::resize_",
               "aten::resolve_conj", "aten::resolve_neg", "aten::to", "aten::result_type", "aten::expand",
               "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::t", "aten::transpose", "aten::alias",
               "aten::lift_fresh", "aten::slice", "aten::select", "aten::unbind", "aten::split",
               "aten::as_strided_", "aten::_unsafe_view", "aten::contiguous", "aten::numpy_T", "aten::size",
               "aten::is_nonzero", "aten::item", "aten::_local_scalar_dense", "aten::set_"}
GENERATED_KERNEL = re.compile(r"(^|_)cpp_fused_|^triton_")  # inductor's kernels, as the profiler names them
SMOKE = dict(teacher_hidden=32, teacher_channels=8, teacher_conv=8, channels=(4, 8), hidden=16, batch=10,
             real_batch=20)


def count(fn, device: str) -> dict:
    """aten operator calls made by `fn()`: all, leaves, compute leaves (+ CUDA kernels), and the top leaves."""
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=acts) as prof:
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    events = list(prof.events())
    aten = [e for e in events if e.name.startswith("aten::")]
    leaves = [e for e in aten if not any(c.name.startswith("aten::") for c in e.cpu_children)]
    kernels = [e for e in events if GENERATED_KERNEL.search(e.name)]
    compute = [e for e in leaves if e.name not in NOT_COMPUTE] + kernels
    out = {"aten_ops": len(aten), "leaf_ops": len(leaves), "compute_ops": len(compute),
           "top": collections.Counter(e.name for e in compute).most_common(12)}
    if device.startswith("cuda"):
        out["cuda_kernels"] = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    return out


def per_step(d: dict, T: int) -> dict:
    """Counts divided by the T steps they were made in (the top list too)."""
    out = {k: (v / T if isinstance(v, int) else v) for k, v in d.items()}
    out["top"] = [(name, n / T) for name, n in d["top"]]
    return out


def measure(p, T: int, device: str, repeats: int) -> dict:
    cur = p.curriculum(T)
    targets = p.targets(T)

    def unroll(mode):
        p.sgd.mode = mode
        return p.sgd.unroll(p.learner, p.teacher.batches(cur))

    def outer(mode):
        loss = p.learner.meta_loss(unroll(mode), p.x_real, p.y_real)
        return torch.autograd.grad(loss, targets)

    t0 = time.perf_counter()
    for mode in ("recompute", "full"):  # warm up (allocator, lazy init; with --compile-step: compile)
        outer(mode)
    compile_seconds = time.perf_counter() - t0
    res = {"forward step": per_step(count(lambda: unroll("recompute"), device), T)}
    state = unroll("recompute")
    loss = p.learner.meta_loss(state, p.x_real, p.y_real)
    res["backward step"] = per_step(count(lambda: torch.autograd.grad(loss, targets), device), T)
    res["full step"] = per_step(count(lambda: outer("full"), device), T)
    seconds = {}
    for mode in ("recompute", "full") if repeats else ():
        ts = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            outer(mode)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        seconds[mode] = statistics.median(ts)
    return {"per_step": res, "seconds_per_outer_iteration": seconds, "compile_seconds": compile_seconds}


def fragment(res: dict) -> str:
    env = res["env"]
    rows = ["| per inner step | aten ops | leaf ops | compute ops" + (" | CUDA kernels" if res["cuda"] else "") + " |",
            "|---|---|---|---" + ("|---" if res["cuda"] else "") + "|"]
    for name, d in res["per_step"].items():
        rows.append(f"| {name} | {d['aten_ops']:.0f} | {d['leaf_ops']:.0f} | {d['compute_ops']:.0f}"
                    + (f" | {d['cuda_kernels']:.0f}" if res["cuda"] else "") + " |")
    s = res["seconds_per_outer_iteration"]
    timed = (f"Seconds per outer iteration (unroll, meta-loss, meta-gradient; median of {res['repeats']}) at "
             f"T={res['T']}: recompute {s['recompute']:.3f} s, full {s['full']:.3f} s." if s else "Not timed.")
    top = ", ".join(f"{n.removeprefix('aten::')} {c:.0f}" for n, c in res["per_step"]["backward step"]["top"])
    return "\n".join([
        f"Measured on {env['device_label']}, torch {env['torch']}, commit {env['commit']}, {env['date']}: "
        f"appendix A's generator, the MNIST learner {res['learner']['conv_channels']} / hidden "
        f"{res['learner']['hidden']}, inner batch {res['batch']}, T={res['T']} (counts are per inner step)"
        + (f"; learner step and teacher batch compiled (`--compile-step`, first outer iterations incl. compilation "
           f"{res['compile_seconds']:.0f} s)" if res.get("compile_step") else "") + ".", "",
        *rows, "",
        f"Most frequent compute ops of a backward step: {top}.", "", timed])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=8, help="T: inner steps per outer iteration (counts are per step)")
    ap.add_argument("--batch", type=int, default=130)
    ap.add_argument("--repeats", type=int, default=3, help="timed outer iterations per mode (0: count only)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny networks, T=2")
    ap.add_argument("--compile-step", action="store_true",
                    help="the learner step and the teacher's batch compiled (gtn_edu.fast)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    T = 2 if args.smoke else args.steps
    problem = {**(SMOKE if args.smoke else {"batch": args.batch}), "device": args.device}
    p = build_problem(**problem)
    if args.compile_step:
        import torch._inductor.config as inductor_config

        inductor_config.cpp.enable_kernel_profile = True  # generated kernels show in the profiler
        compile_steps(p.sgd)
        compile_teacher(p.teacher)
    res = {"env": environment(args.device), "T": T, "batch": problem["batch"], "repeats": args.repeats,
           "cuda": args.device.startswith("cuda"), "smoke": args.smoke, "learner": learner_summary(p),
           "compile_step": args.compile_step,
           **measure(p, T, args.device, args.repeats)}
    stem = ("step_cost" + ("_smoke" if args.smoke else "") + ("_compiled" if args.compile_step else "")
            + ("_cuda" if res["cuda"] else ""))
    write_json(args.out / f"{stem}.json", res)
    text = fragment(res)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out) and not args.smoke:
        update_docs(stem, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Meta-gradient cost: gtn_edu's `full` and `recompute` unrolls against plain training, higher, torchopt.

For one learner and one teacher (same data, same seeds) and each T in `--steps`:

1. **agreement**: every meta-gradient variant must give gtn_edu `full`'s gradient in
   float64 on a tiny problem (and plain training the library's graph-free training);
   the script stops with exit code 1 before timing anything if one does not;
2. **memory**: each (variant, T) runs in a fresh subprocess; the number is the peak
   resident memory above the resident memory after set-up and one warm-up run (CPU), or
   `torch.cuda.max_memory_allocated` above the allocation before the run (CUDA). A
   variant stops at the first T whose memory, extrapolated from the smaller T, would
   exceed `--max-mem-gb`;
3. **time**: one process, variants interleaved with their order rotated every repeat;
   medians of `--repeats`, and ratios to plain training paired within each repeat.

Run (full size, CPU; writes docs/figures/metagrad_cost.{json,png,md.txt} and refreshes
docs/benchmarks/cost.md):

    python benchmarks/metagrad_cost.py

CUDA: `python benchmarks/metagrad_cost.py --device cuda --out results/metagrad_cuda`.
Smoke size (seconds): `python benchmarks/metagrad_cost.py --smoke --out /tmp/metagrad`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from metagrad_tables import fragment, plot, targets
from metagrad_variants import META_VARIANTS, VARIANTS, available, build_problem, learner_summary, missing_reason
from report import DOCS_FIGURES, environment, is_docs_folder, update_docs, write_json

TINY = dict(teacher_hidden=16, teacher_channels=4, teacher_conv=4, latent_dim=8, image=(1, 8, 8), num_classes=3,
            channels=(3, 4), hidden=5, batch=6, real_batch=7)
SMOKE = dict(teacher_hidden=32, teacher_channels=8, teacher_conv=8, channels=(4, 8), hidden=16, batch=10,
             real_batch=20)
RTOL, ATOL = 1e-9, 1e-12  # float64 agreement
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}  # freed tensors leave the RSS


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------ 1. agreement
def check_agreement(variants: list[str], device: str, T: int = 4) -> dict:
    """float64: each meta variant against gtn `full`; plain training against `gtn_nograd`."""
    p = build_problem(**TINY, dtype=torch.float64, device=device)
    names = p.target_names()
    ref = VARIANTS["gtn_full"](p, T)()
    out = {"T": T, "dtype": "float64", "rtol": RTOL, "atol": ATOL, "sizes": TINY, "variants": {}}
    for v in (v for v in variants if v in META_VARIANTS):
        grads = VARIANTS[v](p, T)()
        pairs = [(n, a, b) for n, a, b in zip(names, grads, ref) if a is not None]
        floor = 1e-8 * max(float(b.abs().max()) for _, _, b in pairs)  # some gradients are zero up to BN's eps
        err = max(float((a - b).abs().max()) / max(float(b.abs().max()), floor) for _, a, b in pairs)
        ok = all(torch.allclose(a, b, rtol=RTOL, atol=ATOL) for _, a, b in pairs)
        out["variants"][v] = {"agrees": ok, "max_rel_err": err, "compared": [n for n, _, _ in pairs],
                              "not_compared": [n for n, a in zip(names, grads) if a is None]}
    if "plain" in variants:
        run_plain, run_lib = VARIANTS["plain"](p, T), VARIANTS["gtn_nograd"](p, T)
        run_plain(), run_lib()
        pairs = [(w.detach(), run_lib.state.params[k]) for k, w in run_plain.learner.named_parameters()]
        diffs = [float((a - b).abs().max()) for a, b in pairs]
        ok = all(torch.allclose(a, b, rtol=RTOL, atol=ATOL) for a, b in pairs)
        out["variants"]["plain"] = {"agrees": ok, "max_abs_err": max(diffs),
                                    "compared": ["final learner weights vs gtn_nograd"]}
    out["all_agree"] = all(r["agrees"] for r in out["variants"].values())
    return out


# ------------------------------------------------------------------ 2. memory
def _proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def child_memory(variants: list[str], steps: list[int], problem: dict, device: str) -> dict:
    """Runs in a fresh process: peak memory of each (variant, T) above the post-set-up level."""
    p = build_problem(**problem, device=device)
    for v in variants:
        VARIANTS[v](p, 2)()  # warm-up: thread pools, kernels, lazy imports
    out = {v: {} for v in variants}
    for v in variants:
        for T in steps:
            run = VARIANTS[v](p, T)
            p.curriculum(T)
            gc.collect()
            if device.startswith("cuda"):
                _sync(device)
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
                run()
                _sync(device)
                out[v][T] = torch.cuda.max_memory_allocated(device) - base
                method = "torch.cuda.max_memory_allocated above the allocation before the run"
            else:
                Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
                base = _proc_status("VmRSS")
                run()
                out[v][T] = _proc_status("VmHWM") - base
                method = "VmHWM - VmRSS after set-up and warm-up (peak reset through /proc/self/clear_refs)"
            del run
    return {"peak_bytes": out, "method": method}


def _child(variants: list[str], steps: list[int], args, problem: dict) -> dict:
    """`child_memory` in a fresh interpreter whose allocator returns freed tensors at once."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", ",".join(variants), ",".join(map(str, steps)),
           "--problem", json.dumps(problem), "--device", args.device, "--threads", str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MALLOC_ENV},
                          timeout=args.max_run_s * 3 * len(steps) * len(variants))
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise ChildProcessError(f"subprocess failed (exit {proc.returncode}): {tail}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"peak_bytes": {v: {int(T): b for T, b in d.items()} for v, d in res["peak_bytes"].items()},
            "method": res["method"]}


def _predict(points: dict[int, int], T: int) -> float:
    """Extrapolate peak memory to T: linear through the last two points (one point: proportional)."""
    ts = sorted(points)
    if not ts:
        return 0.0
    if len(ts) == 1:
        return points[ts[0]] * T / ts[0]
    (t0, m0), (t1, m1) = (ts[-2], points[ts[-2]]), (ts[-1], points[ts[-1]])
    return m1 + max(0.0, (m1 - m0) / (t1 - t0)) * (T - t1)


def measure_memory(variants: list[str], steps: list[int], args, problem: dict) -> dict:
    """Peak memory per (variant, T), in fresh subprocesses (`--memory-procs`); stop at the memory limit."""
    limit = args.max_mem_gb * 2**30
    out = {v: {"peak_bytes": {}, "stopped_at": None, "why": None} for v in variants}
    if args.memory_procs == "one-process":  # --smoke: one interpreter start instead of one per variant
        res = _child(variants, steps, args, problem)
        for v in variants:
            out[v].update(peak_bytes=res["peak_bytes"][v], method=res["method"])
    for v in variants if args.memory_procs != "one-process" else []:
        rec = out[v]
        cells = [steps] if args.memory_procs == "per-variant" else [[T] for T in steps]
        for cell in cells:
            guess = _predict(rec["peak_bytes"], cell[0])
            if guess > limit:
                rec.update(stopped_at=cell[0],
                           why=f"predicted {guess / 2**30:.1f} GiB > --max-mem-gb {args.max_mem_gb}")
                break
            try:
                if args.memory_procs == "in-process":
                    res = child_memory([v], cell, problem, args.device)
                else:
                    res = _child([v], cell, args, problem)
            except (MemoryError, torch.cuda.OutOfMemoryError, ChildProcessError) as err:
                rec.update(stopped_at=cell[0], why=f"{type(err).__name__}: {err}")
                break
            finally:
                gc.collect()
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            rec["method"] = res["method"]
            rec["peak_bytes"].update(res["peak_bytes"][v])
    for v, rec in out.items():
        for T, peak in sorted(rec["peak_bytes"].items()):
            print(f"  memory {v:>14} T={T:<4} {peak / 2**20:9.1f} MiB", flush=True)
        ts = sorted(rec["peak_bytes"])
        if len(ts) >= 2:  # least-squares slope: bytes per added inner step
            ms = [rec["peak_bytes"][t] for t in ts]
            tm, mm = statistics.fmean(ts), statistics.fmean(ms)
            rec["growth_per_step_bytes"] = (sum((t - tm) * (m - mm) for t, m in zip(ts, ms))
                                            / sum((t - tm) ** 2 for t in ts))
    return out


# ------------------------------------------------------------------ 3. time
def _rel_err(a: list, b: list) -> float:
    """Largest per-tensor error relative to the tensor's largest entry (floored at 1e-6 of the overall largest)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if not pairs:
        return float("nan")
    floor = 1e-6 * max(float(y.abs().max()) for _, y in pairs)
    return max(float((x - y).abs().max()) / max(float(y.abs().max()), floor) for x, y in pairs)


def measure_time(variants: list[str], allowed: dict[str, list[int]], steps: list[int], args, problem: dict,
                 save=lambda partial: None) -> dict:
    """Interleaved timing in one process; medians and paired ratios to plain training.

    `save(partial_result)` is called after every T, so a killed run keeps what it measured.
    """
    p = build_problem(**problem, device=args.device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for v in variants:  # warm-up
        VARIANTS[v](p, min(steps))()
    timing = {v: {} for v in variants}
    f32 = {}
    stopped = {}
    for T in steps:
        todo = [v for v in variants if T in allowed[v] and v not in stopped]
        if not todo:
            continue
        runs = {v: [] for v in todo}
        first = {}
        for r in range(args.repeats):
            order = todo[r % len(todo):] + todo[:r % len(todo)]
            for v in order:
                run = VARIANTS[v](p, T)
                gc.collect()
                _sync(args.device)
                t0 = clock()
                grads = run()
                _sync(args.device)
                runs[v].append(clock() - t0)
                if r == 0 and v in META_VARIANTS:
                    first[v] = [g.detach() if g is not None else None for g in grads]
                del run, grads
        for v in todo:
            s = runs[v]
            rec = {"seconds": s, "median_s": statistics.median(s)}
            if "plain" in runs:
                rec["ratio_to_plain"] = statistics.median(a / b for a, b in zip(s, runs["plain"]))
            for peer in ("higher", "torchopt"):
                if peer in runs and v != peer:
                    rec[f"ratio_to_{peer}"] = statistics.median(a / b for a, b in zip(s, runs[peer]))
            timing[v][T] = rec
            if max(s) > args.max_run_s:
                stopped[v] = T
        ref = "gtn_full" if "gtn_full" in first else "gtn_recompute" if "gtn_recompute" in first else None
        if ref:
            f32[T] = {"reference": ref, **{v: _rel_err(g, first[ref]) for v, g in first.items() if v != ref}}
        line = "  ".join(f"{v} {timing[v][T].get('ratio_to_plain', float('nan')):.2f}x" for v in todo)
        print(f"  time T={T:<4} (ratio to plain) {line}", flush=True)
        save({"timing": timing, "float32_rel_err_vs_reference": f32})
    return {"timing": timing, "float32_rel_err_vs_reference": f32,
            "stopped_for_time": {v: f"a run at T={T} took more than --max-run-s {args.max_run_s}"
                                 for v, T in stopped.items()}}


# ------------------------------------------------------------------ driver
def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--batch", type=int, default=70, help="inner batch (a multiple of the 10 classes)")
    ap.add_argument("--seed", type=int, default=0, help="picks the learner from ArchSpace.mnist() and the codes")
    ap.add_argument("--max-mem-gb", type=float, default=12.0, help="skip a (variant, T) predicted to need more")
    ap.add_argument("--max-run-s", type=float, default=300.0, help="stop a variant after a run slower than this")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time, or the process's CPU time (for a shared machine; use with --threads 1)")
    ap.add_argument("--out", type=Path, default=DOCS_FIGURES)
    ap.add_argument("--no-memory", action="store_true", help="skip the memory sweep")
    ap.add_argument("--memory-procs", choices=["per-cell", "per-variant", "one-process", "in-process"],
                    default=None, help="a fresh process per (variant, T) (default on CPU), one per variant, one "
                    "for all (--smoke), or none (default on CUDA, where the allocator's peak is exact)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, T in (2, 4), 2 repeats: seconds")
    ap.add_argument("--child", nargs=2, metavar=("VARIANTS", "STEPS"), help=argparse.SUPPRESS)
    ap.add_argument("--problem", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.memory_procs = args.memory_procs or ("in-process" if args.device.startswith("cuda") else "per-cell")
    if args.device.startswith("cuda"):
        args.clock = "wall"  # the host's CPU time says nothing about the GPU
    if args.smoke:
        args.steps, args.repeats = [s for s in args.steps if s <= 4] or [2, 4], min(args.repeats, 2)
        args.threads = args.threads or 1  # tiny ops: a second thread only waits at barriers
        args.memory_procs = "one-process" if args.memory_procs == "per-cell" else args.memory_procs
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        steps = [int(t) for t in args.child[1].split(",")]
        print(json.dumps(child_memory(args.child[0].split(","), steps, json.loads(args.problem), args.device)))
        return 0
    problem = {**(SMOKE if args.smoke else {}), "batch": SMOKE["batch"] if args.smoke else args.batch,
               "seed": args.seed}
    steps = sorted(set(args.steps))
    missing = [v for v in args.variants if not available(v)]
    for v in missing:
        print(f"skipping variant {v}: {missing_reason(v)}", flush=True)
    variants = [v for v in args.variants if available(v)]
    for v in ("plain", "gtn_full"):
        if v not in variants:
            variants.insert(0, v)  # the denominator and the reference are always measured
    env = environment(args.device)
    print(f"metagrad_cost on {env['device_label']}: T={steps}, {args.repeats} repeats, variants {variants}"
          + (f" (not installed: {missing})" if missing else ""), flush=True)
    result = {"env": env, "smoke": args.smoke, "settings": {**vars(args), "out": str(args.out), "steps": steps},
              "problem": problem, "learner": learner_summary(build_problem(**problem)),
              "not_installed": missing, "variants": variants}
    result["agreement"] = check_agreement(variants, args.device)
    for v, r in result["agreement"]["variants"].items():
        err = r.get("max_rel_err", r.get("max_abs_err"))
        print(f"  float64 agreement {v:>14}: {'ok' if r['agrees'] else 'DISAGREES'} (max error {err:.1e})")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "metagrad_cost" if args.device == "cpu" else "metagrad_cost_" + args.device.split(":")[0]
    if not result["agreement"]["all_agree"]:
        write_json(args.out / f"{stem}.json", result)
        print("metagrad_cost: variants disagree on the float64 meta-gradient; nothing timed.", file=sys.stderr)
        return 1
    if args.no_memory:
        result["memory"], allowed = {}, {v: steps for v in variants}
    else:
        result["memory"] = measure_memory(variants, steps, args, problem)
        allowed = {v: list(result["memory"][v]["peak_bytes"]) for v in variants}
    write_json(args.out / f"{stem}.json", result)
    result.update(measure_time(variants, allowed, steps, args, problem,
                               save=lambda part: write_json(args.out / f"{stem}.json", {**result, **part})))
    result["targets"] = targets(result)
    write_json(args.out / f"{stem}.json", result)
    try:
        plot(result, args.out / f"{stem}.png")
    except ImportError as err:  # a bare GPU machine may lack matplotlib: keep the numbers
        print(f"  figure skipped: {err}")
    text = fragment(result)
    (args.out / f"{stem}.md.txt").write_text(text)
    if is_docs_folder(args.out) and update_docs(stem, text + f"\n![{stem}](figures/{stem}.png)\n"):
        print("  refreshed docs/benchmarks/cost.md")
    for t in result["targets"]:
        print(f"  target: {t['name']}: {t['verdict']}")
    print(f"wrote {args.out}/{stem}.{{json,png,md.txt}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Checks that need a CUDA device (run by `gpu_check.sh`).

1. `checkpoint` and `full` meta-gradients agree on CUDA in float64 (teacher, codes, lr,
   momentum), with real-data losses at intermediate steps too.
2. No host synchronisation inside the inner loop: both unroll modes and the backward
   pass run under `torch.cuda.set_sync_debug_mode("error")`, which raises on any
   operation that waits for the device (`.item()`, `nonzero`, device-to-host copies).

    python benchmarks/cuda_checks.py --out results/cuda_checks.json

Exit code 0 when every check passes, 1 otherwise; the JSON says which failed and why.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import torch
from report import environment, write_json

from gtn_edu import ArchSpace, Curriculum, Teacher, UnrolledSGD


def _problem(device: str, dtype: torch.dtype, T: int, per_step: bool):
    torch.manual_seed(0)
    teacher = Teacher((1, 28, 28), 10, latent_dim=16, hidden=64, channels=8, conv_channels=8).to(device, dtype)
    cur = Curriculum.full(T, 20, 10, latent_dim=16).to(device, dtype)
    learner = ArchSpace.mnist(channel_ranges=((8, 16), (8, 16)), hidden_range=(16, 32)).sample(
        torch.Generator().manual_seed(0)).to(device, dtype)
    sgd = UnrolledSGD(0.05, 0.6, steps=T if per_step else None).to(device, dtype)
    x = torch.randn(32, 1, 28, 28, device=device, dtype=dtype)
    y = torch.randint(10, (32,), device=device)
    return teacher, cur, learner, sgd, x, y


def _meta_grads(mode: str, device: str, dtype: torch.dtype, T: int, per_step: bool, at):
    teacher, cur, learner, sgd, x, y = _problem(device, dtype, T, per_step)
    sgd.mode = mode
    wrt = [*teacher.parameters(), cur.codes, sgd.raw_lr, sgd.raw_momentum]
    states = sgd.unroll(learner, teacher.batches(cur), at=at)
    loss = torch.stack([learner.loss(s, x, y) for s in states]).mean()
    return torch.autograd.grad(loss, wrt)


def _rel_err(got, want) -> float:
    """Largest error of any tensor, relative to that tensor's largest entry (floored at 1e-8 of the largest
    entry overall: some gradients are zero up to BatchNorm's eps)."""
    floor = 1e-8 * max(float(w.abs().max()) for w in want)
    return max(float((g - w).abs().max()) / max(float(w.abs().max()), floor) for g, w in zip(got, want))


def check_agreement(device: str) -> dict:
    """float64 on CUDA: checkpoint == full, and both == the same problem on CPU."""
    T, out = 6, {}
    for per_step in (False, True):
        at = [2, 4, T]
        full = _meta_grads("full", device, torch.float64, T, per_step, at)
        ckpt = _meta_grads("checkpoint", device, torch.float64, T, per_step, at)
        cpu = _meta_grads("full", "cpu", torch.float64, T, per_step, at)
        err_ck = _rel_err(ckpt, full)
        err_cpu = _rel_err([a.cpu() for a in full], cpu)
        ok = all(torch.allclose(a, b, rtol=1e-9, atol=1e-12) for a, b in zip(ckpt, full))
        out[f"per_step={per_step}"] = {"checkpoint_vs_full_max_rel_err": err_ck, "cuda_vs_cpu_max_rel_err": err_cpu,
                                       "agrees": ok}
    return out


def check_no_sync(device: str) -> dict:
    """Run unroll + backward of each mode with sync debug mode 'error'."""
    out = {}
    for mode in ("full", "checkpoint"):
        teacher, cur, learner, sgd, x, y = _problem(device, torch.float32, 4, True)
        sgd.mode = mode
        batches = teacher.batches(cur)  # built outside: sampling an architecture happens on the host
        torch.cuda.synchronize(device)
        torch.cuda.set_sync_debug_mode("error")
        try:
            state = sgd.unroll(learner, batches)
            learner.loss(state, x, y).backward()
            out[mode] = {"no_sync": True}
        except RuntimeError as err:
            out[mode] = {"no_sync": False, "error": str(err).splitlines()[0],
                         "where": traceback.format_exc().splitlines()[-3:]}
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("cuda_checks.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_checks: no CUDA device", file=sys.stderr)
        return 1
    res = {"env": environment(args.device), "agreement": check_agreement(args.device),
           "no_host_sync": check_no_sync(args.device)}
    res["passed"] = (all(r["agrees"] for r in res["agreement"].values())
                     and all(r["no_sync"] for r in res["no_host_sync"].values()))
    write_json(args.out, res)
    for k, v in {**res["agreement"], **res["no_host_sync"]}.items():
        print(f"  {k}: {v}")
    print(f"cuda_checks: {'passed' if res['passed'] else 'FAILED'}; {args.out}")
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
